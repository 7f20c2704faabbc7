#include "granary/offline/source_scan.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>
#include <parquet/metadata.h>

#include <algorithm>
#include <cstdint>

#include "granary/common/fork_join.h"
#include "granary/common/json.h"
#include "granary/common/threads.h"
#include "granary/offline/delta_log.h"
#include "granary/offline/file_listing.h"
#include "granary/offline/parquet_footers.h"
#include "granary/offline/source_fragment.h"
#include "granary/types/arrow_convert.h"

namespace granary {

namespace {

// One column of the scan's output and where it comes from.
struct OutputColumn {
  std::string name;       // as in the definitions (and the output)
  std::string file_name;  // as in the data files (field_mapping and Delta column mapping undone)
  ValueType type;
};

std::optional<int64_t> JsonTimestamp(const boost::json::value* v) {
  if (v == nullptr) return std::nullopt;
  if (v->is_string()) {
    auto ts = ParseTimestamp(JsonStringView(v->get_string()));
    if (ts.ok()) return ts->micros;
  }
  return std::nullopt;
}

// Whether a Delta file's statistics show no row of its timestamp column in [start, end].
bool DeltaStatsExclude(const std::string& stats_json, const std::string& column,
                       const std::optional<Timestamp>& start, const std::optional<Timestamp>& end) {
  if (stats_json.empty()) return false;
  auto doc = ParseJson(stats_json);
  if (!doc.ok() || !doc->is_object()) return false;
  auto value_of = [&](const char* kind) -> const boost::json::value* {
    const boost::json::value* values = JsonMember(*doc, kind);
    return values == nullptr ? nullptr : JsonMember(*values, column);
  };
  auto min = JsonTimestamp(value_of("minValues"));
  auto max = JsonTimestamp(value_of("maxValues"));
  // Delta writes timestamp statistics truncated to milliseconds: widen the max by 1 ms.
  if (max) *max += 999;
  if (start && max && *max < start->micros) return true;
  if (end && min && *min > end->micros) return true;
  return false;
}

// Whether a date partition value (a day) lies wholly outside [start, end].
bool DatePartitionExcludes(const std::optional<std::string>& value,
                           const std::optional<Timestamp>& start,
                           const std::optional<Timestamp>& end) {
  if (!value) return false;
  auto day = ParseTimestamp(*value);
  if (!day.ok()) return false;
  const int64_t first = day->micros;
  const int64_t last = first + Duration::Days(1).micros - 1;
  return (start && last < start->micros) || (end && first > end->micros);
}

}  // namespace

struct FeatureSourceScan::Impl {
  std::string what;  // "feature view 'v' (data source 's')" for messages
  std::vector<OutputColumn> columns;
  std::shared_ptr<arrow::Schema> schema;
  std::vector<std::string> join_keys;
  std::vector<std::string> features;
  bool has_created = false;
  int ts_index = 0;
  SourceScanOptions options;
  FragmentRequest request;
  std::vector<Fragment> fragments;
  std::unique_ptr<FragmentPrefetcher> prefetcher;  // started by the first Next()
  // The read position of the first row of each unit the prefetcher reads; -1 when not known
  // before reading (after a unit of unknown row count).
  std::vector<int64_t> unit_first;
  std::vector<int64_t> unit_rows;  // each unit's rows (UnitRows), -1 when not known
  size_t unit = SIZE_MAX;          // the unit of the last batch
  int64_t position = 0;            // the read position of the next raw row
  ReadPositions positions;
  SourceScanStats stats;

  Result<std::shared_ptr<arrow::RecordBatch>> Convert(const arrow::RecordBatch& raw,
                                                      const Fragment& fragment);
};

Result<std::shared_ptr<arrow::RecordBatch>> FeatureSourceScan::Impl::Convert(
    const arrow::RecordBatch& raw, const Fragment& fragment) {
  const int64_t n = raw.num_rows();
  positions.first = position;
  positions.rows = nullptr;
  position += n;
  std::vector<std::shared_ptr<arrow::Array>> arrays;
  arrays.reserve(columns.size());
  for (const OutputColumn& c : columns) {
    std::shared_ptr<arrow::Array> source = raw.GetColumnByName(c.file_name);
    if (source == nullptr) {
      auto part = fragment.partition_values.find(c.file_name);
      if (part != fragment.partition_values.end()) {
        std::shared_ptr<arrow::Scalar> scalar =
            part->second ? std::make_shared<arrow::StringScalar>(*part->second)
                         : arrow::MakeNullScalar(arrow::utf8());
        auto repeated = arrow::MakeArrayFromScalar(*scalar, n);
        if (!repeated.ok()) return Status::Internal(repeated.status().ToString());
        source = *repeated;
      }
    }
    if (source == nullptr) {
      auto nulls = arrow::MakeArrayOfNull(ToArrowType(c.type), n);
      if (!nulls.ok()) return Status::Internal(nulls.status().ToString());
      arrays.push_back(*nulls);
      continue;
    }
    auto cast = CastToValueType(source, c.type, c.file_name);
    if (!cast.ok()) {
      return cast.status().WithContext(fmt::format("{}: {}", what, fragment.path.string()));
    }
    arrays.push_back(*cast);
  }
  if (ts_index < 0) return arrow::RecordBatch::Make(schema, n, std::move(arrays));
  // The event-time filter: start <= ts <= end and not null.
  const auto& ts = *arrays[ts_index]->data();
  const int64_t* ts_values = ts.GetValues<int64_t>(1);
  const int64_t lo = options.start ? options.start->micros : INT64_MIN;
  const int64_t hi = options.end ? options.end->micros : INT64_MAX;
  // Usually every row is kept: one branch-free pass over the times says so before any mask.
  if (arrays[ts_index]->null_count() == 0) {
    int64_t min = INT64_MAX, max = INT64_MIN;
    for (int64_t i = 0; i < n; ++i) {
      min = std::min(min, ts_values[i]);
      max = std::max(max, ts_values[i]);
    }
    if (min >= lo && max <= hi) return arrow::RecordBatch::Make(schema, n, std::move(arrays));
  }
  arrow::BooleanBuilder keep;
  if (!keep.Resize(n).ok()) return Status::Internal("out of memory");
  int64_t kept = 0;
  const arrow::Array& ts_array = *arrays[ts_index];
  for (int64_t i = 0; i < n; ++i) {
    bool in = ts_array.IsValid(i) && ts_values[i] >= lo && ts_values[i] <= hi;
    keep.UnsafeAppend(in);
    kept += in;
  }
  if (kept == 0) {
    // Every row out of range (a row group the statistics could not prune): no Filter of every
    // column for nothing.
    arrays.clear();
    auto empty = arrow::RecordBatch::MakeEmpty(schema);
    if (!empty.ok()) return Status::Internal(empty.status().ToString());
    auto no_rows = arrow::MakeEmptyArray(arrow::int64());
    if (!no_rows.ok()) return Status::Internal(no_rows.status().ToString());
    positions.rows = *no_rows;
    return *empty;
  }
  auto batch = arrow::RecordBatch::Make(schema, n, std::move(arrays));
  if (kept == n) return batch;
  std::shared_ptr<arrow::Array> mask;
  if (!keep.Finish(&mask).ok()) return Status::Internal("out of memory");
  auto filtered = arrow::compute::Filter(batch, mask);
  if (!filtered.ok()) return Status::Internal(filtered.status().ToString());
  arrow::Int64Builder kept_positions;
  if (!kept_positions.Resize(kept).ok()) return Status::Internal("out of memory");
  const auto& kept_mask = static_cast<const arrow::BooleanArray&>(*mask);
  for (int64_t i = 0; i < n; ++i) {
    if (kept_mask.Value(i)) kept_positions.UnsafeAppend(positions.first + i);
  }
  if (!kept_positions.Finish(&positions.rows).ok()) return Status::Internal("out of memory");
  return filtered->record_batch();
}

FeatureSourceScan::FeatureSourceScan(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FeatureSourceScan::~FeatureSourceScan() = default;

const std::shared_ptr<arrow::Schema>& FeatureSourceScan::schema() const { return impl_->schema; }
const std::vector<std::string>& FeatureSourceScan::join_keys() const { return impl_->join_keys; }
const std::vector<std::string>& FeatureSourceScan::features() const { return impl_->features; }
bool FeatureSourceScan::has_created_timestamp() const { return impl_->has_created; }
int FeatureSourceScan::event_timestamp_index() const { return impl_->ts_index; }
const SourceScanStats& FeatureSourceScan::stats() const { return impl_->stats; }
const ReadPositions& FeatureSourceScan::positions() const { return impl_->positions; }

uint64_t FeatureSourceScan::FilesFingerprint() const {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a over the bytes below
  auto mix = [&h](std::string_view bytes) {
    for (unsigned char c : bytes) h = (h ^ c) * 0x100000001b3ULL;
    h = (h ^ 0xff) * 0x100000001b3ULL;  // a separator, so "ab"+"c" differs from "a"+"bc"
  };
  for (const Fragment& fragment : impl_->fragments) {
    mix(fragment.path.string());
    for (int rg : fragment.row_groups) mix(std::to_string(rg));
    if (fragment.footer_hash != 0) mix(std::to_string(fragment.footer_hash));
  }
  return h;
}

namespace {

// The data source `view` reads.
Result<const DataSource*> SourceOf(const Definitions& defs, const FeatureView& view) {
  const DataSource* source =
      defs.FindOfflineSource(view.source);  // a push source's rows live in its batch source
  if (source == nullptr) {
    return Status::InvalidArgument(
        fmt::format("feature view '{}': unknown data source '{}' (or its batch_source)", view.name,
                    view.source));
  }
  return source;
}

// "feature view 'v' (data source 's')", for messages.
std::string Describe(const FeatureView& view, const DataSource& source) {
  return fmt::format("feature view '{}' (data source '{}')", view.name, source.name);
}

}  // namespace

Result<SourceSnapshot> SourceSnapshot::Read(const std::filesystem::path& repo_root,
                                            const Definitions& defs, const FeatureView& view) {
  GRANARY_ASSIGN_OR_RAISE(const DataSource* source, SourceOf(defs, view));
  SourceSnapshot out;
  out.format = source->format;
  std::filesystem::path path(source->path);
  if (path.is_relative()) path = repo_root / path;
  if (source->format == SourceFormat::kDelta) {
    auto delta = ReadDeltaSnapshot(path);
    if (!delta.ok()) return delta.status().WithContext(Describe(view, *source));
    out.delta_version = delta->version;
    out.delta_table = path;
    out.physical_names = delta->physical_names;
    for (DeltaDataFile& file : delta->files) {
      File f;
      f.path = std::move(file.path);
      for (auto& [logical, value] : file.partition_values) {
        f.partition_values[delta->PhysicalName(logical)] = std::move(value);
      }
      f.delta_stats_json = std::move(file.stats_json);
      f.deletion_vector = std::move(file.deletion_vector);
      out.files.push_back(std::move(f));
    }
    out.RecordVersions();
    return out;
  }
  const bool csv = source->format == SourceFormat::kCsv;
  GRANARY_ASSIGN_OR_RAISE(auto files, ListDataFiles(path, csv ? ".csv" : ".parquet"));
  if (files.empty()) {
    return Status::NotFound(fmt::format("{}: no {} files at {}", Describe(view, *source),
                                        SourceFormatName(source->format), path.string()));
  }
  for (auto& file : files) {
    File f;
    f.partition_values = HivePartitionValues(path, file);
    f.path = std::move(file);
    out.files.push_back(std::move(f));
  }
  out.RecordVersions();
  return out;
}

namespace {

// A file's size and modification time; -1 and the epoch when it cannot be read.
std::pair<int64_t, std::filesystem::file_time_type> FileVersion(const std::filesystem::path& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return {-1, {}};
  const auto modified = std::filesystem::last_write_time(path, ec);
  if (ec) return {-1, {}};
  return {static_cast<int64_t>(size), modified};
}

}  // namespace

void SourceSnapshot::RecordVersions() {
  sizes.clear();
  modified.clear();
  for (const File& file : files) {
    auto [size, time] = FileVersion(file.path);
    sizes.push_back(size);
    modified.push_back(time);
  }
}

Status SourceSnapshot::CheckUnchanged(const std::string& what) const {
  for (size_t i = 0; i < files.size() && i < sizes.size(); ++i) {
    auto [size, time] = FileVersion(files[i].path);
    if (size != sizes[i] || time != modified[i]) {
      return Status::FailedPrecondition(fmt::format(
          "{}: its source changed while it was being read ({} was {} after it was listed); run "
          "the retrieval again",
          what, files[i].path.string(), size < 0 ? "removed" : "rewritten"));
    }
  }
  return Status::OK();
}

Result<std::unique_ptr<FeatureSourceScan>> FeatureSourceScan::Open(
    const std::filesystem::path& repo_root, const Definitions& defs, const FeatureView& view,
    SourceScanOptions options) {
  GRANARY_ASSIGN_OR_RAISE(SourceSnapshot snapshot, SourceSnapshot::Read(repo_root, defs, view));
  return Open(snapshot, defs, view, std::move(options));
}

namespace {

// The threads that read footers while scans are planned, shared by every scan of the process
// (Run() takes jobs from several callers in turn): up to three beside the planning thread.
// Never destroyed: used until exit.
ForkJoinPool& FooterPool() {
  static auto* pool = new ForkJoinPool(std::min(ThreadCount(0), 4) - 1);
  return *pool;
}

}  // namespace

Result<std::unique_ptr<FeatureSourceScan>> FeatureSourceScan::Open(const SourceSnapshot& snapshot,
                                                                   const Definitions& defs,
                                                                   const FeatureView& view,
                                                                   SourceScanOptions options) {
  auto impl = std::make_unique<Impl>();
  GRANARY_ASSIGN_OR_RAISE(const DataSource* source, SourceOf(defs, view));
  impl->what = Describe(view, *source);
  impl->options = options;
  // Columns by definition name; file names are resolved below once the format is known.
  for (const std::string& entity_name : view.entities) {
    const Entity* entity = defs.FindEntity(entity_name);
    if (entity == nullptr) {
      return Status::InvalidArgument(
          fmt::format("feature view '{}': unknown entity '{}'", view.name, entity_name));
    }
    for (size_t k = 0; k < entity->join_keys.size(); ++k) {
      impl->join_keys.push_back(entity->join_keys[k]);
      if (!options.with_join_keys) continue;
      impl->columns.push_back({entity->join_keys[k], source->SourceColumnFor(entity->join_keys[k]),
                               entity->join_key_types[k]});
    }
  }
  const ValueType ts_type = ValueType::Scalar(ScalarType::kTimestamp);
  OutputColumn ts_column{kEventTimestampColumn, source->SourceColumnFor(source->timestamp_field),
                         ts_type};
  impl->ts_index = -1;
  if (options.with_event_timestamp) {
    impl->ts_index = static_cast<int>(impl->columns.size());
    impl->columns.push_back(ts_column);
  }
  if (!source->created_timestamp_column.empty() && options.with_created_timestamp) {
    impl->has_created = true;
    impl->columns.push_back({kCreatedTimestampColumn,
                             source->SourceColumnFor(source->created_timestamp_column), ts_type});
  }
  std::vector<std::string> wanted = options.features;
  if (wanted.empty()) {
    for (const Field& f : view.schema) wanted.push_back(f.name);
  }
  if (!options.with_features) wanted.clear();
  for (const std::string& name : wanted) {
    const Field* field = view.FindFeature(name);
    if (field == nullptr) {
      return Status::InvalidArgument(
          fmt::format("feature view '{}' has no feature '{}'", view.name, name));
    }
    impl->features.push_back(name);
    impl->columns.push_back({name, source->SourceColumnFor(name), field->type});
  }
  for (const Field& extra : options.extra_columns) {
    impl->columns.push_back({extra.name, source->SourceColumnFor(extra.name), extra.type});
  }
  arrow::FieldVector fields;
  for (const OutputColumn& c : impl->columns) {
    fields.push_back(arrow::field(c.name, ToArrowType(c.type)));
  }
  impl->schema = arrow::schema(fields);

  auto physical = [&](const std::string& logical) -> const std::string& {
    auto it = snapshot.physical_names.find(logical);
    return it == snapshot.physical_names.end() ? logical : it->second;
  };
  for (OutputColumn& c : impl->columns) c.file_name = physical(c.file_name);
  ts_column.file_name = physical(ts_column.file_name);
  std::string date_partition = source->date_partition_column;
  if (!date_partition.empty()) date_partition = physical(date_partition);
  const std::string ts_physical = ts_column.file_name;
  const bool delta = snapshot.delta_version >= 0;
  for (const SourceSnapshot::File& file : snapshot.files) {
    ++impl->stats.files_total;
    if (delta &&
        DeltaStatsExclude(file.delta_stats_json, ts_physical, options.start, options.end)) {
      ++impl->stats.files_pruned;
      continue;
    }
    Fragment fragment;
    fragment.path = file.path;
    fragment.format =
        snapshot.format == SourceFormat::kCsv ? FragmentFormat::kCsv : FragmentFormat::kParquet;
    fragment.partition_values = file.partition_values;
    fragment.deletion_vector = file.deletion_vector;
    fragment.delta_table = snapshot.delta_table;
    impl->fragments.push_back(std::move(fragment));
  }
  for (const OutputColumn& c : impl->columns) impl->request.columns.push_back(c.file_name);
  impl->request.timestamp_column = ts_physical;
  impl->request.start = options.start;
  impl->request.end = options.end;
  impl->request.batch_rows = options.batch_rows;
  impl->request.pool = options.pool;
  if (impl->ts_index < 0 && options.chosen_rows != nullptr) {
    impl->request.chosen_rows = options.chosen_rows;
    for (const OutputColumn& c : impl->columns) {
      if (c.type.is_list) continue;
      switch (c.type.scalar) {
        case ScalarType::kFloat64:
        case ScalarType::kFloat32:
        case ScalarType::kInt64:
        case ScalarType::kInt32:
          impl->request.pick_types[c.file_name] = ToArrowType(c.type);
          break;
        default:
          break;
      }
    }
  }
  for (const OutputColumn& c : impl->columns) {
    // Timestamps are parsed by Granary (every ISO 8601 form, offsets); other scalars by Arrow.
    const bool text = c.type.is_list || c.type.scalar == ScalarType::kTimestamp;
    impl->request.csv_types[c.file_name] = text ? arrow::utf8() : ToArrowType(c.type);
  }
  // Prune by date partition, then plan Parquet row groups.
  std::vector<Fragment> kept;
  std::vector<bool> excluded(impl->fragments.size(), false);
  if (!date_partition.empty()) {
    for (size_t i = 0; i < impl->fragments.size(); ++i) {
      const Fragment& fragment = impl->fragments[i];
      auto it = fragment.partition_values.find(date_partition);
      excluded[i] = it != fragment.partition_values.end() &&
                    DatePartitionExcludes(it->second, options.start, options.end);
    }
  }
  // The footers' digests of the Parquet files to plan, read a window at a time on the footer
  // pool's threads (one core took 0.17-0.23 s for 3,000 small files; a digest already read is
  // found in the process's cache instead, parquet_footers.h). Windows start at 16 files and grow
  // to 256 while their digests stay small: a wide file's digest takes megabytes.
  constexpr int64_t kDigestWindowBytes = int64_t{16} << 20;
  size_t window_files = 16;
  std::vector<std::shared_ptr<const ParquetFooterDigest>> digests;  // of fragments [window, ...)
  std::vector<Status> digest_errors;
  size_t window = 0;
  for (size_t i = 0; i < impl->fragments.size(); ++i) {
    Fragment& fragment = impl->fragments[i];
    if (excluded[i]) {
      ++impl->stats.files_pruned;
      continue;
    }
    if (fragment.format == FragmentFormat::kParquet) {
      if (i >= window + digests.size()) {
        window = i;
        const size_t count = std::min(impl->fragments.size() - i, window_files);
        digests.assign(count, nullptr);
        digest_errors.assign(count, Status::OK());
        auto read = [&](size_t k) {
          const Fragment& f = impl->fragments[window + k];
          if (excluded[window + k] || f.format != FragmentFormat::kParquet) return;
          try {
            auto digest = ReadParquetFooterDigest(f.path.string());
            if (digest.ok()) {
              digests[k] = std::move(*digest);
            } else {
              digest_errors[k] = digest.status();
            }
          } catch (const std::exception& e) {  // a pool's task must not throw (bad_alloc)
            digest_errors[k] = Status::Internal(
                fmt::format("reading the footer of {}: {}", f.path.string(), e.what()));
          }
        };
        if (count > 1) {
          FooterPool().Run(count, read);
        } else {
          read(0);
        }
        int64_t largest = 1;
        for (const auto& d : digests) {
          if (d != nullptr) largest = std::max(largest, d->Footprint());
        }
        window_files = std::clamp<size_t>(static_cast<size_t>(kDigestWindowBytes / largest), 1,
                                          std::min<size_t>(2 * window_files, 256));
      }
      const size_t k = i - window;
      if (!digest_errors[k].ok()) return digest_errors[k].WithContext(impl->what);
      Status st =
          PlanParquetFragment(impl->request, *digests[k], &fragment, &impl->stats.row_groups_total,
                              &impl->stats.row_groups_pruned);
      digests[k].reset();  // freed once planned
      if (!st.ok()) return st.WithContext(impl->what);
      if (fragment.row_groups.empty() && !fragment.row_group_rows.empty()) {
        ++impl->stats.files_pruned;
        continue;
      }
    } else {
      std::error_code ec;
      fragment.bytes_estimated =
          static_cast<int64_t>(std::filesystem::file_size(fragment.path, ec));
    }
    impl->stats.bytes_estimated += fragment.bytes_estimated;
    impl->stats.rows_estimated += fragment.rows_estimated;
    kept.push_back(std::move(fragment));
  }
  impl->fragments = std::move(kept);
  return std::unique_ptr<FeatureSourceScan>(new FeatureSourceScan(std::move(impl)));
}

Result<std::shared_ptr<arrow::RecordBatch>> FeatureSourceScan::Next() {
  Impl& s = *impl_;
  if (s.prefetcher == nullptr) {
    // The units to read, and where each starts in the read positions while that is known.
    std::vector<FragmentPrefetcher::Unit> units;
    const bool may_skip = s.ts_index < 0 && s.options.wants_rows != nullptr;
    int64_t at = 0;  // -1: unknown from here on
    // What a unit read in gather mode holds beside its chosen values: a page and a dictionary
    // a column (the writers' default limits, 1 MiB each).
    constexpr int64_t kPickedColumnBytes = int64_t{2} << 20;
    std::vector<int64_t> chosen;
    int64_t largest = 0;  // the most a unit's decoding holds (an estimate)
    // Small files are read whole, one open each (every open parses the footer and maps the
    // schema: 3,000 files of two row groups opened 6,000 times), unless row groups are skipped
    // or picked one at a time (a second read by position, gather mode).
    // A whole file stays within what one of two readers may decode at once.
    int64_t whole_file_bytes = int64_t{1} << 20;
    if (s.options.decode_memory_bytes > 0) {
      whole_file_bytes = std::min(whole_file_bytes, s.options.decode_memory_bytes / 2);
    }
    if (may_skip || s.request.chosen_rows != nullptr) whole_file_bytes = 0;
    for (FragmentPrefetcher::Unit& unit :
         FragmentPrefetcher::Units(s.fragments, whole_file_bytes)) {
      const Fragment& fragment = s.fragments[unit.fragment];
      const int64_t rows = FragmentPrefetcher::UnitRows(fragment, unit);
      if (may_skip && at >= 0 && rows >= 0 && !s.options.wants_rows(at, at + rows)) {
        s.stats.row_groups_skipped += static_cast<int64_t>(unit.row_groups.size());
        at += rows;
        continue;
      }
      // Decoded whole: the unit's share of the fragment's needed bytes.
      const double share = rows >= 0 && fragment.rows_estimated > 0
                               ? static_cast<double>(rows) / fragment.rows_estimated
                               : 1.0;
      int64_t bytes = static_cast<int64_t>(share * fragment.bytes_estimated);
      if (s.request.chosen_rows != nullptr && at >= 0 && rows > 0 && unit.row_groups.size() == 1) {
        // Gather mode (FragmentPrefetcher reads it with ReadChosenRows): the chosen rows' share,
        // and a page and a dictionary a column; never more than decoding it whole.
        unit.first_position = at;
        s.request.chosen_rows(at, at + rows, &chosen);
        const auto picked = static_cast<int64_t>(
            static_cast<double>(chosen.size()) / static_cast<double>(rows) *
                static_cast<double>(bytes) +
            static_cast<double>(kPickedColumnBytes *
                                static_cast<int64_t>(s.request.columns.size())));
        bytes = std::min(bytes, picked);
      }
      largest = std::max(largest, bytes);
      s.unit_first.push_back(at);
      s.unit_rows.push_back(rows);
      units.push_back(std::move(unit));
      at = at >= 0 && rows >= 0 ? at + rows : -1;
    }
    // Several row groups (or files): decode two at a time, one reader thread each, each one's
    // columns in sequence, when two of the largest fit in what decoding may hold. A single one,
    // or a tight bound: decode one at a time, its columns in parallel instead.
    const bool two_fit =
        s.options.decode_memory_bytes <= 0 || 2 * largest <= s.options.decode_memory_bytes;
    const int readers = units.size() > 1 && two_fit ? 2 : 1;
    s.stats.readers = readers;
    s.request.parquet_use_threads = readers == 1;
    s.request.readers = readers;
    s.prefetcher = std::make_unique<FragmentPrefetcher>(&s.fragments, std::move(units), &s.request,
                                                        readers, /*batches_ahead=*/4);
  }
  while (true) {
    auto item = s.prefetcher->Next();
    if (!item.ok()) return item.status().WithContext(s.what);
    if (item->batch == nullptr) return std::shared_ptr<arrow::RecordBatch>();
    if (item->unit != s.unit) {
      // A unit's first batch: skipped units before it still count in the positions.
      s.unit = item->unit;
      if (s.unit_first[s.unit] >= 0) s.position = s.unit_first[s.unit];
    }
    const auto& raw = item->batch;
    if (item->positions != nullptr) {
      // The chosen rows of a row group: where each is, and the positions go on after its last.
      s.stats.rows_scanned += s.unit_rows[s.unit];
      ++s.stats.row_groups_picked;
      GRANARY_ASSIGN_OR_RAISE(auto batch, s.Convert(*raw, s.fragments[item->fragment]));
      s.positions.first = static_cast<const arrow::Int64Array&>(*item->positions).Value(0);
      s.positions.rows = item->positions;
      s.position = s.unit_first[s.unit] + s.unit_rows[s.unit];
      s.stats.rows_returned += batch->num_rows();
      return batch;
    }
    s.stats.rows_scanned += raw->num_rows();
    GRANARY_ASSIGN_OR_RAISE(auto batch, s.Convert(*raw, s.fragments[item->fragment]));
    if (batch->num_rows() == 0) continue;
    s.stats.rows_returned += batch->num_rows();
    return batch;
  }
}

namespace {

class ScanReader final : public arrow::RecordBatchReader {
 public:
  explicit ScanReader(std::unique_ptr<FeatureSourceScan> scan) : scan_(std::move(scan)) {}
  std::shared_ptr<arrow::Schema> schema() const override { return scan_->schema(); }
  arrow::Status ReadNext(std::shared_ptr<arrow::RecordBatch>* batch) override {
    auto next = scan_->Next();
    if (!next.ok()) return arrow::Status::Invalid(next.status().message());
    *batch = *next;
    return arrow::Status::OK();
  }
  const FeatureSourceScan& scan() const { return *scan_; }

 private:
  std::unique_ptr<FeatureSourceScan> scan_;
};

}  // namespace

std::shared_ptr<arrow::RecordBatchReader> FeatureSourceScan::ToReader(
    std::unique_ptr<FeatureSourceScan> scan, const SourceScanStats** stats_out) {
  auto reader = std::make_shared<ScanReader>(std::move(scan));
  if (stats_out != nullptr) *stats_out = &reader->scan().stats();
  return reader;
}

}  // namespace granary
