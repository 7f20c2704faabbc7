#include "granary/offline/key_hash.h"

#include <arrow/api.h>
#include <fmt/format.h>

#include <cstring>

namespace granary {

uint64_t HashBytes(std::string_view bytes) {
  constexpr uint64_t kMul = 0x9fb21c651e98df25ULL;
  uint64_t h = 0x2d358dccaa6c78a5ULL ^ (bytes.size() * kMul);
  size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, bytes.data() + i, 8);
    h = (h ^ MixBits(word)) * kMul;
  }
  if (i < bytes.size()) {
    uint64_t word = 0;
    std::memcpy(&word, bytes.data() + i, bytes.size() - i);
    h = (h ^ MixBits(word ^ 0xff)) * kMul;
  }
  return MixBits(h);
}

Result<KeyColumns> KeyColumns::Make(std::vector<std::shared_ptr<arrow::Array>> columns) {
  KeyColumns out;
  if (columns.empty()) return Status::InvalidArgument("a join needs at least one key column");
  out.length_ = columns[0]->length();
  for (auto& array : columns) {
    Column c;
    switch (array->type_id()) {
      case arrow::Type::BOOL:
        c.kind = Kind::kBool;
        break;
      case arrow::Type::INT8:
      case arrow::Type::UINT8:
        c.kind = Kind::kInt;
        c.width = 1;
        break;
      case arrow::Type::INT16:
      case arrow::Type::UINT16:
        c.kind = Kind::kInt;
        c.width = 2;
        break;
      case arrow::Type::INT32:
      case arrow::Type::UINT32:
      case arrow::Type::DATE32:
        c.kind = Kind::kInt;
        c.width = 4;
        break;
      case arrow::Type::INT64:
      case arrow::Type::TIMESTAMP:
        c.kind = Kind::kInt;
        c.width = 8;
        break;
      case arrow::Type::FLOAT:
        c.kind = Kind::kFloat32;
        break;
      case arrow::Type::DOUBLE:
        c.kind = Kind::kFloat64;
        break;
      case arrow::Type::STRING:
      case arrow::Type::BINARY:
      case arrow::Type::LARGE_STRING:
      case arrow::Type::LARGE_BINARY:
        c.kind = Kind::kBytes;
        break;
      default:
        return Status::InvalidArgument(
            fmt::format("a join key of type {} is not supported", array->type()->ToString()));
    }
    if (array->length() != out.length_) return Status::Internal("key columns differ in length");
    out.may_have_nulls_ = out.may_have_nulls_ || array->null_count() != 0;
    c.array = std::move(array);
    out.columns_.push_back(std::move(c));
  }
  return out;
}

bool KeyColumns::IsNull(int64_t row) const {
  if (!may_have_nulls_) return false;
  for (const Column& c : columns_) {
    if (c.array->IsNull(row)) return true;
  }
  return false;
}

uint64_t KeyColumns::ValueBits(const Column& c, int64_t row) const {
  const auto& data = *c.array->data();
  switch (c.kind) {
    case Kind::kInt:
      switch (c.width) {
        case 1:
          return static_cast<uint64_t>(static_cast<int64_t>(data.GetValues<int8_t>(1)[row]));
        case 2:
          return static_cast<uint64_t>(static_cast<int64_t>(data.GetValues<int16_t>(1)[row]));
        case 4:
          return static_cast<uint64_t>(static_cast<int64_t>(data.GetValues<int32_t>(1)[row]));
        default:
          return static_cast<uint64_t>(data.GetValues<int64_t>(1)[row]);
      }
    case Kind::kBool:
      return static_cast<const arrow::BooleanArray&>(*c.array).Value(row) ? 1 : 0;
    case Kind::kFloat32: {
      float f = data.GetValues<float>(1)[row];
      if (f == 0.0f) f = 0.0f;  // -0 equals +0
      uint32_t bits;
      std::memcpy(&bits, &f, 4);
      return bits;
    }
    case Kind::kFloat64: {
      double d = data.GetValues<double>(1)[row];
      if (d == 0.0) d = 0.0;
      uint64_t bits;
      std::memcpy(&bits, &d, 8);
      return bits;
    }
    case Kind::kBytes:
      return HashBytes(BytesAt(c, row));
  }
  return 0;
}

std::string_view KeyColumns::BytesAt(const Column& c, int64_t row) const {
  const auto type = c.array->type_id();
  if (type == arrow::Type::LARGE_STRING || type == arrow::Type::LARGE_BINARY) {
    return static_cast<const arrow::LargeBinaryArray&>(*c.array).GetView(row);
  }
  return static_cast<const arrow::BinaryArray&>(*c.array).GetView(row);
}

void KeyColumns::HashRows(int64_t begin, int64_t end, uint64_t* out) const {
  if (columns_.size() == 1 && columns_[0].kind == Kind::kInt && columns_[0].width == 8) {
    const int64_t* values = columns_[0].array->data()->GetValues<int64_t>(1);
    for (int64_t i = begin; i < end; ++i) {
      out[i - begin] = MixBits(static_cast<uint64_t>(values[i]));
    }
    return;
  }
  for (int64_t i = begin; i < end; ++i) {
    uint64_t h = 0;
    for (size_t k = 0; k < columns_.size(); ++k) {
      uint64_t v = ValueBits(columns_[k], i);
      h = k == 0 ? v : MixBits(h) ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
    }
    out[i - begin] = MixBits(h);
  }
}

bool KeyColumns::Equals(int64_t row, const KeyColumns& other, int64_t other_row) const {
  if (other.columns_.size() != columns_.size()) return false;
  for (size_t k = 0; k < columns_.size(); ++k) {
    const Column& a = columns_[k];
    const Column& b = other.columns_[k];
    if (a.array->IsNull(row) || b.array->IsNull(other_row)) return false;
    if (a.kind != b.kind) return false;
    if (a.kind == Kind::kBytes) {
      if (BytesAt(a, row) != other.BytesAt(b, other_row)) return false;
    } else if (ValueBits(a, row) != other.ValueBits(b, other_row)) {
      return false;
    }
  }
  return true;
}

}  // namespace granary
