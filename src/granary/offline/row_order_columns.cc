#include "granary/offline/row_order_columns.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/util/bit_util.h>
#include <fmt/format.h>

#include <cstring>

namespace granary {
namespace {

Status ArrowError(const arrow::Status& st) { return Status::Internal(st.ToString()); }

// Copies the valid values of a piece (of `width` bytes each, from `from` at `offset`) to their
// rows' slots of `out`; a null's slot gets zeros, so that the buffer's bytes depend on the values
// only. Called with a constant width where it can be, which the compiler turns into plain loads
// and stores.
inline void PlaceValues(const int64_t* rows, int64_t length, const uint8_t* from,
                        const uint8_t* valid, int64_t offset, int width, uint8_t* out) {
  for (int64_t i = 0; i < length; ++i) {
    uint8_t* slot = out + rows[i] * width;
    if (valid == nullptr || arrow::bit_util::GetBit(valid, offset + i)) {
      std::memcpy(slot, from + (offset + i) * width, width);
    } else {
      std::memset(slot, 0, width);
    }
  }
}

}  // namespace

Result<std::unique_ptr<RowOrderColumns>> RowOrderColumns::Make(
    std::vector<std::shared_ptr<arrow::DataType>> types, int64_t num_rows) {
  if (num_rows < 0) return Status::Internal("RowOrderColumns: a negative row count");
  std::unique_ptr<RowOrderColumns> out(new RowOrderColumns(num_rows));
  MutexLock lock(&out->mu_);
  auto placed = arrow::AllocateEmptyBitmap(num_rows);
  if (!placed.ok()) return ArrowError(placed.status());
  out->placed_ = std::move(*placed);
  for (auto& type : types) {
    Column column;
    const auto* fixed = dynamic_cast<const arrow::FixedWidthType*>(type.get());
    if (type->id() == arrow::Type::BOOL) {
      column.byte_width = 0;
    } else if (fixed != nullptr && type->id() != arrow::Type::DICTIONARY &&
               type->id() != arrow::Type::EXTENSION && fixed->bit_width() > 0 &&
               fixed->bit_width() % 8 == 0) {
      column.byte_width = fixed->bit_width() / 8;
    } else {
      column.byte_width = -1;
    }
    if (column.byte_width >= 0) {
      // Zeroed only where every slot is not written whole: the bits of bools, not the values.
      if (column.byte_width == 0) {
        auto bits = arrow::AllocateEmptyBitmap(num_rows);
        if (!bits.ok()) return ArrowError(bits.status());
        column.values = std::move(*bits);
      } else {
        auto values = arrow::AllocateBuffer(num_rows * column.byte_width);
        if (!values.ok()) return ArrowError(values.status());
        column.values = std::move(*values);
      }
      auto validity = arrow::AllocateEmptyBitmap(num_rows);
      if (!validity.ok()) return ArrowError(validity.status());
      column.validity = std::move(*validity);
    }
    column.type = std::move(type);
    out->columns_.push_back(std::move(column));
  }
  return out;
}

Status RowOrderColumns::Place(const arrow::Array& rows,
                              const std::vector<std::shared_ptr<arrow::Array>>& values) {
  if (rows.type_id() != arrow::Type::INT64 || rows.null_count() != 0) {
    return Status::Internal("RowOrderColumns: row positions must be int64 without nulls");
  }
  const int64_t length = rows.length();
  const int64_t* ids = rows.data()->GetValues<int64_t>(1);
  MutexLock lock(&mu_);
  if (values.size() != columns_.size()) {
    return Status::Internal(fmt::format("RowOrderColumns: {} columns placed, {} expected",
                                        values.size(), columns_.size()));
  }
  for (size_t c = 0; c < columns_.size(); ++c) {
    if (values[c]->length() != length || !values[c]->type()->Equals(*columns_[c].type)) {
      return Status::Internal(
          fmt::format("RowOrderColumns: column {} placed as {} values of {}, expected {} of {}", c,
                      values[c]->length(), values[c]->type()->ToString(), length,
                      columns_[c].type->ToString()));
    }
  }
  uint8_t* placed = placed_->mutable_data();
  for (int64_t i = 0; i < length; ++i) {
    const int64_t r = ids[i];
    if (r < 0 || r >= num_rows_) {
      return Status::Internal(
          fmt::format("RowOrderColumns: row position {} of {} rows", r, num_rows_));
    }
    if (arrow::bit_util::GetBit(placed, r)) {
      return Status::Internal(fmt::format("RowOrderColumns: row position {} placed twice", r));
    }
    arrow::bit_util::SetBit(placed, r);
  }
  rows_placed_ += length;
  bool kept = false;
  for (size_t c = 0; c < columns_.size(); ++c) {
    Column& column = columns_[c];
    const arrow::ArrayData& piece = *values[c]->data();
    if (column.byte_width < 0) {
      column.pieces.push_back(values[c]);
      kept = true;
      continue;
    }
    const int64_t offset = piece.offset;
    const uint8_t* valid = values[c]->null_count() > 0 ? piece.buffers[0]->data() : nullptr;
    const uint8_t* from = piece.buffers[1]->data();
    uint8_t* validity = column.validity->mutable_data();
    for (int64_t i = 0; i < length; ++i) {
      if (valid == nullptr || arrow::bit_util::GetBit(valid, offset + i)) {
        arrow::bit_util::SetBit(validity, ids[i]);
      } else {
        ++column.null_count;
      }
    }
    uint8_t* out = column.values->mutable_data();
    switch (column.byte_width) {
      case 0:
        for (int64_t i = 0; i < length; ++i) {
          const bool set = (valid == nullptr || arrow::bit_util::GetBit(valid, offset + i)) &&
                           arrow::bit_util::GetBit(from, offset + i);
          arrow::bit_util::SetBitTo(out, ids[i], set);
        }
        break;
      case 8:  // int64, float64 and timestamps: the width of nearly every aggregation's answer
        PlaceValues(ids, length, from, valid, offset, 8, out);
        break;
      default:
        PlaceValues(ids, length, from, valid, offset, column.byte_width, out);
        break;
    }
  }
  if (kept) kept_rows_.push_back(arrow::MakeArray(rows.data()));
  return Status::OK();
}

Result<std::vector<std::shared_ptr<arrow::ChunkedArray>>> RowOrderColumns::Finish() {
  MutexLock lock(&mu_);
  if (rows_placed_ != num_rows_) {
    return Status::Internal(
        fmt::format("RowOrderColumns: {} of {} row positions placed", rows_placed_, num_rows_));
  }
  // The kept pieces' order -> row order, for the columns that are not fixed width.
  std::shared_ptr<arrow::Array> inverse;
  if (!kept_rows_.empty()) {
    auto buffer = arrow::AllocateBuffer(num_rows_ * static_cast<int64_t>(sizeof(int64_t)));
    if (!buffer.ok()) return ArrowError(buffer.status());
    auto* at = reinterpret_cast<int64_t*>((*buffer)->mutable_data());
    int64_t next = 0;
    for (const auto& rows : kept_rows_) {
      const int64_t* ids = rows->data()->GetValues<int64_t>(1);
      for (int64_t i = 0; i < rows->length(); ++i) at[ids[i]] = next++;
    }
    inverse = std::make_shared<arrow::Int64Array>(num_rows_, std::move(*buffer));
    kept_rows_.clear();
  }
  std::vector<std::shared_ptr<arrow::ChunkedArray>> out;
  for (Column& column : columns_) {
    std::shared_ptr<arrow::Array> array;
    if (column.byte_width >= 0) {
      auto validity = column.null_count > 0 ? std::move(column.validity) : nullptr;
      column.validity.reset();
      array = arrow::MakeArray(arrow::ArrayData::Make(
          column.type, num_rows_, {std::move(validity), std::move(column.values)},
          column.null_count));
    } else if (column.pieces.empty()) {
      auto empty = arrow::MakeArrayOfNull(column.type, 0);
      if (!empty.ok()) return ArrowError(empty.status());
      array = *empty;
    } else {
      auto combined = arrow::Concatenate(column.pieces);
      if (!combined.ok()) return ArrowError(combined.status());
      column.pieces.clear();
      auto taken = arrow::compute::Take(**combined, *inverse);
      if (!taken.ok()) return ArrowError(taken.status());
      array = *taken;
    }
    out.push_back(std::make_shared<arrow::ChunkedArray>(std::move(array)));
  }
  columns_.clear();
  return out;
}

}  // namespace granary
