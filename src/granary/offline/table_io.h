// Reading and writing whole tables in Parquet or CSV, chosen by the file's extension: entity files
// in, training sets out.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "granary/common/result.h"

namespace arrow {
class DataType;
class RecordBatch;
class Schema;
class Table;
}  // namespace arrow

namespace granary {

// Reads `path` (.parquet or .csv; .csv.gz etc. are not supported). CSV columns are typed by
// Arrow's inference except those in `csv_types` (e.g. join keys read as their declared type, so
// "007" stays a string). NotFound, or InvalidArgument naming the file and what is wrong.
Result<std::shared_ptr<arrow::Table>> ReadTableFile(
    const std::filesystem::path& path,
    const std::map<std::string, std::shared_ptr<arrow::DataType>>& csv_types = {});

// Writes `table` to `path` (.parquet or .csv) atomically: to a temporary file beside it, renamed
// over `path` only when complete, so a failure never leaves a half-written file.
Status WriteTableFile(const arrow::Table& table, const std::filesystem::path& path);

// Rows in a row group of the Parquet files TableFileWriter writes: a training set handed out in
// batches cut at its multiples is written exactly as the whole table would be.
inline constexpr int64_t kTableFileRowGroupRows = 256 * 1024;

// A table file (.parquet or .csv) written batch by batch as the batches arrive (a training set
// streamed from the offline engine), so the writer holds one batch and the Parquet writer's
// current row group (at most 256 Ki rows, encoded), however long the table.
//
// Atomic as WriteTableFile: the batches go to a temporary file beside `path`
// (".NAME.tmp-XXXXXX", in the same folder so the rename cannot cross file systems), which
// Commit() closes and renames over `path`. Until then `path` is untouched (an older file of that
// name stays as it was); destroying the writer without a successful Commit() (an error in the
// stream, a lost cluster, Ctrl-C) removes the temporary file. A process killed outright leaves
// the temporary file behind, never a partial `path`; the writer holds an exclusive flock(2) on
// its temporary file while it lives, and Open removes the ones of the same `path` that no
// writer holds and that are at least 10 s old (left by runs killed outright).
//
// One thread at a time.
class TableFileWriter {
 public:
  // Creates the temporary file for a table of `schema`. InvalidArgument for an extension other
  // than .parquet or .csv; IOError naming the folder when the file cannot be created.
  static Result<std::unique_ptr<TableFileWriter>> Open(const std::filesystem::path& path,
                                                       std::shared_ptr<arrow::Schema> schema);
  ~TableFileWriter();
  TableFileWriter(const TableFileWriter&) = delete;
  TableFileWriter& operator=(const TableFileWriter&) = delete;

  // Appends `batch` (of the schema given to Open). IOError naming `path` on failure, after which
  // only the destructor may be called.
  Status Write(const arrow::RecordBatch& batch);
  Status Write(const arrow::Table& table);
  // Finishes the file and renames it over `path`. At most once.
  Status Commit();

  const std::filesystem::path& path() const;
  // The temporary file the batches go to until Commit().
  const std::filesystem::path& temp_path() const;
  // Temporary files of `path` that killed runs left and Open removed (to tell the user).
  const std::vector<std::filesystem::path>& removed_abandoned() const;
  int64_t rows() const;

  class Impl;

 private:
  explicit TableFileWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace granary
