// RowOrderColumns: columns of `num_rows` values each, assembled in place from pieces that arrive
// in any order, each piece with the row positions its values belong to (a partition's answers,
// computed in the partition's own order).
//
// Fixed-width columns (numbers, timestamps, bools, decimals) are written straight into their
// final buffers as each piece is placed, so the caller can free the piece at once: the columns
// cost their final size and never a second copy (no concatenation of the pieces, no Take by an
// inverse permutation, no position arrays). Other columns (strings, binaries, lists) keep their
// pieces until Finish, which concatenates them and puts them in row order by one Take.
//
// Every row position in [0, num_rows) must be placed exactly once across all pieces; a position
// out of range or placed twice is an Internal error from Place, a position never placed one from
// Finish. A null value is a null in the output (its value slot is zero); the output has no
// validity bitmap when no value is null.
//
// Thread-safe: Place may be called from several threads at once (one mutex; each placement is a
// copy of the piece's values, short beside computing them). Finish is called once, after the
// last Place, on one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "granary/common/mutex.h"
#include "granary/common/result.h"

namespace arrow {
class Array;
class Buffer;
class ChunkedArray;
class DataType;
}  // namespace arrow

namespace granary {

class RowOrderColumns {
 public:
  // One column per type, each `num_rows` long.
  static Result<std::unique_ptr<RowOrderColumns>> Make(
      std::vector<std::shared_ptr<arrow::DataType>> types, int64_t num_rows);

  // `rows`: int64, the row position of each value of the piece; `values`: one array per column,
  // as long as `rows` and of the column's type.
  Status Place(const arrow::Array& rows, const std::vector<std::shared_ptr<arrow::Array>>& values)
      EXCLUDES(mu_);

  // The columns, one chunk each, in row order.
  Result<std::vector<std::shared_ptr<arrow::ChunkedArray>>> Finish() EXCLUDES(mu_);

 private:
  struct Column {
    std::shared_ptr<arrow::DataType> type;
    int byte_width = 0;  // 0: bits (bool); -1: not fixed width (pieces kept)
    std::shared_ptr<arrow::Buffer> values;
    std::shared_ptr<arrow::Buffer> validity;
    int64_t null_count = 0;
    std::vector<std::shared_ptr<arrow::Array>> pieces;  // not fixed width: in placing order
  };

  explicit RowOrderColumns(int64_t num_rows) : num_rows_(num_rows) {}

  const int64_t num_rows_;
  Mutex mu_;
  std::vector<Column> columns_ GUARDED_BY(mu_);
  std::shared_ptr<arrow::Buffer> placed_ GUARDED_BY(mu_);  // a bit per row position
  int64_t rows_placed_ GUARDED_BY(mu_) = 0;
  // The row positions of each piece kept (when some column is not fixed width), in placing order.
  std::vector<std::shared_ptr<arrow::Array>> kept_rows_ GUARDED_BY(mu_);
};

}  // namespace granary
