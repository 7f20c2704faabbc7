#include "granary/online/value_codec.h"

#include <arrow/api.h>
#include <arrow/util/float16.h>
#include <fmt/format.h>

#include <optional>
#include <string>

#include "granary/types/arrow_convert.h"

namespace granary {
namespace {

using layout::GetVarint;
using layout::PutFixed;
using layout::PutVarint;

// Writes element i of a (non-list) array, converted to the declared scalar type.
using ScalarWriter = void (*)(const arrow::Array& a, int64_t i, std::string* out);

template <typename ArrayT, typename Out>
void WriteNumber(const arrow::Array& a, int64_t i, std::string* out) {
  PutFixed<Out>(out, static_cast<Out>(static_cast<const ArrayT&>(a).Value(i)));
}

template <typename Out>
void WriteHalfFloat(const arrow::Array& a, int64_t i, std::string* out) {
  auto bits = static_cast<const arrow::HalfFloatArray&>(a).Value(i);
  PutFixed<Out>(out, static_cast<Out>(arrow::util::Float16::FromBits(bits).ToFloat()));
}

void WriteBool(const arrow::Array& a, int64_t i, std::string* out) {
  out->push_back(static_cast<const arrow::BooleanArray&>(a).Value(i) ? '\x01' : '\x00');
}

template <typename ArrayT>
void WriteBinary(const arrow::Array& a, int64_t i, std::string* out) {
  std::string_view v = static_cast<const ArrayT&>(a).GetView(i);
  PutVarint(out, v.size());
  out->append(v);
}

// The time writers run on rows BodyEncoder::Make checked (TimeBeyondRangeAt): every time fits
// int64 microseconds, so value_or never takes its 0.
template <arrow::TimeUnit::type kUnit>
void WriteTimestamp(const arrow::Array& a, int64_t i, std::string* out) {
  PutFixed<int64_t>(
      out,
      TimestampToMicros(static_cast<const arrow::TimestampArray&>(a).Value(i), kUnit).value_or(0));
}

void WriteDate32(const arrow::Array& a, int64_t i, std::string* out) {
  PutFixed<int64_t>(out,
                    DaysToMicros(static_cast<const arrow::Date32Array&>(a).Value(i)).value_or(0));
}
void WriteDate64(const arrow::Array& a, int64_t i, std::string* out) {
  PutFixed<int64_t>(out, TimestampToMicros(static_cast<const arrow::Date64Array&>(a).Value(i),
                                           arrow::TimeUnit::MILLI)
                             .value_or(0));
}

// Why element `i` of a time array (timestamp of any unit, date32, date64) cannot be written:
// beyond int64 microseconds. nullopt when it fits, or when the array holds no times.
std::optional<std::string> TimeBeyondRangeAt(const arrow::Array& a, int64_t i) {
  switch (a.type_id()) {
    case arrow::Type::TIMESTAMP:
    case arrow::Type::DATE32:
    case arrow::Type::DATE64:
      break;
    default:
      return std::nullopt;
  }
  if (TimeAtMicros(a, i)) return std::nullopt;
  return TimeBeyondRange(a, i);
}

// Whether a time array's values can be beyond int64 microseconds at all (seconds, milliseconds
// and days can; microseconds and nanoseconds cannot), so that only those are checked row by row.
bool TimesCanOverflow(const arrow::Array& a) {
  switch (a.type_id()) {
    case arrow::Type::DATE32:
    case arrow::Type::DATE64:
      return true;
    case arrow::Type::TIMESTAMP: {
      const auto unit = static_cast<const arrow::TimestampType&>(*a.type()).unit();
      return unit == arrow::TimeUnit::SECOND || unit == arrow::TimeUnit::MILLI;
    }
    default:
      return false;
  }
}

template <typename Out>
ScalarWriter IntegerWriter(arrow::Type::type id) {
  using arrow::Type;
  switch (id) {
    case Type::INT8:
      return WriteNumber<arrow::Int8Array, Out>;
    case Type::INT16:
      return WriteNumber<arrow::Int16Array, Out>;
    case Type::INT32:
      return WriteNumber<arrow::Int32Array, Out>;
    case Type::UINT8:
      return WriteNumber<arrow::UInt8Array, Out>;
    case Type::UINT16:
      return WriteNumber<arrow::UInt16Array, Out>;
    case Type::INT64:
      return WriteNumber<arrow::Int64Array, Out>;
    case Type::UINT32:
      return WriteNumber<arrow::UInt32Array, Out>;
    default:
      return nullptr;
  }
}

// The writer for a column of Arrow `type` declared as `want`, or nullptr when only the slow
// path (through Value) can read it. The caller has checked CheckReadableAs.
ScalarWriter WriterFor(const arrow::DataType& type, ScalarType want) {
  using arrow::Type;
  const auto id = type.id();
  switch (want) {
    case ScalarType::kBool:
      return id == Type::BOOL ? WriteBool : nullptr;
    case ScalarType::kInt32:
      return id == Type::INT64 || id == Type::UINT32 ? nullptr : IntegerWriter<int32_t>(id);
    case ScalarType::kInt64:
      return IntegerWriter<int64_t>(id);
    case ScalarType::kFloat32:
      if (id == Type::FLOAT) return WriteNumber<arrow::FloatArray, float>;
      if (id == Type::HALF_FLOAT) return WriteHalfFloat<float>;
      return nullptr;
    case ScalarType::kFloat64:
      if (id == Type::DOUBLE) return WriteNumber<arrow::DoubleArray, double>;
      if (id == Type::FLOAT) return WriteNumber<arrow::FloatArray, double>;
      if (id == Type::HALF_FLOAT) return WriteHalfFloat<double>;
      return id == Type::INT64 || id == Type::UINT32 ? nullptr : IntegerWriter<double>(id);
    case ScalarType::kString:
    case ScalarType::kBytes:
      switch (id) {
        case Type::STRING:
        case Type::BINARY:
          return WriteBinary<arrow::BinaryArray>;
        case Type::LARGE_STRING:
        case Type::LARGE_BINARY:
          return WriteBinary<arrow::LargeBinaryArray>;
        case Type::STRING_VIEW:
        case Type::BINARY_VIEW:
          return WriteBinary<arrow::BinaryViewArray>;
        case Type::FIXED_SIZE_BINARY:
          return WriteBinary<arrow::FixedSizeBinaryArray>;
        default:
          return nullptr;
      }
    case ScalarType::kTimestamp:
      if (id == Type::DATE32) return WriteDate32;
      if (id == Type::DATE64) return WriteDate64;
      if (id != Type::TIMESTAMP) return nullptr;
      switch (static_cast<const arrow::TimestampType&>(type).unit()) {
        case arrow::TimeUnit::SECOND:
          return WriteTimestamp<arrow::TimeUnit::SECOND>;
        case arrow::TimeUnit::MILLI:
          return WriteTimestamp<arrow::TimeUnit::MILLI>;
        case arrow::TimeUnit::MICRO:
          return WriteTimestamp<arrow::TimeUnit::MICRO>;
        case arrow::TimeUnit::NANO:
          return WriteTimestamp<arrow::TimeUnit::NANO>;
      }
      return nullptr;
  }
  return nullptr;
}

int FixedWidth(ScalarType t) {
  switch (t) {
    case ScalarType::kBool:
      return 1;
    case ScalarType::kInt32:
    case ScalarType::kFloat32:
      return 4;
    case ScalarType::kInt64:
    case ScalarType::kFloat64:
    case ScalarType::kTimestamp:
      return 8;
    default:
      return 0;  // variable
  }
}

// Skips one encoded scalar at *pos; false when it runs past the end.
bool SkipScalar(std::string_view body, ScalarType t, size_t* pos) {
  int width = FixedWidth(t);
  if (width > 0) {
    if (body.size() - *pos < static_cast<size_t>(width)) return false;
    *pos += width;
    return true;
  }
  uint64_t len = 0;
  if (!GetVarint(body, pos, &len) || body.size() - *pos < len) return false;
  *pos += len;
  return true;
}

template <typename T>
void EncodeOne(const T& x, std::string* out) {
  if constexpr (std::is_same_v<T, bool>) {
    out->push_back(x ? '\x01' : '\x00');
  } else if constexpr (std::is_same_v<T, std::string>) {
    PutVarint(out, x.size());
    out->append(x);
  } else if constexpr (std::is_same_v<T, Bytes>) {
    PutVarint(out, x.data.size());
    out->append(x.data);
  } else if constexpr (std::is_same_v<T, Timestamp>) {
    PutFixed<int64_t>(out, x.micros);
  } else {
    PutFixed<T>(out, x);
  }
}

void EncodeValueTo(const Value& value, std::string* out) {
  std::visit(
      [out](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          // nulls are in the bitmap
        } else if constexpr (std::is_same_v<T, std::vector<bool>>) {
          PutVarint(out, v.size());
          for (bool b : v) EncodeOne(b, out);
        } else if constexpr (requires { v.begin(); } && !std::is_same_v<T, std::string>) {
          PutVarint(out, v.size());
          for (const auto& item : v) EncodeOne(item, out);
        } else {
          EncodeOne(v, out);
        }
      },
      value.storage());
}

}  // namespace

// ------------------------------------------------------------------------------------ header

bool ParseBodyHeader(std::string_view body, size_t num_features, BodyHeader* h) {
  if (body.size() < 12) return false;
  h->fingerprint = layout::LoadFixed<uint32_t>(body.data());
  h->order.event_micros = layout::LoadFixed<int64_t>(body.data() + 4);
  size_t pos = 12;
  uint64_t created = 0;
  if (!GetVarint(body, &pos, &created)) return false;
  h->order.has_created = created != 0;
  h->order.created_micros =
      created == 0 ? 0 : layout::CreatedFromCode(h->order.event_micros, created);
  h->bitmap_offset = pos;
  h->values_offset = pos + (num_features + 7) / 8;
  return h->values_offset <= body.size();
}

bool IndexBody(const ViewLayout& view, std::string_view body, const BodyHeader& header,
               uint32_t* offsets) {
  const auto& features = view.features();
  const unsigned char* bitmap =
      reinterpret_cast<const unsigned char*>(body.data()) + header.bitmap_offset;
  // Fast path: fixed-width values and no nulls sit at offsets known in advance.
  if (view.fixed_values_size() >= 0) {
    bool any_null = false;
    for (int i = 0; i < view.null_bitmap_bytes(); ++i) any_null = any_null || bitmap[i] != 0;
    if (!any_null) {
      if (body.size() - header.values_offset != static_cast<size_t>(view.fixed_values_size())) {
        return false;
      }
      const auto& fixed = view.fixed_offsets();
      for (size_t i = 0; i < features.size(); ++i) {
        offsets[i] = static_cast<uint32_t>(header.values_offset + fixed[i]);
      }
      return true;
    }
  }
  size_t pos = header.values_offset;
  for (size_t i = 0; i < features.size(); ++i) {
    if (bitmap[i / 8] & (1u << (i % 8))) {
      offsets[i] = kNullOffset;
      continue;
    }
    offsets[i] = static_cast<uint32_t>(pos);
    const ValueType t = features[i].type;
    if (!t.is_list) {
      if (!SkipScalar(body, t.scalar, &pos)) return false;
      continue;
    }
    uint64_t count = 0;
    if (!GetVarint(body, &pos, &count)) return false;
    if (int width = FixedWidth(t.scalar); width > 0) {
      if (count > (body.size() - pos) / width) return false;
      pos += count * width;
    } else {
      for (uint64_t j = 0; j < count; ++j) {
        if (!SkipScalar(body, t.scalar, &pos)) return false;
      }
    }
  }
  return pos == body.size();
}

// ------------------------------------------------------------------------------------ ValueRef

std::string_view ValueRef::AsBytes() const {
  size_t pos = 0;
  uint64_t len = 0;
  std::string_view head(data, 10);  // a varint validated by IndexBody; never read past its end
  GetVarint(head, &pos, &len);
  return std::string_view(data + pos, len);
}

ListRef ValueRef::AsList() const {
  size_t pos = 0;
  uint64_t count = 0;
  std::string_view head(data, 10);
  GetVarint(head, &pos, &count);
  ListRef list;
  list.element = type.scalar;
  list.count = static_cast<uint32_t>(count);
  list.data = data + pos;
  return list;
}

Value ValueRef::ToValue() const {
  if (is_null()) return Value::Null();
  if (type.is_list) {
    ListRef list = AsList();
    auto collect = [&]<typename T>(std::vector<T> out) {
      list.ForEach([&](auto x) {
        using X = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, Bytes>) {
          if constexpr (std::is_same_v<X, std::string_view>) out.push_back(Bytes{std::string(x)});
        } else if constexpr (std::is_same_v<T, std::string>) {
          if constexpr (std::is_same_v<X, std::string_view>) out.emplace_back(x);
        } else if constexpr (std::is_convertible_v<X, T> && !std::is_same_v<X, std::string_view>) {
          out.push_back(static_cast<T>(x));
        }
      });
      return Value(std::move(out));
    };
    switch (type.scalar) {
      case ScalarType::kBool:
        return collect(std::vector<bool>{});
      case ScalarType::kInt32:
        return collect(std::vector<int32_t>{});
      case ScalarType::kInt64:
        return collect(std::vector<int64_t>{});
      case ScalarType::kFloat32:
        return collect(std::vector<float>{});
      case ScalarType::kFloat64:
        return collect(std::vector<double>{});
      case ScalarType::kString:
        return collect(std::vector<std::string>{});
      case ScalarType::kBytes:
        return collect(std::vector<Bytes>{});
      case ScalarType::kTimestamp:
        return collect(std::vector<Timestamp>{});
    }
  }
  switch (type.scalar) {
    case ScalarType::kBool:
      return Value(AsBool());
    case ScalarType::kInt32:
      return Value(AsInt32());
    case ScalarType::kInt64:
      return Value(AsInt64());
    case ScalarType::kFloat32:
      return Value(AsFloat32());
    case ScalarType::kFloat64:
      return Value(AsFloat64());
    case ScalarType::kString:
      return Value(std::string(AsBytes()));
    case ScalarType::kBytes:
      return Value(Bytes{std::string(AsBytes())});
    case ScalarType::kTimestamp:
      return Value(AsTimestamp());
  }
  return Value::Null();
}

// ------------------------------------------------------------------------------------ encoding

struct BodyEncoder::Column {
  ValueType type;
  std::shared_ptr<arrow::Array> array;
  ScalarWriter scalar = nullptr;  // scalars: fast path; lists: for the elements
  // Lists: the child values and how to find a row's range.
  const arrow::Array* values = nullptr;
  bool slow = false;  // read through ValueAt (dictionaries, list views...)
};

// Where the elements of list row `row` are in the column's child values: (first, count).
std::pair<int64_t, int64_t> BodyEncoder::ListRange(const Column& c, int64_t row) {
  switch (c.array->type_id()) {
    case arrow::Type::LIST: {
      const auto& l = static_cast<const arrow::ListArray&>(*c.array);
      return {l.value_offset(row), l.value_length(row)};
    }
    case arrow::Type::LARGE_LIST: {
      const auto& l = static_cast<const arrow::LargeListArray&>(*c.array);
      return {l.value_offset(row), l.value_length(row)};
    }
    default: {
      const auto& l = static_cast<const arrow::FixedSizeListArray&>(*c.array);
      return {l.value_offset(row), l.value_length(row)};
    }
  }
}

Result<BodyEncoder> BodyEncoder::Make(const ViewLayout& view, const arrow::RecordBatch& rows) {
  BodyEncoder enc;
  enc.view_ = &view;
  auto timestamp_column = [&](const char* name, bool required) -> Result<const arrow::Array*> {
    auto array = rows.GetColumnByName(name);
    if (array == nullptr) {
      if (!required) return nullptr;
      return Status::InvalidArgument(
          fmt::format("feature view '{}': the rows have no '{}' column; columns are: {}",
                      view.name(), name, rows.schema()->ToString()));
    }
    if (array->type_id() != arrow::Type::TIMESTAMP) {
      return Status::InvalidArgument(
          fmt::format("feature view '{}': column '{}' is {}, expected a timestamp", view.name(),
                      name, array->type()->ToString()));
    }
    return array.get();
  };
  GRANARY_ASSIGN_OR_RAISE(enc.event_, timestamp_column("event_timestamp", true));
  if (enc.event_->null_count() > 0) {
    for (int64_t i = 0; i < enc.event_->length(); ++i) {
      if (enc.event_->IsNull(i)) {
        return Status::InvalidArgument(
            fmt::format("feature view '{}': event_timestamp is null in row {}", view.name(), i));
      }
    }
  }
  GRANARY_ASSIGN_OR_RAISE(enc.created_, timestamp_column("created_timestamp", false));
  for (const arrow::Array* times : {enc.event_, enc.created_}) {
    if (times == nullptr || !TimesCanOverflow(*times)) continue;
    for (int64_t i = 0; i < times->length(); ++i) {
      if (times->IsNull(i)) continue;
      if (auto beyond = TimeBeyondRangeAt(*times, i)) {
        return Status::InvalidArgument(
            fmt::format("feature view '{}': column '{}', row {}: {}", view.name(),
                        times == enc.event_ ? "event_timestamp" : "created_timestamp", i, *beyond));
      }
    }
  }
  for (const ViewLayout::Column& f : view.features()) {
    auto array = rows.GetColumnByName(f.name);
    if (array == nullptr) {
      return Status::InvalidArgument(fmt::format(
          "feature view '{}': the rows have no column for feature '{}'; columns are: {}",
          view.name(), f.name, rows.schema()->ToString()));
    }
    Status readable = CheckReadableAs(*array->type(), f.type);
    if (!readable.ok()) {
      return Status::InvalidArgument(fmt::format("feature view '{}': feature '{}' is {}",
                                                 view.name(), f.name, readable.message()));
    }
    auto col = std::make_shared<Column>();
    col->type = f.type;
    col->array = array;
    if (!f.type.is_list) {
      col->scalar = WriterFor(*array->type(), f.type.scalar);
    } else if (array->type_id() == arrow::Type::LIST) {
      col->values = static_cast<const arrow::ListArray&>(*array).values().get();
      col->scalar = WriterFor(*col->values->type(), f.type.scalar);
    } else if (array->type_id() == arrow::Type::LARGE_LIST) {
      col->values = static_cast<const arrow::LargeListArray&>(*array).values().get();
      col->scalar = WriterFor(*col->values->type(), f.type.scalar);
    } else if (array->type_id() == arrow::Type::FIXED_SIZE_LIST) {
      col->values = static_cast<const arrow::FixedSizeListArray&>(*array).values().get();
      col->scalar = WriterFor(*col->values->type(), f.type.scalar);
    }
    col->slow = col->scalar == nullptr;
    GRANARY_RETURN_NOT_OK(enc.CheckRows(enc.columns_.size(), *col));
    enc.columns_.push_back(std::move(col));
  }
  return enc;
}

Status BodyEncoder::CheckRows(size_t f, const Column& c) const {
  const int64_t rows = c.array->length();
  if (c.slow) {
    for (int64_t row = 0; row < rows; ++row) {
      if (c.array->IsNull(row)) continue;
      auto value = ValueAt(*c.array, row, c.type);
      if (!value.ok()) {
        return Status::InvalidArgument(fmt::format("feature view '{}': feature '{}', row {}: {}",
                                                   view_->name(), view_->features()[f].name, row,
                                                   value.status().message()));
      }
    }
    return Status::OK();
  }
  // Times in seconds, milliseconds or days may be beyond int64 microseconds (the fast writers
  // convert them unchecked).
  auto beyond = [&](int64_t row, const std::string& what) {
    return Status::InvalidArgument(fmt::format("feature view '{}': feature '{}', row {}: {}",
                                               view_->name(), view_->features()[f].name, row,
                                               what));
  };
  if (!c.type.is_list) {
    if (!TimesCanOverflow(*c.array)) return Status::OK();
    for (int64_t row = 0; row < rows; ++row) {
      if (c.array->IsNull(row)) continue;
      if (auto what = TimeBeyondRangeAt(*c.array, row)) return beyond(row, *what);
    }
    return Status::OK();
  }
  const bool times = TimesCanOverflow(*c.values);
  if (c.values->null_count() == 0 && !times) return Status::OK();
  for (int64_t row = 0; row < rows; ++row) {
    if (c.array->IsNull(row)) continue;
    const auto [begin, length] = ListRange(c, row);
    for (int64_t j = begin; j < begin + length; ++j) {
      if (times && !c.values->IsNull(j)) {
        if (auto what = TimeBeyondRangeAt(*c.values, j)) return beyond(row, *what);
      }
      if (c.values->IsNull(j)) {
        return Status::InvalidArgument(fmt::format(
            "feature view '{}': feature '{}' has a null list element in row {}; list elements "
            "must not be null (drop or replace the nulls before writing)",
            view_->name(), view_->features()[f].name, row));
      }
    }
  }
  return Status::OK();
}

WriteOrder BodyEncoder::Order(int64_t row) const {
  // Make checked that every time fits int64 microseconds.
  auto micros = [](const arrow::Array* a, int64_t i) {
    return TimestampToMicros(static_cast<const arrow::TimestampArray&>(*a).Value(i),
                             static_cast<const arrow::TimestampType&>(*a->type()).unit())
        .value_or(0);
  };
  WriteOrder order;
  order.event_micros = micros(event_, row);
  if (created_ != nullptr && !created_->IsNull(row)) {
    order.has_created = true;
    order.created_micros = micros(created_, row);
  }
  return order;
}

Status BodyEncoder::Append(int64_t row, std::string* out) const {
  const WriteOrder order = Order(row);
  PutFixed<uint32_t>(out, view_->fingerprint());
  PutFixed<int64_t>(out, order.event_micros);
  PutVarint(out,
            order.has_created ? layout::CreatedCode(order.event_micros, order.created_micros) : 0);
  const size_t bitmap_at = out->size();
  out->append(view_->null_bitmap_bytes(), '\0');
  for (size_t f = 0; f < columns_.size(); ++f) {
    const Column& c = *columns_[f];
    if (c.array->IsNull(row)) {
      (*out)[bitmap_at + f / 8] |= static_cast<char>(1u << (f % 8));
      continue;
    }
    if (c.slow) {
      GRANARY_ASSIGN_OR_RAISE(Value v, ValueAt(*c.array, row, c.type));
      EncodeValueTo(v, out);
      continue;
    }
    if (!c.type.is_list) {
      c.scalar(*c.array, row, out);
      continue;
    }
    // Make checked that no element is null.
    const auto [begin, length] = ListRange(c, row);
    PutVarint(out, static_cast<uint64_t>(length));
    for (int64_t j = begin; j < begin + length; ++j) c.scalar(*c.values, j, out);
  }
  return Status::OK();
}

Status EncodeBody(const ViewLayout& view, WriteOrder order, const std::vector<Value>& values,
                  std::string* out) {
  const auto& features = view.features();
  if (values.size() != features.size()) {
    return Status::InvalidArgument(fmt::format("feature view '{}' has {} features, got {} values",
                                               view.name(), features.size(), values.size()));
  }
  PutFixed<uint32_t>(out, view.fingerprint());
  PutFixed<int64_t>(out, order.event_micros);
  PutVarint(out,
            order.has_created ? layout::CreatedCode(order.event_micros, order.created_micros) : 0);
  const size_t bitmap_at = out->size();
  out->append(view.null_bitmap_bytes(), '\0');
  for (size_t f = 0; f < features.size(); ++f) {
    if (values[f].is_null()) {
      (*out)[bitmap_at + f / 8] |= static_cast<char>(1u << (f % 8));
      continue;
    }
    if (values[f].type() != features[f].type) {
      return Status::InvalidArgument(fmt::format(
          "feature view '{}': feature '{}' is {}, got {} ({})", view.name(), features[f].name,
          features[f].type.ToString(), values[f].type().ToString(), values[f].ToString()));
    }
    EncodeValueTo(values[f], out);
  }
  return Status::OK();
}

}  // namespace granary
