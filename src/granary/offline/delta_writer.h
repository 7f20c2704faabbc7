// Writes the transaction log of a new Delta Lake table whose Parquet data files already exist
// under the table folder: one commit, version 0, holding commitInfo, protocol (reader 1,
// writer 2), metaData (schemaString, partitionColumns) and one add action per file with its
// partitionValues, size, modificationTime, dataChange and stats (numRecords, minValues,
// maxValues, nullCount for the columns given). See the Delta protocol, "Add File and Remove
// File" and "Per-file Statistics". Stateless functions; thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "granary/common/result.h"

namespace arrow {
class Schema;
}

namespace granary::datagen {

// Statistics of one column of one data file, values already as JSON (numbers, or quoted
// strings; timestamps as "2026-01-01T00:15:00.000Z").
struct DeltaColumnStats {
  std::string column;
  std::string min_json, max_json;
  int64_t null_count = 0;
};

struct DeltaAddFile {
  std::string
      path;  // relative to the table folder, e.g. "event_date=2026-01-01/part-00000-....parquet"
  std::map<std::string, std::string> partition_values;
  int64_t size = 0;                  // bytes
  int64_t modification_time_ms = 0;  // milliseconds since the epoch
  int64_t num_records = 0;
  std::vector<DeltaColumnStats> stats;
};

struct DeltaTableSpec {
  std::string id;  // a UUID
  std::string name, description;
  std::shared_ptr<arrow::Schema> schema;  // every column, partition columns included
  std::vector<std::string> partition_columns;
  int64_t created_time_ms = 0;  // also the commit's timestamp
};

// The Delta schemaString of an Arrow schema: long, integer, double, boolean, string, date and
// timestamp (timestamp[us] with a time zone). Other types are InvalidArgument.
Result<std::string> DeltaSchemaString(const arrow::Schema& schema);

// Writes <table>/_delta_log/00000000000000000000.json (through a temporary file and a rename).
// AlreadyExists if the table has a log already.
Status WriteDeltaLog(const std::filesystem::path& table, const DeltaTableSpec& spec,
                     const std::vector<DeltaAddFile>& files);

// "2026-01-01T00:15:00.000Z": the form Delta writers use for timestamp statistics
// (milliseconds; callers pass whole milliseconds).
std::string DeltaTimestampJson(int64_t micros);

// A version-4-shaped UUID made from two 64-bit numbers (deterministic file and table ids).
std::string UuidFromBits(uint64_t hi, uint64_t lo);

}  // namespace granary::datagen
