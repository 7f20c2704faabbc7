// Writing Delta Lake transaction logs: the first commit of a new table (the data generator) and
// blind appends to an existing one (the feature server's push to the offline store).
//
// A commit is one newline-delimited JSON file _delta_log/<version, 20 digits>.json. Data files
// are written first, under the table folder; the commit that adds them is created with put-if-
// absent semantics (a hard link of a complete temporary file, which fails when the version
// exists), so two writers never overwrite each other's commit and a reader never sees a partial
// one. Actions written: commitInfo, protocol (reader 1, writer 2) and metaData for a new table;
// add actions with partitionValues, size, modificationTime, dataChange and stats (numRecords,
// minValues, maxValues, nullCount of the columns given). See the Delta protocol, "Add File and
// Remove File" and "Per-file Statistics". Stateless functions; thread-safe.
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

namespace granary {

// Statistics of one column of one data file, values already as JSON (numbers, or quoted
// strings; timestamps as "2026-01-01T00:15:00.000Z").
struct DeltaColumnStats {
  std::string column;
  std::string min_json, max_json;  // both empty: no min/max (only the null count)
  int64_t null_count = 0;
};

struct DeltaAddFile {
  // Relative to the table folder, e.g. "event_date=2026-01-01/part-00000-....parquet";
  // percent-encoded where the protocol requires (see DeltaPathEscape).
  std::string path;
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

// Writes <table>/_delta_log/00000000000000000000.json. AlreadyExists if the table has a log
// already. `engine` names the writer in commitInfo ("granary-datagen/0.1.0").
Status WriteDeltaLog(const std::filesystem::path& table, const DeltaTableSpec& spec,
                     const std::vector<DeltaAddFile>& files,
                     const std::string& engine = "granary-datagen/0.1.0");

// Appends the files (already written under `table`) to the table in one new commit, the version
// after the newest commit, and returns that version. When another writer takes that version
// first, retries with the next one (a blind append conflicts with nothing). NotFound when the
// table has no log; IOError when the commit cannot be written.
Result<int64_t> AppendDeltaFiles(const std::filesystem::path& table,
                                 const std::vector<DeltaAddFile>& files, int64_t timestamp_ms,
                                 const std::string& engine);

// The newest commit version in <table>/_delta_log (from the names of the JSON commits and
// _last_checkpoint), or -1 when there is none.
Result<int64_t> LatestDeltaVersion(const std::filesystem::path& table);

// "2026-01-01T00:15:00.000Z": the form Delta writers use for timestamp statistics
// (milliseconds; callers pass whole milliseconds).
std::string DeltaTimestampJson(int64_t micros);

// A version-4-shaped UUID made from two 64-bit numbers (deterministic file and table ids).
std::string UuidFromBits(uint64_t hi, uint64_t lo);

// Percent-encodes the characters of a path (segment) that are not safe in a Delta add path:
// anything but letters, digits, '-', '_', '.', '~', '/' and '='.
std::string DeltaPathEscape(std::string_view text);

}  // namespace granary
