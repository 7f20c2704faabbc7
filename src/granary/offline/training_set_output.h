// TrainingSetOutput: the columns of a training set, in entity-row order, as the views' joins
// produce them, handed out as record batches of every column so that writing the training set
// never needs the whole table in memory.
//
// Each group of columns (the entity rows', then one group per view) is either held in memory or,
// when holding it would pass the byte limit the caller sets (a share of --memory-budget), spilled
// at once to an Arrow IPC stream file under a private spill folder and released. The batches
// handed out are cut at every multiple of `slice_rows` (the output file's row group) and at every
// chunk boundary of a held column, so that each batch is zero-copy slices of the held columns
// plus one batch read back from each spill file: writing holds one output row group of the
// spilled columns, not the table. The cuts are the ones the whole table's TableBatchReader made
// plus the row-group multiples at which the Parquet writer split those batches anyway, so the
// file written is byte for byte the one the whole table gave (TrainingSetOutput tests).
//
// Held columns are let go of chunk by chunk as the batches pass them (Next() goes through the
// rows once): a column built in chunks of the output's row group (ScatteredColumn) is freed as
// the file is written, and its pages are handed back to the system at the next Next(), so that
// the writer's buffers do not come on top of the whole table.
//
// Spill files are removed when the object is destroyed: after the last batch, on an error or on
// cancellation; a process killed outright leaves its folder (granary-output-XXXXXX) behind, which
// a later run removes (spill_folder.h).
//
// One thread at a time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "granary/common/cancel.h"
#include "granary/common/result.h"
#include "granary/offline/spill_folder.h"

namespace arrow {
class Array;
class ChunkedArray;
class Field;
class RecordBatch;
class RecordBatchReader;
class Schema;
namespace io {
class FileOutputStream;
class ReadableFile;
}  // namespace io
namespace ipc {
class RecordBatchWriter;
}
}  // namespace arrow

namespace granary {

struct TrainingSetOutputOptions {
  int64_t rows = 0;                    // the length of every column
  int64_t slice_rows = 1;              // batches end at every multiple of it (at least 1)
  int64_t hold_bytes = 0;              // columns held in memory up to this many bytes in all
  std::filesystem::path spill_parent;  // where the spill folder goes; empty: the temp dir
  const CancelFlag* cancel = nullptr;  // polled by Next(); may be null
};

// Where Add puts a group of columns.
enum class OutputHold {
  kWithinLimit,  // held while held_bytes() plus theirs stays within hold_bytes, else spilled
  kHold,         // held whatever the limit
  kSpill,        // spilled whatever the limit (a caller that knows they cannot be held)
};

// What Add did with a group of columns.
struct OutputPlacement {
  int64_t bytes = 0;     // the Arrow buffers of the group's columns
  bool spilled = false;  // written to `file` and released; else held
  std::filesystem::path file;
};

class TrainingSetOutput {
 public:
  static Result<std::unique_ptr<TrainingSetOutput>> Make(TrainingSetOutputOptions options);
  ~TrainingSetOutput();
  TrainingSetOutput(const TrainingSetOutput&) = delete;
  TrainingSetOutput& operator=(const TrainingSetOutput&) = delete;

  // Bytes of the Arrow buffers `columns` reference (shared buffers counted once per column).
  static int64_t BytesOf(const std::vector<std::shared_ptr<arrow::ChunkedArray>>& columns);

  // Appends a group of columns (each `rows` long) after those added before, held or spilled as
  // `hold` says (OutputHold). A training set of no rows holds everything. Not after Next().
  Result<OutputPlacement> Add(std::vector<std::shared_ptr<arrow::Field>> fields,
                              std::vector<std::shared_ptr<arrow::ChunkedArray>> columns,
                              OutputHold hold = OutputHold::kWithinLimit);

  // A group of columns spilled as it is made, for a caller that never holds it whole (the window
  // join's answers past its share of the budget): BeginSpilledGroup, then AppendToSpilledGroup
  // with consecutive pieces of rows from row 0 (one array per field, all as long), then
  // EndSpilledGroup once every row is appended (Internal error otherwise). The pieces are written
  // cut at the same rows as Add's spill would cut the whole columns (so the file written is the
  // same); at most one batch's rows (slice_rows) are buffered. Nothing else is added meanwhile.
  Status BeginSpilledGroup(std::vector<std::shared_ptr<arrow::Field>> fields);
  Status AppendToSpilledGroup(std::vector<std::shared_ptr<arrow::Array>> columns);
  Result<OutputPlacement> EndSpilledGroup();

  int64_t held_bytes() const { return held_bytes_; }
  int64_t spilled_bytes() const { return spilled_bytes_; }
  int64_t rows() const { return options_.rows; }
  // Every column added, in order.
  std::shared_ptr<arrow::Schema> schema() const;

  // The next batch of every column (rows in order), or nullptr after the last. Cancelled when
  // the options' flag is set; IOError or Corruption naming the file when a spill file cannot be
  // read back.
  Result<std::shared_ptr<arrow::RecordBatch>> Next();

 private:
  explicit TrainingSetOutput(TrainingSetOutputOptions options);
  Status Spill(size_t group);
  // Creates the group's spill file and its Arrow IPC stream writer.
  Status OpenSpillFile(size_t index, std::shared_ptr<arrow::io::FileOutputStream>* out,
                       std::shared_ptr<arrow::ipc::RecordBatchWriter>* writer);
  // Writes the open group's buffered pieces, rows [written, end), as one batch.
  Status WriteOpenGroupBatch(int64_t end);

  // A group of columns: held (`columns`) or in a spill file read back in order.
  struct Group {
    std::vector<std::shared_ptr<arrow::Field>> fields;
    // Held; empty once spilled. Next() lets go of each chunk once its batches are out.
    std::vector<std::shared_ptr<arrow::ChunkedArray>> columns;
    std::vector<int64_t> first_rows;  // the row each held column now starts at (Next())
    std::filesystem::path file;       // spilled
    std::shared_ptr<arrow::io::ReadableFile> in;
    std::shared_ptr<arrow::RecordBatchReader> reader;
    std::shared_ptr<arrow::RecordBatch> batch;  // the spilled rows [batch_start, batch_end)
    int64_t batch_start = 0;
    int64_t batch_end = 0;
  };

  TrainingSetOutputOptions options_;
  std::vector<Group> groups_;
  std::set<int64_t> cuts_;  // where batches end, ascending; the last is rows
  std::optional<SpillFolder> spill_dir_;
  int64_t held_bytes_ = 0;
  int64_t spilled_bytes_ = 0;
  std::shared_ptr<arrow::Schema> schema_;  // every column's, from the first Next()
  int64_t next_row_ = 0;
  bool reading_ = false;
  bool let_go_ = false;  // the last Next() let go of chunks of held columns

  // The group BeginSpilledGroup opened, until EndSpilledGroup.
  struct OpenGroup {
    std::shared_ptr<arrow::Schema> schema;
    std::shared_ptr<arrow::io::FileOutputStream> out;
    std::shared_ptr<arrow::ipc::RecordBatchWriter> writer;
    std::vector<std::vector<std::shared_ptr<arrow::Array>>> pieces;  // per column, not written
    int64_t written = 0;                                             // rows written
    int64_t appended = 0;  // rows appended (written and buffered)
    int64_t bytes = 0;
  };
  std::unique_ptr<OpenGroup> open_;
};

}  // namespace granary
