#include "granary/offline/source_append.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "granary/common/strings.h"
#include "granary/common/time.h"
#include "granary/offline/delta_log.h"
#include "granary/offline/delta_writer.h"
#include "granary/offline/file_listing.h"
#include "granary/offline/source_inspector.h"
#include "granary/offline/table_io.h"
#include "granary/types/arrow_convert.h"

namespace granary {
namespace {

namespace fs = std::filesystem;
constexpr const char* kEngine = "granary-push/0.1.0";

std::string NewFileId() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return UuidFromBits(rng(), rng());
}

bool IsGlob(std::string_view path) { return path.find_first_of("*?[") != std::string_view::npos; }

// The source column holding a definition name (timestamp_field, date_partition_column).
std::string ColumnOf(const DataSource& source, const std::string& name) {
  return name.empty() ? name : source.SourceColumnFor(name);
}

// What the rows are written as: the existing data's columns (in order) with their types, and the
// partition columns (their values go into folder names, not into the files).
struct Target {
  std::shared_ptr<arrow::Schema> schema;  // null: no data yet, the rows' own columns and types
  bool cast = true;                       // false for CSV (its files store no types)
  std::vector<std::string> partition_columns;
};

// The UTC dates of a timestamp column, as date32 (days since the epoch).
Result<std::shared_ptr<arrow::Array>> DatesOf(const std::shared_ptr<arrow::Array>& times,
                                              const std::string& column) {
  GRANARY_ASSIGN_OR_RAISE(auto micros, ToUtcMicros(times, column));
  const auto& ts = static_cast<const arrow::TimestampArray&>(*micros);
  arrow::Date32Builder builder;
  if (!builder.Reserve(ts.length()).ok()) return Status::Internal("out of memory");
  constexpr int64_t kMicrosPerDay = 86'400'000'000;
  for (int64_t i = 0; i < ts.length(); ++i) {
    if (ts.IsNull(i)) {
      builder.UnsafeAppendNull();
      continue;
    }
    int64_t v = ts.Value(i);
    int64_t day = v / kMicrosPerDay - (v % kMicrosPerDay < 0 ? 1 : 0);
    builder.UnsafeAppend(static_cast<int32_t>(day));
  }
  std::shared_ptr<arrow::Array> out;
  if (!builder.Finish(&out).ok()) return Status::Internal("cannot build a date column");
  return out;
}

// A partition value as Hive and Delta write it.
Result<std::string> PartitionText(const arrow::Array& array, int64_t row,
                                  const std::string& column) {
  if (array.IsNull(row)) {
    return Status::InvalidArgument(fmt::format(
        "partition column '{}' is null in row {}; give every row a value", column, row));
  }
  switch (array.type_id()) {
    case arrow::Type::DATE32: {
      const int32_t day = static_cast<const arrow::Date32Array&>(array).Value(row);
      const std::optional<int64_t> micros = DaysToMicros(day);
      if (!micros) {
        return Status::InvalidArgument(fmt::format("partition column '{}', row {}: {}", column, row,
                                                   TimeBeyondRange(array, row)));
      }
      return FormatTimestamp(Timestamp::FromMicros(*micros)).substr(0, 10);
    }
    case arrow::Type::STRING:
      return std::string(static_cast<const arrow::StringArray&>(array).GetView(row));
    case arrow::Type::LARGE_STRING:
      return std::string(static_cast<const arrow::LargeStringArray&>(array).GetView(row));
    default:
      break;
  }
  auto scalar = array.GetScalar(row);
  if (!scalar.ok()) return Status::Internal(scalar.status().ToString());
  return (*scalar)->ToString();
}

// Hive-style folder segment: the value with '/', '=', '%' and control characters escaped.
std::string HiveEscape(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (c < 0x20 || c == '/' || c == '=' || c == '%' || c == '\\' || c == ':' || c == '"') {
      out += fmt::format("%{:02X}", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

// The rows' columns made to fit `target`, plus the partition value columns. InvalidArgument for a
// column the data does not have, a missing partition column, or a value that does not convert.
struct Conformed {
  std::shared_ptr<arrow::Table> data;                     // without partition columns
  std::vector<std::shared_ptr<arrow::Array>> partitions;  // one per partition column
};

Result<Conformed> Conform(const DataSource& source, const std::string& where,
                          const arrow::Table& input, const Target& target) {
  auto combined = input.CombineChunks();
  if (!combined.ok()) return Status::Internal(combined.status().ToString());
  const arrow::Table& rows = **combined;
  auto column = [&](const std::string& name) -> std::shared_ptr<arrow::Array> {
    auto c = rows.GetColumnByName(name);
    return c == nullptr ? nullptr : c->chunk(0);
  };
  auto is_partition = [&](const std::string& name) {
    return std::find(target.partition_columns.begin(), target.partition_columns.end(), name) !=
           target.partition_columns.end();
  };
  Conformed out;
  std::vector<std::shared_ptr<arrow::Field>> fields;
  std::vector<std::shared_ptr<arrow::Array>> arrays;
  if (target.schema == nullptr) {
    for (int i = 0; i < rows.num_columns(); ++i) {
      if (is_partition(rows.field(i)->name())) continue;
      fields.push_back(rows.field(i));
      arrays.push_back(rows.column(i)->chunk(0));
    }
  } else {
    const std::vector<std::string> names = target.schema->field_names();
    for (const auto& field : rows.schema()->fields()) {
      if (target.schema->GetFieldByName(field->name()) == nullptr && !is_partition(field->name())) {
        return Status::InvalidArgument(fmt::format(
            "column '{}' is not a column of {}{}; its columns are: {}. Remove it from the pushed "
            "rows, or add it to the data first",
            field->name(), where, DidYouMean(field->name(), names), Join(names, ", ")));
      }
    }
    for (const auto& field : target.schema->fields()) {
      if (is_partition(field->name())) continue;
      std::shared_ptr<arrow::Array> array = column(field->name());
      if (array == nullptr) {
        if (!field->nullable()) {
          return Status::InvalidArgument(
              fmt::format("column '{}' of {} may not be null, and the pushed rows lack it; add "
                          "it",
                          field->name(), where));
        }
        auto nulls = arrow::MakeArrayOfNull(field->type(), rows.num_rows());
        if (!nulls.ok()) return Status::Internal(nulls.status().ToString());
        array = *nulls;
      } else if (target.cast && !array->type()->Equals(*field->type())) {
        auto cast = arrow::compute::Cast(*array, field->type());
        if (!cast.ok()) {
          return Status::InvalidArgument(
              fmt::format("column '{}': cannot store {} values in {}, where the column is {}: {}",
                          field->name(), array->type()->ToString(), where,
                          field->type()->ToString(), cast.status().message()));
        }
        array = *cast;
      }
      fields.push_back(target.cast ? field : arrow::field(field->name(), array->type()));
      arrays.push_back(std::move(array));
    }
  }
  for (const std::string& p : target.partition_columns) {
    std::shared_ptr<arrow::Array> values = column(p);
    if (values == nullptr && p == ColumnOf(source, source.date_partition_column)) {
      auto times = column(ColumnOf(source, source.timestamp_field));
      if (times != nullptr) {
        GRANARY_ASSIGN_OR_RAISE(values, DatesOf(times, source.timestamp_field));
      }
    }
    if (values == nullptr) {
      return Status::InvalidArgument(fmt::format(
          "{} is partitioned by '{}', which the pushed rows lack; add a '{}' column", where, p, p));
    }
    out.partitions.push_back(std::move(values));
  }
  out.data = arrow::Table::Make(arrow::schema(fields), arrays, rows.num_rows());
  return out;
}

// The rows of each partition: partition values (folder segments) -> row indices.
Result<std::map<std::vector<std::string>, std::vector<int64_t>>> GroupByPartition(
    const Conformed& rows, const Target& target) {
  std::map<std::vector<std::string>, std::vector<int64_t>> groups;
  const int64_t n = rows.data->num_rows();
  if (target.partition_columns.empty()) {
    auto& all = groups[{}];
    all.resize(n);
    for (int64_t i = 0; i < n; ++i) all[i] = i;
    return groups;
  }
  std::vector<std::string> key(target.partition_columns.size());
  for (int64_t i = 0; i < n; ++i) {
    for (size_t p = 0; p < key.size(); ++p) {
      GRANARY_ASSIGN_OR_RAISE(key[p],
                              PartitionText(*rows.partitions[p], i, target.partition_columns[p]));
    }
    groups[key].push_back(i);
  }
  return groups;
}

Result<std::shared_ptr<arrow::Table>> TakeRows(const std::shared_ptr<arrow::Table>& table,
                                               const std::vector<int64_t>& rows) {
  if (static_cast<int64_t>(rows.size()) == table->num_rows()) return table;
  arrow::Int64Builder indices;
  if (!indices.AppendValues(rows).ok()) return Status::Internal("out of memory");
  std::shared_ptr<arrow::Array> index_array;
  if (!indices.Finish(&index_array).ok()) return Status::Internal("out of memory");
  auto taken = arrow::compute::Take(table, index_array);
  if (!taken.ok()) return Status::Internal(taken.status().ToString());
  return taken->table();
}

std::string PartitionFolder(const Target& target, const std::vector<std::string>& values) {
  std::string folder;
  for (size_t p = 0; p < values.size(); ++p) {
    folder += target.partition_columns[p] + "=" + HiveEscape(values[p]) + "/";
  }
  return folder;
}

// Delta statistics: the row count, every column's nulls, and min/max of integer and timestamp
// columns (timestamps in milliseconds, the minimum rounded down and the maximum up, so pruning on
// them never skips a row).
std::vector<DeltaColumnStats> StatsOf(const arrow::Table& table) {
  std::vector<DeltaColumnStats> stats;
  for (int c = 0; c < table.num_columns(); ++c) {
    const auto array = table.column(c)->chunk(0);
    DeltaColumnStats s;
    s.column = table.field(c)->name();
    s.null_count = array->null_count();
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    auto scan = [&](const auto& typed) {
      for (int64_t i = 0; i < typed.length(); ++i) {
        if (typed.IsNull(i)) continue;
        lo = std::min<int64_t>(lo, typed.Value(i));
        hi = std::max<int64_t>(hi, typed.Value(i));
      }
    };
    switch (array->type_id()) {
      case arrow::Type::INT64:
        scan(static_cast<const arrow::Int64Array&>(*array));
        break;
      case arrow::Type::INT32:
        scan(static_cast<const arrow::Int32Array&>(*array));
        break;
      case arrow::Type::TIMESTAMP: {
        const auto& type = static_cast<const arrow::TimestampType&>(*array->type());
        if (type.unit() == arrow::TimeUnit::MICRO) {
          scan(static_cast<const arrow::TimestampArray&>(*array));
        }
        break;
      }
      default:
        break;
    }
    if (lo <= hi) {
      if (array->type_id() == arrow::Type::TIMESTAMP) {
        auto floor_ms = [](int64_t us) { return us / 1000 - (us % 1000 < 0 ? 1 : 0); };
        const int64_t lo_ms = floor_ms(lo);
        const int64_t hi_ms = floor_ms(hi) + (hi % 1000 != 0 ? 1 : 0);
        s.min_json = "\"" + DeltaTimestampJson(lo_ms * 1000) + "\"";
        s.max_json = "\"" + DeltaTimestampJson(hi_ms * 1000) + "\"";
      } else {
        s.min_json = std::to_string(lo);
        s.max_json = std::to_string(hi);
      }
    }
    stats.push_back(std::move(s));
  }
  return stats;
}

// Why a blind append of new files (no deletion vectors, no row IDs, commitInfo without an
// in-commit timestamp, no constraint checks) would break the table's writer protocol, or "" when
// it would not. Writer versions 2 to 6 imply their features; version 7 lists them. A feature
// that constrains appends only when active (a table property or a column's metadata turns it
// on) is refused only then. deletionVectors allows appends of files without vectors.
std::string BlindAppendRefusal(const DeltaSnapshot& table) {
  const int version = table.min_writer_version;
  if (version > 7) {
    return fmt::format("needs writer version {}; Granary writes versions up to 7", version);
  }
  auto config_true = [&](const char* key) {
    auto it = table.configuration.find(key);
    return it != table.configuration.end() &&
           (it->second == "true" || it->second == "TRUE" || it->second == "True");
  };
  auto schema_has = [&](const char* metadata_key) {
    return table.schema_string.find(metadata_key) != std::string::npos;
  };
  auto has_constraints = [&] {
    return std::any_of(table.configuration.begin(), table.configuration.end(),
                       [](const auto& kv) { return kv.first.starts_with("delta.constraints."); });
  };
  // Features whose rules an append of plain new files meets (or that only reads must honour).
  static const std::set<std::string> kHarmless = {
      "appendOnly",    "deletionVectors",    "domainMetadata", "changeDataFeed",
      "columnMapping", "timestampNtz",       "typeWidening",   "typeWidening-preview",
      "v2Checkpoint",  "vacuumProtocolCheck"};
  std::vector<std::string> features = table.writer_features;
  if (version < 7) {
    // The features a legacy writer version implies.
    if (version >= 2) features.insert(features.end(), {"appendOnly", "invariants"});
    if (version >= 3) features.push_back("checkConstraints");
    if (version >= 4) features.insert(features.end(), {"changeDataFeed", "generatedColumns"});
    if (version >= 5) features.push_back("columnMapping");
    if (version >= 6) features.push_back("identityColumns");
  }
  for (const std::string& f : features) {
    if (kHarmless.contains(f)) continue;
    bool active = true;  // unknown features and those that bind every writer
    if (f == "invariants") active = schema_has("delta.invariants");
    if (f == "checkConstraints") active = has_constraints();
    if (f == "generatedColumns") active = schema_has("delta.generationExpression");
    if (f == "identityColumns") active = schema_has("delta.identity.");
    if (f == "allowColumnDefaults") active = schema_has("CURRENT_DEFAULT");
    if (f == "inCommitTimestamp") active = config_true("delta.enableInCommitTimestamps");
    if (f == "icebergCompatV1") active = config_true("delta.enableIcebergCompatV1");
    if (f == "icebergCompatV2") active = config_true("delta.enableIcebergCompatV2");
    if (active) {
      return fmt::format(
          "uses the writer feature '{}', whose rules Granary's appends do not "
          "follow",
          f);
    }
  }
  return "";
}

void RemoveAll(const std::vector<fs::path>& files) {
  for (const fs::path& f : files) {
    std::error_code ec;
    fs::remove(f, ec);
  }
}

Result<SourceAppendResult> AppendToDelta(const DataSource& source, const fs::path& table,
                                         const arrow::Table& rows, const Clock& clock) {
  auto snapshot = ReadDeltaSnapshot(table);
  if (snapshot.status().code() == StatusCode::kNotFound) {
    return Status::InvalidArgument(fmt::format(
        "data source '{}': the Delta table {} does not exist; create it (with its first commit) "
        "before pushing to it",
        source.name, table.string()));
  }
  GRANARY_RETURN_NOT_OK(snapshot.status());
  if (snapshot->column_mapping_mode != "none") {
    return Status::InvalidArgument(fmt::format(
        "data source '{}': the Delta table {} uses column mapping (mode {}), which Granary does "
        "not write; push to the online store only, or append with the table's own writer",
        source.name, table.string(), snapshot->column_mapping_mode));
  }
  if (std::string refusal = BlindAppendRefusal(*snapshot); !refusal.empty()) {
    return Status::InvalidArgument(fmt::format(
        "data source '{}': the Delta table {} {}; appending could corrupt it. Push to the online "
        "store only, or append with the table's own writer (Spark, Databricks)",
        source.name, table.string(), refusal));
  }
  Target target{snapshot->schema, true, snapshot->partition_columns};
  const std::string where = fmt::format("the Delta table of data source '{}'", source.name);
  GRANARY_ASSIGN_OR_RAISE(Conformed conformed, Conform(source, where, rows, target));
  GRANARY_ASSIGN_OR_RAISE(auto groups, GroupByPartition(conformed, target));

  const int64_t now_ms = clock.Now().micros / 1000;
  SourceAppendResult result;
  std::vector<DeltaAddFile> adds;
  for (const auto& [values, indices] : groups) {
    GRANARY_ASSIGN_OR_RAISE(auto part, TakeRows(conformed.data, indices));
    const std::string relative = PartitionFolder(target, values) +
                                 fmt::format("part-00000-{}.c000.snappy.parquet", NewFileId());
    const fs::path file = table / relative;
    std::error_code ec;
    fs::create_directories(file.parent_path(), ec);
    Status st = ec ? Status::IOError(fmt::format("cannot create {}: {}",
                                                 file.parent_path().string(), ec.message()))
                   : WriteTableFile(*part, file);
    if (!st.ok()) {
      RemoveAll(result.files);
      return st;
    }
    result.files.push_back(file);
    DeltaAddFile add;
    add.path = DeltaPathEscape(relative);
    for (size_t p = 0; p < values.size(); ++p) {
      add.partition_values[target.partition_columns[p]] = values[p];
    }
    add.size = static_cast<int64_t>(fs::file_size(file, ec));
    add.modification_time_ms = now_ms;
    add.num_records = part->num_rows();
    auto combined = part->CombineChunks();
    if (combined.ok()) add.stats = StatsOf(**combined);
    adds.push_back(std::move(add));
  }
  auto version = AppendDeltaFiles(table, adds, now_ms, kEngine);
  if (!version.ok()) {
    RemoveAll(result.files);  // never committed: invisible to readers, but do not leave them
    return version.status();
  }
  result.delta_version = *version;
  result.rows = rows.num_rows();
  return result;
}

Result<SourceAppendResult> AppendToFolder(const DataSource& source, const fs::path& folder,
                                          const arrow::Table& rows) {
  const bool csv = source.format == SourceFormat::kCsv;
  const std::string ext = csv ? ".csv" : ".parquet";
  auto how_to_fix = [&] {
    return fmt::format(
        "make the source a folder: move the data into a folder (e.g. {}/part-0{}) and set "
        "path: {} (every file below it is read), or make it a Delta table",
        fs::path(source.path).replace_extension().string(), ext,
        fs::path(source.path).replace_extension().string());
  };
  if (IsGlob(source.path)) {
    return Status::InvalidArgument(fmt::format(
        "data source '{}': path '{}' is a glob, so a new file has no single place to go; {}",
        source.name, source.path, how_to_fix()));
  }
  std::error_code ec;
  const bool exists = fs::exists(folder, ec);
  std::string lower = folder.filename().string();
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  if ((exists && !fs::is_directory(folder, ec)) ||
      (!exists && (lower.ends_with(".parquet") || lower.ends_with(".csv")))) {
    return Status::InvalidArgument(fmt::format(
        "data source '{}' is the single file {}: rows cannot be appended to a {} file in "
        "place; {}",
        source.name, source.path, csv ? "CSV" : "Parquet", how_to_fix()));
  }
  Target target;
  target.cast = !csv;
  GRANARY_ASSIGN_OR_RAISE(auto existing, ListDataFiles(folder, ext));
  if (!existing.empty()) {
    if (csv) {
      GRANARY_ASSIGN_OR_RAISE(target.schema, ReadCsvHeader(existing.front()));
    } else {
      GRANARY_ASSIGN_OR_RAISE(target.schema, ReadParquetSchema(existing.front()));
    }
    for (const auto& segment : existing.front().lexically_relative(folder).parent_path()) {
      const std::string text = segment.string();
      const size_t eq = text.find('=');
      if (eq != std::string::npos && eq > 0) target.partition_columns.push_back(text.substr(0, eq));
    }
  }
  const std::string where =
      fmt::format("data source '{}' (the files under {})", source.name, source.path);
  GRANARY_ASSIGN_OR_RAISE(Conformed conformed, Conform(source, where, rows, target));
  GRANARY_ASSIGN_OR_RAISE(auto groups, GroupByPartition(conformed, target));
  SourceAppendResult result;
  for (const auto& [values, indices] : groups) {
    GRANARY_ASSIGN_OR_RAISE(auto part, TakeRows(conformed.data, indices));
    const fs::path file =
        folder / (PartitionFolder(target, values) + fmt::format("part-{}{}", NewFileId(), ext));
    fs::create_directories(file.parent_path(), ec);
    if (ec) {
      return Status::IOError(
          fmt::format("cannot create {}: {}", file.parent_path().string(), ec.message()));
    }
    GRANARY_RETURN_NOT_OK(WriteTableFile(*part, file));
    result.files.push_back(file);
  }
  result.rows = rows.num_rows();
  return result;
}

}  // namespace

Result<SourceAppendResult> AppendToSource(const fs::path& repo_root, const DataSource& source,
                                          const arrow::Table& rows, const Clock& clock) {
  if (source.is_push()) {
    return Status::InvalidArgument(
        fmt::format("data source '{}' is a push source; append to its batch source '{}'",
                    source.name, source.batch_source));
  }
  if (rows.num_rows() == 0) return SourceAppendResult{};
  fs::path path(source.path);
  if (path.is_relative()) path = repo_root / path;
  if (source.format == SourceFormat::kDelta) return AppendToDelta(source, path, rows, clock);
  return AppendToFolder(source, path, rows);
}

}  // namespace granary
