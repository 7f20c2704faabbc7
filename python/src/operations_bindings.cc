// FeatureStoreCore's operations: materialize and materialize_incremental (Materialize(), the
// CLI's core), push (the feature server's push core) and status (the data of `granary status`).
// Results go to Python as plain dicts and lists with times as microseconds since the epoch; the
// Python side (feature_store.py, operations.py) wraps them.
#include <arrow/api.h>
#include <fmt/format.h>

#include <atomic>
#include <cstdlib>

#include "bindings.h"
#include "feature_store_core.h"
#include "granary/common/clock.h"
#include "granary/common/strings.h"
#include "granary/console/console_service.h"
#include "granary/materialize/interval.h"
#include "granary/materialize/materializer.h"
#include "granary/materialize/view_status.h"
#include "granary/offline/feature_stats.h"
#include "granary/offline/spill_folder.h"
#include "granary/online/view_layout.h"
#include "granary/push/push.h"
#include "granary/registry/registry_factory.h"
#include "granary/registry/registry_store.h"
#include "granary/serving/materialize_handoff.h"

namespace granary::python {
namespace {

nb::object Micros(const std::optional<Timestamp>& t) {
  return t ? nb::object(nb::int_(t->micros)) : nb::none();
}

nb::dict ViewDict(const ViewMaterialization& v) {
  nb::dict d;
  d["view"] = v.view;
  d["start"] = Micros(v.start);
  d["end"] = v.end.micros;
  d["run_id"] = v.run_id;
  d["code"] = std::string(StatusCodeName(v.status.code()));
  d["error"] = v.status.ok() ? std::string() : v.status.message();
  d["up_to_date"] = v.up_to_date;
  d["started_over"] = v.started_over;
  d["watermark_before"] = Micros(v.watermark_before);
  d["watermark_after"] = Micros(v.watermark_after);
  d["watermark_note"] = v.watermark_note;
  d["files_total"] = v.scan.files_total;
  d["files_pruned"] = v.scan.files_pruned;
  d["row_groups_total"] = v.scan.row_groups_total;
  d["row_groups_pruned"] = v.scan.row_groups_pruned;
  d["rows_scanned"] = v.scan.rows_scanned;
  d["rows_in_range"] = v.rows_in_range;
  d["null_key_rows"] = v.null_key_rows;
  d["entities"] = v.entities;
  d["entities_written"] = v.entities_written;
  d["entities_skipped"] = v.entities_skipped;
  d["partitions"] = v.partitions;
  d["bytes_spilled"] = v.bytes_spilled;
  d["seconds"] = v.seconds;
  return d;
}

nb::dict RunDict(const MaterializationRun& run) {
  nb::dict d;
  d["id"] = run.id;
  d["status"] = std::string(RunStatusName(run.status));
  d["trigger"] = run.trigger;
  d["interval_start"] = run.interval_start == kUnboundedStart
                            ? nb::none()
                            : nb::object(nb::int_(run.interval_start.micros));
  d["interval_end"] = run.interval_end.micros;
  d["started_at"] = run.started_at.micros;
  d["finished_at"] = Micros(run.finished_at);
  d["rows_read"] = run.rows_read;
  d["entities_written"] = run.entities_written;
  d["entities_skipped"] = run.entities_skipped;
  d["error"] = run.error;
  d["pid"] = run.pid;
  d["host"] = run.host;
  d["note"] = run.note;
  d["newest_event"] = Micros(run.newest_event);
  return d;
}

nb::dict StatusDict(const ViewStatus& s) {
  nb::dict d;
  d["view"] = s.view;
  d["watermark"] = Micros(s.watermark);
  d["schema_changed"] = s.layout_changed;
  d["stale_watermark"] = Micros(s.stale_watermark);
  d["staleness_micros"] = s.staleness ? nb::object(nb::int_(s.staleness->micros)) : nb::none();
  d["running"] = s.running;
  d["last_run"] = s.last_run ? nb::object(RunDict(*s.last_run)) : nb::none();
  d["last_success"] = s.last_success ? nb::object(RunDict(*s.last_success)) : nb::none();
  d["recent_runs"] = s.recent_runs;
  d["recent_succeeded"] = s.recent_succeeded;
  d["consecutive_failures"] = s.consecutive_failures;
  d["newest_event"] = Micros(s.newest_event);
  d["data_age_micros"] = s.data_age ? nb::object(nb::int_(s.data_age->micros)) : nb::none();
  d["push_view"] = s.push_view;
  d["last_push_at"] = s.push ? nb::object(nb::int_(s.push->last_push_at.micros)) : nb::none();
  d["rows_pushed"] = s.push ? s.push->rows : 0;
  return d;
}

// The status of every online view of the latest definitions, as `granary status` shows it.
Result<std::pair<Timestamp, std::vector<ViewStatus>>> CollectStatus(const RepoConfig& config,
                                                                    const Definitions& defs,
                                                                    int recent) {
  // A registry connection of this call's own (CollectViewStatus's contract).
  GRANARY_ASSIGN_OR_RAISE(auto registry, OpenRegistry(config, OpenMode::kOpenExisting));
  const Timestamp now = SystemClock::Default().Now();
  GRANARY_ASSIGN_OR_RAISE(auto statuses,
                          CollectOnlineViewStatus(*registry, defs, config, now, recent));
  return std::make_pair(now, std::move(statuses));
}

}  // namespace

void BindOperations(nb::module_& m, nb::class_<FeatureStoreCore>& cls) {
  m.def(
      "remove_stale_spill_folders",
      [](const std::string& spill_dir) {
        std::vector<std::string> removed;
        for (const auto& folder : RemoveStaleSpillFolders(spill_dir)) {
          removed.push_back(folder.string());
        }
        return removed;
      },
      nb::arg("spill_dir"),
      "Removes the spill folders under spill_dir (the system's temporary folder when empty) "
      "that killed granary processes left (offline/spill_folder.h); returns them.");
  m.def(
      "parse_timestamp",
      [](const std::string& text, const std::string& what) -> int64_t {
        auto ts = ParseTimeOrNow(text);
        if (!ts.ok()) {
          ThrowIfError(Status::InvalidArgument(
              fmt::format("{} '{}': {}", what, text, ts.status().message())));
        }
        return ts->value_or(SystemClock::Default().Now()).micros;
      },
      nb::arg("text"), nb::arg("what"),
      "ISO 8601 / RFC 3339 text (no offset: UTC) or 'now' as microseconds since the epoch.");

  cls.def(
      "materialize",
      [](FeatureStoreCore& self, bool incremental, std::optional<int64_t> start, int64_t end,
         const std::vector<std::string>& views, int64_t memory_budget_bytes, int write_threads,
         int64_t write_batch_rows, const std::string& spill_dir, bool progress) {
        MaterializeRequest request;
        request.kind = incremental ? MaterializeRequest::Kind::kIncremental
                                   : MaterializeRequest::Kind::kInterval;
        if (!incremental) request.start = Timestamp::FromMicros(start.value_or(0));
        request.end = Timestamp::FromMicros(end);
        request.views = views;
        request.trigger = incremental ? "python materialize_incremental" : "python materialize";
        MaterializeOptions options;
        SetMemoryBudget(&options, memory_budget_bytes, spill_dir);
        options.write_threads = write_threads;
        options.write_batch_rows = write_batch_rows;
        options.progress.mode =
            progress ? ProgressOptions::Mode::kDetect : ProgressOptions::Mode::kSilent;
        options.metrics = nullptr;  // a notebook has no /metrics endpoint
        {
          nb::gil_scoped_release release;
          ThrowIfError(self.Latest(/*check_for_newer=*/true).status());
        }
        HandoffOptions handoff;
        if (const char* token = std::getenv("GRANARY_SERVE_TOKEN")) handoff.token = token;
        std::atomic<bool> cancelled{false};
        handoff.cancelled = &cancelled;
        std::optional<Result<MaterializeReport>> report;
        // The outcome (a view's failure too) becomes the note of a KeyboardInterrupt; otherwise
        // a failed view travels with the report, and only an error before any view is raised.
        const Status status = RunInterruptible(
            [&]() -> Status {
              report.emplace([&]() -> Result<MaterializeReport> {
                // While a server holds the embedded store, the run is the server's.
                GRANARY_ASSIGN_OR_RAISE(std::optional<MaterializeReport> handed,
                                        MaterializeThroughServer(self.config(), request, handoff));
                if (handed) return std::move(*handed);
                // This FeatureStore's own writer after a push; else the run opens the store.
                std::shared_ptr<OnlineStore> store = self.OpenWritableStore();
                return Materialize(self.config(), request, options, store.get(), &cancelled);
              }());
              return report->ok() ? (*report)->status : report->status();
            },
            [&cancelled] { cancelled.store(true); });
        ThrowIfError(report->status());
        nb::list out;
        for (const ViewMaterialization& v : (*report)->views) out.append(ViewDict(v));
        return nb::make_tuple(out, std::string(StatusCodeName(status.code())),
                              status.ok() ? std::string() : status.message());
      },
      nb::arg("incremental"), nb::arg("start").none(), nb::arg("end"), nb::arg("views"),
      nb::arg("memory_budget_bytes"), nb::arg("write_threads"), nb::arg("write_batch_rows"),
      nb::arg("spill_dir"), nb::arg("progress"),
      "Materialize() into this store's online store: (views, status code, message).");

  cls.def(
      "push",
      [](FeatureStoreCore& self, const std::string& push_source_name, nb::handle rows,
         const std::string& to, int64_t max_clock_skew_micros) {
        const PushTarget target = ValueOrThrow(ParsePushTarget(to));
        std::shared_ptr<arrow::Table> table = ImportArrowTable(rows, "df");
        PushResult result;
        std::vector<std::string> files;
        {
          nb::gil_scoped_release release;
          FeatureStoreCore::Applied applied = ValueOrThrow(self.Latest(/*check_for_newer=*/true));
          PushContext context;
          context.definitions = applied.definitions.get();
          std::shared_ptr<OfflineEngine> engine;
          if (target != PushTarget::kOnline) {
            engine = ValueOrThrow(self.Offline());
            context.engine = engine.get();
          }
          // Recorded for `granary status` (written when the call returns).
          PushLog log(self.config().Registry(), &SystemClock::Default());
          context.log = &log;
          context.max_clock_skew = Duration::Microseconds(max_clock_skew_micros);
          FeatureStoreCore::Online online;
          std::shared_ptr<OnlineStore> writer;
          ViewLayouts layouts;
          if (target == PushTarget::kOffline) {
            // No online write: the store stays closed (another process may hold it).
            layouts = ValueOrThrow(
                MakeViewLayouts(*applied.definitions, self.config().online_store.key_ttl));
            context.layouts = &layouts;
          } else {
            online = ValueOrThrow(self.OnlineService());
            context.layouts = &online.service->layouts();
            writer = ValueOrThrow(self.WritableStore());
            context.store = writer.get();
          }
          result = ValueOrThrow(Push(context, push_source_name, *table, target));
          files = result.offline.files;
        }
        nb::dict d;
        d["rows"] = result.rows;
        d["views"] = result.views;
        d["written"] = result.online.written;
        d["skipped_older"] = result.online.skipped_older;
        d["files"] = files;
        d["delta_version"] = result.offline.delta_version;
        return d;
      },
      nb::arg("push_source_name"), nb::arg("rows"), nb::arg("to"),
      nb::arg("max_clock_skew_micros") = kDefaultPushMaxClockSkew.micros,
      "The feature server's push core over an Arrow table: a dict of what was written.");

  cls.def(
      "status",
      [](FeatureStoreCore& self, int recent_runs) {
        if (recent_runs < 1) {
          ThrowIfError(Status::InvalidArgument(
              fmt::format("recent_runs must be at least 1, not {}", recent_runs)));
        }
        std::pair<Timestamp, std::vector<ViewStatus>> collected;
        {
          nb::gil_scoped_release release;
          FeatureStoreCore::Applied applied = ValueOrThrow(self.Latest(/*check_for_newer=*/true));
          collected = ValueOrThrow(CollectStatus(self.config(), *applied.definitions, recent_runs));
        }
        nb::list views;
        for (const ViewStatus& s : collected.second) views.append(StatusDict(s));
        return nb::make_tuple(collected.first.micros, views);
      },
      nb::arg("recent_runs"),
      "(now, [view status dict, ...]) for every online view, as `granary status --json`.");

  cls.def(
      "feature_stats",
      [](FeatureStoreCore& self, const std::string& view_name, std::vector<std::string> features,
         std::optional<int64_t> start, std::optional<int64_t> end, int bins, int top, int sample) {
        std::string json;
        FeatureStoreCore::Applied applied;
        const FeatureView* view = nullptr;
        {
          nb::gil_scoped_release release;
          applied = ValueOrThrow(self.Latest(/*check_for_newer=*/true));
          view = applied.definitions->FindFeatureView(view_name);
          if (view == nullptr) {
            std::vector<std::string> names;
            for (const FeatureView& v : applied.definitions->feature_views) names.push_back(v.name);
            ThrowIfError(Status::NotFound(
                fmt::format("no feature view '{}'{}", view_name, DidYouMean(view_name, names))));
          }
        }
        FeatureStatsOptions options;
        options.features = std::move(features);
        if (start) options.start = Timestamp::FromMicros(*start);
        if (end) options.end = Timestamp::FromMicros(*end);
        options.histogram_bins = bins;
        options.top_values = top;
        options.sample_entities = sample;
        CancelFlag cancel;
        options.cancel = &cancel;
        // The repository's offline engine computes them (in the cluster on Spark); Ctrl-C stops it.
        ThrowIfError(RunInterruptible(
            [&]() -> Status {
              GRANARY_ASSIGN_OR_RAISE(std::shared_ptr<OfflineEngine> engine, self.Offline());
              GRANARY_ASSIGN_OR_RAISE(
                  FeatureStatsReport report,
                  engine->FeatureStatistics(*applied.definitions, *view, options));
              std::string online, note;
              if (sample > 0) {
                auto read = ReadOnlineSample(self.config(), applied.definitions, *view, report);
                if (read.ok()) {
                  online = std::move(*read);
                } else {
                  note = read.status().message();
                }
              }
              json = FeatureStatsJson(report, online, note);
              return Status::OK();
            },
            &cancel));
        return json;
      },
      nb::arg("view"), nb::arg("features"), nb::arg("start").none(), nb::arg("end").none(),
      nb::arg("bins"), nb::arg("top"), nb::arg("sample"),
      "The statistics of `granary stats --json` (docs/CONSOLE.md), as JSON text.");
}

}  // namespace granary::python
