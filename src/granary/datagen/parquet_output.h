// Writing generated tables: a Parquet file writer (snappy, statistics on, row groups of at most
// 1 Mi rows) and a turn-taker that lets several threads append shards to one file in shard order,
// so that the bytes do not depend on the number of threads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>

#include "granary/common/mutex.h"
#include "granary/common/result.h"

namespace arrow {
class RecordBatch;
class Schema;
}  // namespace arrow
namespace parquet::arrow {
class FileWriter;
}

namespace granary::datagen {

// One Parquet file being written. One thread at a time.
class ParquetFileWriter {
 public:
  // Row groups hold at most `row_group_rows` rows; a row group spans several Write calls.
  static Result<std::unique_ptr<ParquetFileWriter>> Open(const std::filesystem::path& path,
                                                         std::shared_ptr<arrow::Schema> schema,
                                                         int64_t row_group_rows = 1 << 20);
  ~ParquetFileWriter();  // closes quietly if Close() was not called

  // Appends rows (the batch's schema must equal the file's).
  Status Write(const arrow::RecordBatch& batch);
  // Writes the footer and closes; the file size in bytes.
  Result<int64_t> Close();

  int64_t rows() const { return rows_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  ParquetFileWriter() = default;
  std::filesystem::path path_;
  std::unique_ptr<parquet::arrow::FileWriter> writer_;
  int64_t rows_ = 0;
};

// Hands out turns 0, 1, 2, ... to threads: RunInTurn(k, fn) waits until turns 0..k-1 are done,
// then runs fn. Cancel() wakes every waiter with Cancelled (used when a worker fails, so no one
// waits forever for a turn that will never come). Thread-safe.
class TurnTaker {
 public:
  Status RunInTurn(int64_t turn, const std::function<Status()>& fn);
  void Cancel();

 private:
  Mutex mu_;
  CondVar cv_;
  int64_t next_ GUARDED_BY(mu_) = 0;
  bool cancelled_ GUARDED_BY(mu_) = false;
};

}  // namespace granary::datagen
