// Delta Lake transaction log: a table's schema (for validation) and its full log replay (the
// snapshot of live data files that the offline store reads).
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "granary/common/result.h"
#include "granary/offline/deletion_vector.h"

namespace arrow {
class Schema;
class Table;
}  // namespace arrow

namespace granary {

// Converts a Delta schemaString (JSON, as in a metaData action) to an Arrow schema: long, integer,
// short, byte, float, double, boolean, string, binary, date, timestamp (UTC), timestamp_ntz,
// decimal(p,s), array, struct and map.
Result<std::shared_ptr<arrow::Schema>> DeltaSchemaToArrow(std::string_view schema_json);

// The logical schema of the table at `table` (its folder) at its newest version: the schema of
// ReadDeltaSnapshot(table), with its errors (the same replay and protocol checks as a scan).
Result<std::shared_ptr<arrow::Schema>> ReadDeltaSchema(const std::filesystem::path& table);

// One live data file of a Delta snapshot.
struct DeltaDataFile {
  std::filesystem::path path;  // absolute, percent-decoded
  // Partition column (logical name) -> its value as written in the log; nullopt for null.
  std::map<std::string, std::optional<std::string>> partition_values;
  int64_t size = 0;        // bytes, as the log says
  std::string stats_json;  // the add action's "stats" (numRecords, minValues, maxValues), or ""
  // The rows of the file that DELETE, UPDATE or MERGE removed (reader feature deletionVectors);
  // readers skip them (DeletionVector::Load). Row statistics in stats_json still count them.
  std::optional<DeletionVectorDescriptor> deletion_vector;
};

// The state of a Delta table at its newest version, after replaying the log.
//
// Replay: the newest complete checkpoint (named by _last_checkpoint, else found by listing; a
// corrupt _last_checkpoint is ignored), single- or multi-part, then every JSON commit after it in
// order (versions must be contiguous). Files are keyed by (path, deletion vector id) as the
// protocol says: add puts a file in, remove takes it out, and of two live entries for one path
// (a DV replaced without a remove) the newer wins; the newest metaData and protocol win.
// Readable: reader versions 1 to 3 with the reader features columnMapping, timestampNtz,
// typeWidening(-preview), vacuumProtocolCheck and deletionVectors (applied: the rows a file's
// deletion vector names are skipped by every read); anything else is an error naming it.
struct DeltaSnapshot {
  std::filesystem::path table;
  int64_t version = -1;
  // Logical schema (column mapping undone), as in the newest metaData.
  std::shared_ptr<arrow::Schema> schema;
  std::vector<std::string> partition_columns;  // logical names
  // "none", "name" or "id"; with "name" and "id", files hold columns under physical names.
  std::string column_mapping_mode = "none";
  // Logical column name -> physical column name in the data files (identity without mapping).
  std::map<std::string, std::string> physical_names;
  // Live files, sorted byte-wise by path (the documented file order of the offline store).
  std::vector<DeltaDataFile> files;
  // The writer side of the protocol, for appends: minWriterVersion and writerFeatures (version
  // 7), and the metaData configuration (table properties such as delta.appendOnly).
  int min_writer_version = 0;
  std::vector<std::string> writer_features;
  std::map<std::string, std::string> configuration;
  std::string schema_string;  // the metaData schemaString (field metadata: invariants, ...)

  const std::string& PhysicalName(const std::string& logical) const;
};

// Replays the log of the table at `table`. NotFound when `table` does not exist; InvalidArgument
// when it has no _delta_log or needs an unsupported reader feature; Corruption when the log is
// inconsistent (missing versions, no metaData or protocol, unreadable JSON or checkpoint), with
// the file (and line) at fault.
Result<DeltaSnapshot> ReadDeltaSnapshot(const std::filesystem::path& table);

// Reads every live row of a snapshot as one table: columns by logical name in schema order, typed
// as the schema says (partition values parsed; columns missing from older files are null; column
// mapping undone; rows deleted by deletion vectors skipped), files in path order. For tests and
// small tables: it holds everything in memory.
Result<std::shared_ptr<arrow::Table>> ReadDeltaTable(const DeltaSnapshot& snapshot);

// Decodes %XX escapes (paths in Delta add/remove actions are URIs).
std::string PercentDecode(std::string_view text);

}  // namespace granary
