// Fragments of a data source: one data file each (Parquet, CSV, or a Delta table's Parquet file),
// with partition values, planned and pruned for an event-time range, and read as raw Arrow
// batches under source column names. FeatureSourceScan (source_scan.h) builds on them.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "granary/common/result.h"
#include "granary/common/time.h"

namespace arrow {
class RecordBatch;
class RecordBatchReader;
class DataType;
}  // namespace arrow
namespace parquet {
class FileMetaData;
}

namespace granary {

enum class FragmentFormat { kParquet, kCsv };

// One data file to read.
struct Fragment {
  std::filesystem::path path;
  FragmentFormat format = FragmentFormat::kParquet;
  // Column (as named in the files) -> value from hive folders or the Delta log; nullopt is null.
  std::map<std::string, std::optional<std::string>> partition_values;
  // Parquet: footer and the row groups to read (after pruning).
  std::shared_ptr<parquet::FileMetaData> metadata;
  std::vector<int> row_groups;
  int64_t bytes_estimated = 0;
  int64_t rows_estimated = 0;  // rows in `row_groups`
};

// What to read from each fragment.
struct FragmentRequest {
  // Columns as named in the files; a column absent from a file is left out of its batches.
  std::vector<std::string> columns;
  // The event-time column (as named in the files), for row-group pruning; "" for none.
  std::string timestamp_column;
  std::optional<Timestamp> start, end;  // inclusive
  // CSV: the Arrow type to read each column as (others: utf8).
  std::map<std::string, std::shared_ptr<arrow::DataType>> csv_types;
  int64_t batch_rows = 64 * 1024;
};

// Hive partition values (key=value folders, percent-decoded; __HIVE_DEFAULT_PARTITION__ is null)
// of `file` below `root`.
std::map<std::string, std::optional<std::string>> HivePartitionValues(
    const std::filesystem::path& root, const std::filesystem::path& file);

// Reads the footer of a Parquet fragment and keeps the row groups whose timestamp statistics can
// hold rows in range; counts total and pruned row groups. IOError/InvalidArgument name the file.
Status PlanParquetFragment(const FragmentRequest& request, Fragment* fragment,
                           int64_t* row_groups_total, int64_t* row_groups_pruned);

// Opens a batch reader over a planned fragment: the requested columns that the file has, in the
// file's own names and types.
Result<std::shared_ptr<arrow::RecordBatchReader>> OpenFragment(const Fragment& fragment,
                                                               const FragmentRequest& request);

}  // namespace granary
