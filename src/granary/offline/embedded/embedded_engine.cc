#include "granary/offline/embedded/embedded_engine.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include "granary/offline/embedded/latest_rows.h"
#include "granary/offline/embedded/latest_stream.h"
#include "granary/offline/feature_stats.h"
#include "granary/offline/historical.h"
#include "granary/offline/source_append.h"
#include "granary/offline/source_inspector.h"
#include "granary/offline/source_scan.h"
#include "granary/offline/window_join.h"

namespace granary {
namespace {

// A training set handed out batch by batch from its columns, held or spilled
// (TrainingSetOutput): one output row group of the spilled columns in memory at a time.
class TrainingSetStream final : public OfflineBatchStream {
 public:
  TrainingSetStream(std::unique_ptr<TrainingSetOutput> output, std::vector<OfflineReadStats> stats,
                    std::vector<std::string> warnings)
      : output_(std::move(output)),
        schema_(output_->schema()),
        stats_(std::move(stats)),
        warnings_(std::move(warnings)) {}

  const std::shared_ptr<arrow::Schema>& schema() const override { return schema_; }

  Result<std::shared_ptr<arrow::RecordBatch>> Next() override { return output_->Next(); }

  std::vector<OfflineReadStats> stats() const override { return stats_; }
  std::vector<std::string> warnings() const override { return warnings_; }

 private:
  std::unique_ptr<TrainingSetOutput> output_;
  std::shared_ptr<arrow::Schema> schema_;
  const std::vector<OfflineReadStats> stats_;
  const std::vector<std::string> warnings_;
};

// The events of a view for its tiles: a source scan, rows with a null join key left out.
class EventStream final : public OfflineBatchStream {
 public:
  EventStream(std::unique_ptr<FeatureSourceScan> scan, const CancelFlag* cancel)
      : scan_(std::move(scan)), cancel_(cancel) {}

  const std::shared_ptr<arrow::Schema>& schema() const override { return scan_->schema(); }

  Result<std::shared_ptr<arrow::RecordBatch>> Next() override {
    while (true) {
      if (cancel_ != nullptr && cancel_->cancelled()) {
        return Status::Cancelled("reading events cancelled");
      }
      GRANARY_ASSIGN_OR_RAISE(auto batch, scan_->Next());
      if (batch == nullptr) return batch;
      const size_t keys = scan_->join_keys().size();
      bool has_nulls = false;
      for (size_t k = 0; k < keys; ++k) has_nulls = has_nulls || batch->column(k)->null_count() > 0;
      if (has_nulls) {
        arrow::BooleanBuilder keep;
        for (int64_t i = 0; i < batch->num_rows(); ++i) {
          bool valid = true;
          for (size_t k = 0; k < keys; ++k) valid = valid && batch->column(k)->IsValid(i);
          (void)keep.Append(valid);
        }
        auto mask = keep.Finish();
        if (!mask.ok()) return Status::Internal(mask.status().ToString());
        auto filtered = arrow::compute::Filter(batch, *mask);
        if (!filtered.ok()) return Status::Internal(filtered.status().ToString());
        batch = filtered->record_batch();
      }
      if (batch->num_rows() > 0) return batch;
    }
  }

  std::vector<OfflineReadStats> stats() const override {
    OfflineReadStats s;
    const SourceScanStats& scan = scan_->stats();
    s.files_total = scan.files_total;
    s.files_pruned = scan.files_pruned;
    s.row_groups_total = scan.row_groups_total;
    s.row_groups_pruned = scan.row_groups_pruned;
    s.rows_scanned = scan.rows_scanned;
    s.rows_returned = scan.rows_returned;
    return {s};
  }

 private:
  std::unique_ptr<FeatureSourceScan> scan_;
  const CancelFlag* cancel_;
};

class EmbeddedEngine final : public OfflineEngine {
 public:
  EmbeddedEngine(std::filesystem::path root, EmbeddedEngineOptions options)
      : root_(std::move(root)), options_(std::move(options)) {}

  std::string Describe() const override {
    return fmt::format("the embedded offline engine (offline_store type file) under {}",
                       root_.string());
  }

  OfflineEngineCapabilities capabilities() const override {
    OfflineEngineCapabilities c;
    c.append = true;
    c.window_aggregations = true;  // offline/window_join.h
    c.path_sources = true;
    return c;
  }

  Status ValidateSource(const DataSource& source) const override {
    if (source.is_push()) {
      return Status::InvalidArgument(fmt::format(
          "data source '{}' is a push source: its rows are read from its batch source '{}'",
          source.name, source.batch_source));
    }
    const char* form = !source.table.empty() ? "table" : !source.query.empty() ? "query" : nullptr;
    if (form != nullptr) {
      return Status::NotImplemented(fmt::format(
          "data source '{}' reads a {} ({}), which the embedded engine (offline_store type file) "
          "cannot: it reads Parquet, CSV and Delta files by path. Set offline_store: {{type: "
          "spark, ...}} in granary.yaml to read catalog tables and SQL queries, or give the files' "
          "path instead",
          source.name, form, form == std::string_view("table") ? source.table : "SQL"));
    }
    if (source.path.empty()) {
      return Status::InvalidArgument(
          fmt::format("data source '{}' has no path: say where its files are", source.name));
    }
    return Status::OK();
  }

  Result<std::optional<InspectedSchema>> Inspect(const DataSource& source) override {
    GRANARY_RETURN_NOT_OK(ValidateSource(source));
    FileSourceInspector files(root_);
    return files.Inspect(source);
  }

  Result<std::unique_ptr<OfflineBatchStream>> GetHistoricalFeatures(
      const Definitions& defs, const HistoricalRequest& request) override {
    if (!request.entity_sql.empty() || !request.entity_table.empty()) {
      return Status::NotImplemented(
          "entity rows given as SQL or a table need an engine that runs SQL (offline_store type "
          "spark); the embedded engine takes entity rows from a file or a DataFrame");
    }
    GRANARY_RETURN_NOT_OK(CheckViewSources(defs, request));
    HistoricalJoinOptions join;
    join.memory_budget_bytes = options_.memory_budget_bytes;
    join.threads = options_.threads;
    join.spill_dir = options_.spill_dir;
    HistoricalStats stats;
    GRANARY_ASSIGN_OR_RAISE(auto output,
                            BuildHistoricalFeatures(root_, defs, request, join, &stats));
    std::vector<OfflineReadStats> read;
    for (const auto& v : stats.views) {
      OfflineReadStats s = ToReadStats(v.name, v.join.scan);
      s.rows_matched = v.join.rows_matched;
      s.row_groups_skipped = v.join.row_groups_skipped;
      s.plain_features = v.plain_features;
      s.aggregation_window = v.window;
      s.rows_with_events = v.rows_with_events;
      // Window aggregations read in time slices of the entity rows (window_join.h): said on the
      // view's summary line, after its partitions (the most of a slice) and bytes spilled (all
      // slices').
      if (v.time_slices > 1) {
        s.engine_detail = fmt::format("read in {} time slices of the entity rows", v.time_slices);
      }
      s.partitions = v.join.partitions;
      s.bytes_spilled = v.join.bytes_spilled;
      s.memory_plan = v.join.plan;
      s.output_plan = v.output_plan;
      s.output_bytes_spilled = v.output_spilled ? v.output_bytes : 0;
      read.push_back(std::move(s));
    }
    std::vector<std::string> warnings;
    if (stats.resident_bytes > options_.memory_budget_bytes) {
      warnings.push_back(fmt::format(
          "the entity rows ({} MiB, read whole) and one view's output columns while its join "
          "gathers them (the largest: about {} MiB) take about {} MiB, more than {}; the joins "
          "kept to a quarter of the budget and the views' columns past half of it were spilled "
          "until written, but those are held whatever the budget",
          stats.entity_bytes >> 20, (stats.resident_bytes - stats.entity_bytes) >> 20,
          stats.resident_bytes >> 20,
          options_.memory_budget_name.empty()
              ? fmt::format("the memory budget ({} MiB)", options_.memory_budget_bytes >> 20)
              : options_.memory_budget_name));
    }
    return std::unique_ptr<OfflineBatchStream>(
        new TrainingSetStream(std::move(output), std::move(read), std::move(warnings)));
  }

  Result<std::unique_ptr<OfflineBatchStream>> LatestRows(
      const Definitions& defs, const LatestRowsRequest& request) override {
    GRANARY_ASSIGN_OR_RAISE(ViewSource source, ScanSource(defs, request.view, "LatestRows",
                                                          request.start, request.end));
    source.options.features = request.features;
    source.options.decode_memory_bytes = DecodeMemoryBytes();
    LatestRowsOptions latest;
    latest.memory_budget_bytes = options_.memory_budget_bytes;
    latest.spill_dir = options_.spill_dir;
    latest.progress = request.progress;
    latest.cancel = request.cancel;
    latest.TEST_force_partitions = options_.TEST_force_partitions;
    // Both passes read the files of one listing (one Delta version).
    GRANARY_ASSIGN_OR_RAISE(SourceSnapshot files,
                            SourceSnapshot::Read(source.repo_root, *source.defs, *source.view));
    LatestRowsStats first_pass;
    GRANARY_ASSIGN_OR_RAISE(LatestRowsChoice chosen,
                            SelectLatestRows(source, files, latest, &first_pass));
    return OpenLatestRowsStream(source, std::move(files), first_pass, std::move(chosen),
                                request.batch_rows, request.cancel);
  }

  Result<std::unique_ptr<OfflineBatchStream>> ReadEvents(const Definitions& defs,
                                                         const EventsRequest& request) override {
    GRANARY_ASSIGN_OR_RAISE(ViewSource source, ScanSource(defs, request.view, "ReadEvents",
                                                          request.start, request.end));
    source.options.batch_rows = request.batch_rows;
    source.options.decode_memory_bytes = DecodeMemoryBytes();
    GRANARY_ASSIGN_OR_RAISE(auto scan, OpenAggregationEventScan(source));
    return std::unique_ptr<OfflineBatchStream>(new EventStream(std::move(scan), request.cancel));
  }

  Result<OfflineAppendResult> Append(const DataSource& source, const arrow::Table& rows,
                                     const Clock& clock) override {
    if (!source.is_push()) GRANARY_RETURN_NOT_OK(ValidateSource(source));
    GRANARY_ASSIGN_OR_RAISE(SourceAppendResult appended,
                            AppendToSource(root_, source, rows, clock));
    OfflineAppendResult out;
    for (const auto& file : appended.files) out.files.push_back(file.string());
    out.delta_version = appended.delta_version;
    out.rows = appended.rows;
    return out;
  }

  Result<FeatureStatsReport> FeatureStatistics(const Definitions& defs, const FeatureView& view,
                                               const FeatureStatsOptions& options) override {
    if (const DataSource* source = defs.FindOfflineSource(view.source)) {
      GRANARY_RETURN_NOT_OK(
          ValidateSource(*source).WithContext(fmt::format("feature view '{}'", view.name)));
    }
    GRANARY_ASSIGN_OR_RAISE(FeatureStatsReport report,
                            ComputeFeatureStatsFromFiles(root_, defs, view, options));
    report.scan.engine_detail = Describe();
    return report;
  }

 private:
  // What a materialization's scan may hold decoded at once: a quarter of the memory budget, the
  // share its batches have (materializer.cc), so a small budget decodes one row group at a time.
  int64_t DecodeMemoryBytes() const { return options_.memory_budget_bytes / 4; }

  // Sources of the requested views that this engine cannot read fail the request up front.
  Status CheckViewSources(const Definitions& defs, const HistoricalRequest& request) const {
    GRANARY_ASSIGN_OR_RAISE(ResolvedFeatures resolved, ResolveFeatures(defs, request));
    for (const auto& group : resolved.views) {
      if (const DataSource* source = defs.FindOfflineSource(group.view->source)) {
        GRANARY_RETURN_NOT_OK(ValidateSource(*source).WithContext(
            fmt::format("feature view '{}'", group.view->name)));
      }
    }
    return Status::OK();
  }

  // What a scan of `view` (a LatestRows or ReadEvents request, named by `call` when the view is
  // missing) over [start, end] reads, its source checked first as for a training set.
  Result<ViewSource> ScanSource(const Definitions& defs, const FeatureView* view,
                                std::string_view call, std::optional<Timestamp> start,
                                Timestamp end) const {
    if (view == nullptr) return Status::InvalidArgument(fmt::format("{}: no view given", call));
    if (const DataSource* source = defs.FindOfflineSource(view->source)) {
      GRANARY_RETURN_NOT_OK(
          ValidateSource(*source).WithContext(fmt::format("feature view '{}'", view->name)));
    }
    ViewSource out;
    out.repo_root = root_;
    out.defs = &defs;
    out.view = view;
    out.options.start = start;
    out.options.end = end;
    return out;
  }

  const std::filesystem::path root_;
  const EmbeddedEngineOptions options_;
};

}  // namespace

std::unique_ptr<OfflineEngine> MakeEmbeddedEngine(std::filesystem::path repo_root,
                                                  EmbeddedEngineOptions options) {
  return std::make_unique<EmbeddedEngine>(std::move(repo_root), std::move(options));
}

}  // namespace granary
