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
//
// The column may be built in chunks of `chunk_rows` rows (a power of two; the last chunk
// shorter), each with buffers of its own, so that a consumer that goes through the rows in order
// (the training set's writer, a row group at a time) can free each chunk once it is done with
// it. With 0 (or a count that is not a power of two) it is one chunk.
class ScatteredColumn {
 public:
  static bool Supports(const arrow::DataType& type) {
    return arrow::is_primitive(type.id()) &&
           (type.id() == arrow::Type::BOOL || type.byte_width() > 0);
  }

  // Bytes of a column of `rows` rows of `type` (which Supports), in one chunk (chunks add a
  // few bytes of bitmap rounding each).
  static int64_t BytesFor(const arrow::DataType& type, int64_t rows) {
    const int64_t bitmap = arrow::bit_util::BytesForBits(rows);
    return (type.id() == arrow::Type::BOOL ? bitmap : rows * type.byte_width()) + bitmap;
  }

  static Result<std::unique_ptr<ScatteredColumn>> Make(std::shared_ptr<arrow::DataType> type,
                                                       int64_t rows, int64_t chunk_rows = 0);

  // Copies the value at read position `chosen[i].index` (in `source`, of this column's type,
  // whose first row is at read position `offset`) to entity row EntityRowOf(chosen[i]), for i in
  // [begin, end); a null stays null.
  void Put(const arrow::ArrayData& source, int64_t offset, const ChosenRow* begin,
           const ChosenRow* end);

  // As Put, from a source that holds only chosen rows: its row k is at read position
  // `positions[k]` (ascending, distinct; `count` of them), and each chosen[i].index, for i in
  // [begin, end), is one of them (several entity rows may choose one).
  void PutChosen(const arrow::ArrayData& source, const int64_t* positions, int64_t count,
                 const ChosenRow* begin, const ChosenRow* end);

  // The column, in its chunks. Once only.
  std::shared_ptr<arrow::ChunkedArray> Finish();

 private:
  ScatteredColumn() = default;
  // Copies the value of source row `row_of(c)` to entity row EntityRowOf(*c), for each c in
  // [begin, end), the rows ascending; nulls stay null.
  template <typename RowOf>
  void PutRows(const arrow::ArrayData& source, const ChosenRow* begin, const ChosenRow* end,
               RowOf row_of);

  std::shared_ptr<arrow::DataType> type_;
  int width_ = 0;  // bytes a value; 0: bits (bool)
  int64_t rows_ = 0;
  // Entity row r is row (r & chunk_mask_) of chunk (r >> chunk_shift_).
  int chunk_shift_ = 63;
  int64_t chunk_mask_ = INT64_MAX;
  std::vector<std::shared_ptr<arrow::Buffer>> values_;  // one per chunk
  std::vector<std::shared_ptr<arrow::Buffer>> validity_;
  std::vector<uint8_t*> value_data_;  // values_[k]->mutable_data()
  std::vector<uint8_t*> bit_data_;    // validity_[k]->mutable_data()
};

// Sorts `chosen` (read positions up to `last_position`) by (read position, entity row) into a
// list of its own size (the one given may have room for every entity row; only the matched are
// kept): placed first into buckets of the position's top bits (about 32 rows each), which in
// order are ordered by position, then each bucket sorted on its own, in the cache. A std::sort
// of the whole list took 30-40 ms a view of 1 M rows, on one thread while the readers waited.
void SortByReadPosition(std::vector<ChosenRow>* chosen, int64_t last_position);

// The number of distinct read positions in `chosen` (sorted by read position): the values a
// gather in read order holds, one per chosen row however many entity rows chose it (a small
// view's few rows are chosen by many entity rows each).
int64_t DistinctChosenRows(const std::vector<ChosenRow>& chosen);

// For entity row i, the place of its chosen row among the distinct read positions of `chosen`
// (sorted by read position): the gathered values, each chosen row's once, in read order. Null
// where the row chose none. The indices of the Take that puts the gathered values in entity
// order: int32 (int64 past 2^31 - 1 entity rows).
Result<std::shared_ptr<arrow::Array>> EntityOrder(const std::vector<ChosenRow>& chosen,
                                                  int64_t rows);

// Bytes of EntityOrder's array for `rows` entity rows.
int64_t EntityOrderBytes(int64_t rows);

// Bytes the gather holds for an output column of `type` over `rows` entity rows, `distinct` of
// them gathered (DistinctChosenRows): a scattered column's size, or else the values gathered in
// read order and the column in entity order (an estimate: 16 bytes a value each, as for
// strings).
int64_t GatherBytesFor(const arrow::DataType& type, int64_t rows, int64_t distinct);

}  // namespace granary
