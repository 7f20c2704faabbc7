// SpilledAnswers: the window join's answers when they are more than it may hold in row order
// (RowOrderColumns for every entity row): each piece (a partition's answers, in the partition's
// order, with their row positions) is cut by ranges of `range_rows` row positions and buffered;
// past `buffer_bytes` buffered, every range's buffered rows are written to one Arrow IPC file as
// a record batch of their own (positions, then one column per answer) and released. Emit then
// reads each range's batches back in row order, puts them in order in a RowOrderColumns of the
// range and hands the range's columns out, one range at a time: at most the buffer and one
// range's answers (twice: read back and in order) are in memory, never all of them.
//
// Every row position in [0, num_rows) must be placed exactly once across all pieces; a position
// out of range is an Internal error from Place, one placed twice or never placed one from Emit
// (RowOrderColumns' checks, per range). Values, nulls and types are RowOrderColumns': the columns
// Emit gives are, concatenated, the ones RowOrderColumns::Finish gives for the same pieces, except
// that each range has a validity bitmap only when it has a null. Any Arrow type (fixed width or
// not).
//
// The file lives in a spill folder ("granary-spill-XXXXXX" under `spill_parent`, spill_folder.h)
// made by the first write and removed with the object (after Emit, on an error, on cancellation).
//
// Thread-safe: Place may be called from several threads at once (the cutting of a piece runs
// outside the lock; buffering and writing under it). Emit is called once, after the last Place,
// on one thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "granary/common/mutex.h"
#include "granary/common/result.h"
#include "granary/offline/spill_folder.h"

namespace arrow {
class Array;
class ChunkedArray;
class DataType;
class RecordBatch;
class Schema;
namespace io {
class FileOutputStream;
}
namespace ipc {
class RecordBatchWriter;
}
}  // namespace arrow

namespace granary {

struct SpilledAnswersOptions {
  int64_t num_rows = 0;
  int64_t range_rows = 1;              // row positions per range handed out by Emit (at least 1)
  int64_t buffer_bytes = 0;            // buffered past this, the ranges' rows are written out
  std::filesystem::path spill_parent;  // where the spill folder goes; empty: the temp dir
};

class SpilledAnswers {
 public:
  // One column per type.
  static Result<std::unique_ptr<SpilledAnswers>> Make(
      std::vector<std::shared_ptr<arrow::DataType>> types, SpilledAnswersOptions options);
  ~SpilledAnswers();
  SpilledAnswers(const SpilledAnswers&) = delete;
  SpilledAnswers& operator=(const SpilledAnswers&) = delete;

  // As RowOrderColumns::Place: `rows` int64 without nulls, `values` one array per column, each as
  // long as `rows` and of its column's type.
  Status Place(const arrow::Array& rows, const std::vector<std::shared_ptr<arrow::Array>>& values)
      EXCLUDES(mu_);

  // Calls `emit` with the columns of rows [first_row, first_row + length) for each range in
  // row order (the first at row 0, each next one where the one before ended; one chunk each).
  // Stops at the first error, `emit`'s or its own (IOError when the file cannot be read back).
  using Emitter = std::function<Status(int64_t first_row,
                                       std::vector<std::shared_ptr<arrow::ChunkedArray>> columns)>;
  Status Emit(const Emitter& emit) EXCLUDES(mu_);

  // Bytes written to the spill file so far (Arrow IPC, framing included).
  int64_t bytes_spilled() const EXCLUDES(mu_);

 private:
  explicit SpilledAnswers(std::vector<std::shared_ptr<arrow::DataType>> types,
                          SpilledAnswersOptions options);
  Status FlushLocked() REQUIRES(mu_);

  const std::vector<std::shared_ptr<arrow::DataType>> types_;
  const SpilledAnswersOptions options_;
  const int64_t num_ranges_;
  std::shared_ptr<arrow::Schema> schema_;  // "row" (int64), then "answer0", "answer1", ...

  mutable Mutex mu_;
  // Per range: the pieces' rows buffered (slices of the cut pieces) and the file's batches.
  std::vector<std::vector<std::shared_ptr<arrow::RecordBatch>>> buffered_ GUARDED_BY(mu_);
  std::vector<std::vector<int>> batches_ GUARDED_BY(mu_);
  int64_t buffered_bytes_ GUARDED_BY(mu_) = 0;
  int written_batches_ GUARDED_BY(mu_) = 0;
  std::optional<SpillFolder> folder_ GUARDED_BY(mu_);
  std::filesystem::path file_ GUARDED_BY(mu_);
  std::shared_ptr<arrow::io::FileOutputStream> out_ GUARDED_BY(mu_);
  std::shared_ptr<arrow::ipc::RecordBatchWriter> writer_ GUARDED_BY(mu_);
  int64_t bytes_spilled_ GUARDED_BY(mu_) = 0;
  bool emitted_ GUARDED_BY(mu_) = false;
};

}  // namespace granary
