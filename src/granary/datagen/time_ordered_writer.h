// TimeOrderedTableWriter: writes one generated table in event-time order although its rows arrive
// grouped otherwise (customer by customer, shard after shard), as a lake holds event tables.
//
// Rows are spilled into an Arrow IPC file beside the output, one record batch per arriving batch
// and time bucket (a week). Close() reads each bucket back, sorts it by time and appends it to the
// Parquet file, whose row groups (at most `row_group_rows`) then each span a short time range: a
// reader that asks for one day skips the others by their statistics (docs/DATAGEN.md). The sort is
// stable, so rows of one instant keep the order in which they were appended and the bytes depend
// only on the order of Append calls. Memory: one bucket of rows at Close.
//
// One thread at a time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "granary/common/result.h"
#include "granary/common/time.h"

namespace arrow {
class RecordBatch;
class Schema;
namespace ipc {
class RecordBatchWriter;
}
namespace io {
class FileOutputStream;
}
}  // namespace arrow

namespace granary::datagen {

class TimeOrderedTableWriter {
 public:
  // `time_column` is a timestamp column of `schema`; times before `origin` go to the first bucket.
  static Result<std::unique_ptr<TimeOrderedTableWriter>> Open(const std::filesystem::path& path,
                                                              std::shared_ptr<arrow::Schema> schema,
                                                              std::string time_column,
                                                              Timestamp origin, Duration bucket,
                                                              int64_t row_group_rows);
  ~TimeOrderedTableWriter();  // removes the spill file

  // Spills the rows of `batch` (the file's schema) by time bucket.
  Status Append(const arrow::RecordBatch& batch);
  // Writes the Parquet file in time order and removes the spill; the file's size in bytes.
  Result<int64_t> Close();

  int64_t rows() const { return rows_; }

 private:
  TimeOrderedTableWriter() = default;
  std::filesystem::path path_;
  std::filesystem::path spill_path_;
  std::shared_ptr<arrow::Schema> schema_;
  std::string time_column_;
  int time_index_ = -1;
  int64_t origin_micros_ = 0;
  int64_t bucket_micros_ = 0;
  int64_t row_group_rows_ = 0;
  std::shared_ptr<arrow::io::FileOutputStream> spill_;
  std::shared_ptr<arrow::ipc::RecordBatchWriter> spill_writer_;
  std::vector<int64_t> bucket_of_batch_;  // the bucket of each spilled batch, in spill order
  int64_t rows_ = 0;
};

}  // namespace granary::datagen
