// The point-in-time join's gather pass (pit_join.cc): the one list of chosen rows and the output
// columns it writes. Fixed-width columns are scattered straight to their entity rows
// (ScatteredColumn); the others are gathered in read order and put in entity order with one
// Take by EntityOrder. Internal to the offline join; one thread at a time.
#pragma once

#include <arrow/api.h>
#include <arrow/util/bit_util.h>
#include <fmt/format.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "granary/common/result.h"
#include "granary/offline/pit_join.h"

namespace granary {

// The gather pass's one list of chosen rows is the match pass's vector, compacted and sorted in
// place (no second list): in it a ChosenRow's `index` is the read position of the chosen row
// and its `event_ts` field the entity row that chose it.
inline int64_t EntityRowOf(const ChosenRow& chosen) { return chosen.event_ts; }

// An output column of a fixed-width type (numbers, times, dates, bools) that the gather pass
// writes straight into, each value at its entity row: no pieces in read order to hold, and no
// second pass (a Take of every column by the entity order) to put them in place. Rows that get
// no value stay null (their value bytes or bits zero).
class ScatteredColumn {
 public:
  static bool Supports(const arrow::DataType& type) {
    return arrow::is_primitive(type.id()) &&
           (type.id() == arrow::Type::BOOL || type.byte_width() > 0);
  }

  // Bytes of a column of `rows` rows of `type` (which Supports).
  static int64_t BytesFor(const arrow::DataType& type, int64_t rows) {
    const int64_t bitmap = arrow::bit_util::BytesForBits(rows);
    return (type.id() == arrow::Type::BOOL ? bitmap : rows * type.byte_width()) + bitmap;
  }

  static Result<std::unique_ptr<ScatteredColumn>> Make(std::shared_ptr<arrow::DataType> type,
                                                       int64_t rows) {
    auto column = std::unique_ptr<ScatteredColumn>(new ScatteredColumn());
    // Bools are bits: width 0.
    column->width_ = type->id() == arrow::Type::BOOL ? 0 : type->byte_width();
    column->type_ = std::move(type);
    column->rows_ = rows;
    auto values = column->width_ == 0 ? arrow::AllocateEmptyBitmap(rows)
                                      : arrow::AllocateBuffer(rows * column->width_);
    auto validity = arrow::AllocateEmptyBitmap(rows);  // zeroed: every row null
    if (!values.ok() || !validity.ok()) {
      return Status::Internal(fmt::format("out of memory for a column of {} rows", rows));
    }
    column->values_ = std::move(*values);
    column->validity_ = std::move(*validity);
    if (column->width_ > 0) {
      std::memset(column->values_->mutable_data(), 0, static_cast<size_t>(column->values_->size()));
    }
    return column;
  }

  // Copies the value at read position `chosen[i].index` (in `source`, of this column's type,
  // whose first row is at read position `offset`) to entity row EntityRowOf(chosen[i]), for i in
  // [begin, end); a null stays null.
  void Put(const arrow::ArrayData& source, int64_t offset, const ChosenRow* begin,
           const ChosenRow* end);

  std::shared_ptr<arrow::Array> Finish() {
    auto data = arrow::ArrayData::Make(type_, rows_, {std::move(validity_), std::move(values_)},
                                       arrow::kUnknownNullCount);
    return arrow::MakeArray(data);
  }

 private:
  ScatteredColumn() = default;
  std::shared_ptr<arrow::DataType> type_;
  int width_ = 0;  // bytes a value; 0: bits (bool)
  int64_t rows_ = 0;
  std::shared_ptr<arrow::Buffer> values_;
  std::shared_ptr<arrow::Buffer> validity_;
};

// Sorts `chosen` (read positions up to `last_position`) by (read position, entity row) into a
// list of its own size (the one given may have room for every entity row; only the matched are
// kept): placed first into buckets of the position's top bits (about 32 rows each), which in
// order are ordered by position, then each bucket sorted on its own, in the cache. A std::sort
// of the whole list took 30-40 ms a view of 1 M rows, on one thread while the readers waited.
void SortByReadPosition(std::vector<ChosenRow>* chosen, int64_t last_position);

// Entity row i's position in `chosen` (the gathered values, in read order), null where the row
// chose none: the indices of the Take that puts the gathered values in entity order.
Result<std::shared_ptr<arrow::Array>> EntityOrder(const std::vector<ChosenRow>& chosen,
                                                  int64_t rows);

// Bytes of EntityOrder's array for `rows` entity rows.
int64_t EntityOrderBytes(int64_t rows);

// Bytes the gather holds for an output column of `type` over `rows` entity rows, `matched` of
// which chose a row: a scattered column's size, or else the pieces in read order and the column
// in entity order (an estimate: 16 bytes a value each, as for strings).
int64_t GatherBytesFor(const arrow::DataType& type, int64_t rows, int64_t matched);

}  // namespace granary
