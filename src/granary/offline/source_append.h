// Appending rows to a data source: the offline half of a push (the feature server's POST /push
// with "to": "offline" or "online_and_offline"; docs/SERVING.md).
//
// Where the rows go, by the source's path:
//   - a Delta table: new Parquet data files under the table folder, then one new commit adding
//     them (AppendDeltaFiles: put-if-absent, so concurrent appends never lose a commit). Readers
//     see all the rows or none. Columns are cast to the table's schema; partitioned tables get
//     one file per partition.
//   - a folder of Parquet or CSV files: a new file, written under a hidden name and renamed, so
//     a reader sees it whole or not at all. Columns are cast to the types of the folder's
//     existing files; a folder partitioned hive-style (key=value subfolders) gets one file per
//     partition, in its folder (each file is atomic; several partitions are not one transaction).
//   - a single file or a glob: InvalidArgument saying how to make the source appendable (rows
//     cannot be added to an existing Parquet file in place).
//
// A partition column missing from the rows is derived when it is the source's
// date_partition_column: the UTC date of the event timestamp. Columns the existing data does not
// have are errors; columns the rows lack are written as nulls. Thread-safe (no shared state);
// concurrent appends to one source are safe.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "granary/common/clock.h"
#include "granary/common/result.h"
#include "granary/registry/definitions.h"

namespace arrow {
class Table;
}

namespace granary {

struct SourceAppendResult {
  std::vector<std::filesystem::path> files;  // data files written, absolute paths
  int64_t delta_version = -1;                // the new Delta commit; -1 for a folder
  int64_t rows = 0;
};

// Appends `rows` to `source` (a file or Delta source; relative paths are under `repo_root`).
// Columns are named as the source's columns (before field_mapping); the timestamp column may be
// any timestamp type or RFC 3339 text. `clock` stamps a Delta commit and its files.
Result<SourceAppendResult> AppendToSource(const std::filesystem::path& repo_root,
                                          const DataSource& source, const arrow::Table& rows,
                                          const Clock& clock = SystemClock::Default());

}  // namespace granary
