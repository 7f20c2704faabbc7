#include "granary/materialize/materializer.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "granary/common/mutex.h"
#include "granary/common/strings.h"
#include "granary/materialize/interval.h"
#include "granary/materialize/materialize_metrics.h"
#include "granary/materialize/online_check.h"
#include "granary/materialize/online_writer.h"
#include "granary/materialize/repository_lock.h"
#include "granary/materialize/run_context.h"
#include "granary/materialize/tile_materializer.h"
#include "granary/online/view_layout.h"
#include "granary/registry/registry_factory.h"
#include "granary/registry/registry_store.h"

namespace granary {
namespace {

// Bytes of one source row of the view in Arrow, roughly, for sizing pass two's batches.
int64_t EstimatedRowBytes(const ViewLayout& layout) {
  int64_t bytes = 16 + 8 * static_cast<int64_t>(layout.join_keys().size());
  for (const auto& f : layout.features()) {
    bytes += f.type.is_list || f.type.scalar == ScalarType::kString ||
                     f.type.scalar == ScalarType::kBytes
                 ? 32
                 : 8;
  }
  return bytes;
}

// The views to run, in the order asked (or the definitions' order).
Result<std::vector<const FeatureView*>> SelectViews(const Definitions& defs,
                                                    const std::vector<std::string>& names) {
  std::vector<const FeatureView*> out;
  std::vector<std::string> online;
  for (const FeatureView& v : defs.feature_views) {
    if (v.online) online.push_back(v.name);
  }
  if (names.empty()) {
    for (const FeatureView& v : defs.feature_views) {
      if (v.online) out.push_back(&v);
    }
    if (out.empty()) {
      return Status::FailedPrecondition(
          "no feature view is online (every view has online: false); nothing to materialize");
    }
    return out;
  }
  for (const std::string& name : names) {
    const FeatureView* view = defs.FindFeatureView(name);
    if (view == nullptr) {
      return Status::InvalidArgument(
          fmt::format("--views: no feature view '{}'{}; online views: {}", name,
                      DidYouMean(name, online), online.empty() ? "none" : Join(online, ", ")));
    }
    if (!view->online) {
      return Status::InvalidArgument(
          fmt::format("--views: feature view '{}' is not online (online: false), so it is never "
                      "materialized; set online: true and apply, or leave it out",
                      name));
    }
    if (std::find(out.begin(), out.end(), view) == out.end()) out.push_back(view);
  }
  return out;
}

// Records a running run's counts in the registry as the writers go, so that a run cut off
// (kill -9) keeps what it wrote: at the first batch, then at most once a second. Thread-safe:
// writer threads call Add; the registry is used by one of them at a time (the main thread waits
// in WriteLatestRows meanwhile).
class RunProgressRecorder {
 public:
  RunProgressRecorder(RegistryStore& registry, int64_t run_id, int64_t rows_read)
      : registry_(registry), run_id_(run_id), rows_read_(rows_read) {}

  void Add(const WriteStats& batch) {
    written_.fetch_add(batch.written);
    skipped_.fetch_add(batch.skipped_older);
    if (!mu_.TryLock()) return;  // another writer is recording
    RecordLocked();
    mu_.Unlock();
  }

 private:
  void RecordLocked() REQUIRES(mu_) {
    const auto now = std::chrono::steady_clock::now();
    if (recorded_once_ && now - last_ < std::chrono::seconds(1)) return;
    recorded_once_ = true;
    last_ = now;
    // Best effort: a registry busy for a moment costs a progress record, not the run.
    (void)registry_.UpdateRunProgress(run_id_, rows_read_, written_.load(), skipped_.load());
  }

  RegistryStore& registry_;
  const int64_t run_id_;
  const int64_t rows_read_;
  std::atomic<int64_t> written_{0};
  std::atomic<int64_t> skipped_{0};
  Mutex mu_;
  bool recorded_once_ GUARDED_BY(mu_) = false;
  std::chrono::steady_clock::time_point last_ GUARDED_BY(mu_);
};

}  // namespace

// The most bytes of one batch of the second pass (rows with their features). Larger batches are
// not faster: the decode is per column either way, and every batch in flight is memory the
// process touches. With a 1 GiB budget the batches used to be 22 MB (52K rows x 50 features), a
// dozen in flight: 270 MiB of Arrow memory whose first touch (the kernel zeroing fresh pages)
// was a fifth of the CPU of a bulk load (docs/PERFORMANCE.md, "Materialization").
constexpr int64_t kMaxReadBatchBytes = int64_t{4} << 20;

int64_t LatestRowsBatchRows(int64_t batch_memory_bytes, const ViewLayout& layout) {
  return std::clamp<int64_t>(
      std::min(batch_memory_bytes / 12, kMaxReadBatchBytes) / EstimatedRowBytes(layout), 1024,
      64 * 1024);
}

namespace {

// The latest rows of one view from the offline engine, written online; fills the counts of `out`.
Status MaterializeRows(const RunContext& ctx, const FeatureView& view, const ViewLayout& layout,
                       ViewMaterialization* out) {
  CancelFlag cancel(ctx.cancelled);
  LatestRowsRequest request;
  request.view = &view;
  request.start = out->start;
  request.end = out->end;
  request.batch_rows = LatestRowsBatchRows(ctx.options.batch_memory_bytes, layout);
  request.cancel = &cancel;
  std::unique_ptr<OfflineBatchStream> rows;
  {
    Progress progress(fmt::format("{}: latest rows", view.name), 0, "rows", ctx.options.progress);
    request.progress = &progress;
    auto opened = ctx.engine.LatestRows(ctx.defs, request);
    if (!opened.ok()) return opened.status();
    rows = std::move(*opened);
  }
  auto read_stats = [&] {
    std::vector<OfflineReadStats> all = rows->stats();
    if (!all.empty()) out->scan = all.front();
    out->rows_in_range = out->scan.rows_returned;
    out->null_key_rows = out->scan.null_key_rows;
    out->partitions = out->scan.partitions;
    out->bytes_spilled = out->scan.bytes_spilled;
    out->peak_state_bytes = out->scan.peak_state_bytes;
  };
  read_stats();
  (void)ctx.registry.UpdateRunProgress(out->run_id, out->scan.rows_scanned, 0, 0);

  OnlineWriteOptions write;
  const int cores = std::max(1u, std::thread::hardware_concurrency());
  write.threads = ctx.options.write_threads > 0 ? ctx.options.write_threads : 2 * cores;
  write.batch_rows = std::max<int64_t>(1, ctx.options.write_batch_rows);
  write.cancelled = ctx.cancelled;
  write.bulk_load_min_rows = ctx.options.bulk_load_min_rows;
  write.bulk_load.sort_buffer_bytes =
      std::max<int64_t>(int64_t{8} << 20, ctx.options.batch_memory_bytes);
  RunProgressRecorder recorder(ctx.registry, out->run_id, out->scan.rows_scanned);
  write.after_write = [&ctx, &view, &recorder](const WriteStats& s) {
    recorder.Add(s);
    if (ctx.options.after_write) ctx.options.after_write(view.name, s);
  };
  // The number of entities is known up front when the engine found them before streaming.
  Progress progress(fmt::format("{}: write", view.name), rows->expected_rows(), "entities",
                    ctx.options.progress);
  write.progress = &progress;
  OnlineWriteStats write_stats;
  Status st = WriteLatestRows(*rows, layout, &ctx.store, write, &write_stats);
  read_stats();
  out->entities = write_stats.rows;
  out->newest_event = write_stats.newest_event;
  out->entities_written = write_stats.written.written;
  out->entities_skipped = write_stats.written.skipped_older;
  out->bulk_loaded = write_stats.bulk_loaded;
  return st;
}

// `reload_reason`: the online data this view's watermark promises is lost (online_check.h); the
// run then ignores the watermark and reads the ttl window, as a first run does.
ViewMaterialization MaterializeOneView(const RunContext& ctx, const FeatureView& view,
                                       const ViewLayout& layout,
                                       std::optional<WatermarkState> state,
                                       const std::string& reload_reason) {
  const auto began = std::chrono::steady_clock::now();
  ViewMaterialization out;
  out.view = view.name;
  const std::string tag = LayoutTag(layout, ctx.config.online_store);
  // The watermark the view had before, under this layout (a reload keeps it as its floor).
  std::optional<Timestamp> promised;
  if (state && state->layout == tag) promised = state->watermark;
  if (!reload_reason.empty()) state.reset();
  const ViewInterval plan = ctx.request.kind == MaterializeRequest::Kind::kIncremental
                                ? PlanIncremental(state, tag, view.ttl, ctx.request.end)
                                : PlanInterval(state, tag, ctx.request.start, ctx.request.end);
  out.start = plan.start;
  out.end = plan.end;
  out.up_to_date = plan.up_to_date;
  out.started_over =
      plan.layout_changed && ctx.request.kind == MaterializeRequest::Kind::kIncremental;
  out.watermark_before = plan.watermark;
  out.watermark_after = plan.watermark;
  out.watermark_note = plan.watermark_note;
  out.reload_reason = reload_reason;
  if (!reload_reason.empty()) out.watermark_before = promised;
  if (plan.up_to_date) return out;

  MaterializationRun run;
  run.view = view.name;
  run.interval_start = plan.start.value_or(kUnboundedStart);
  run.interval_end = plan.end;
  run.trigger = ctx.request.trigger;
  run.started_at = ctx.options.clock->Now();
  run.pid = getpid();
  run.host = ThisHost();
  run.lock_token = ctx.lock_token;
  if (!reload_reason.empty()) {
    run.note = fmt::format("reload over the ttl window: {}", reload_reason);
  }
  auto run_id = ctx.registry.StartRun(run);
  if (!run_id.ok()) {
    out.status = run_id.status();
    return out;
  }
  out.run_id = *run_id;

  Status st = MaterializeRows(ctx, view, layout, &out);
  if (st.ok() && layout.tile_layout() != nullptr) {
    // Incremental only after a watermark reached under this layout (whose tag covers the tile
    // spec), never for a reload or a START END run (which re-reads the whole retention).
    std::optional<Timestamp> incremental_after;
    if (ctx.request.kind == MaterializeRequest::Kind::kIncremental && reload_reason.empty()) {
      incremental_after = plan.watermark;
    }
    st = MaterializeTiles(ctx, view, *layout.tile_layout(), incremental_after, &out)
             .WithContext(fmt::format("feature view '{}': its aggregation tiles", view.name));
  }  // else no tiles can be kept (tile_error()): serving refuses those features, saying why
  if (st.ok() && IsCancelled(ctx.cancelled)) {
    st = Status::Cancelled(fmt::format("feature view '{}': materialization cancelled", view.name));
  }
  // The marker goes into the store before the watermark moves (online_check.h): it never
  // promises less than the registry does.
  bool wrote_marker = false;
  if (st.ok() && plan.advances_watermark) {
    ViewMarker marker;
    marker.layout = tag;
    // A reload promises only what it read: up to END, even when the lost watermark was later.
    marker.watermark = promised && reload_reason.empty() ? std::max(*promised, plan.end) : plan.end;
    marker.run_id = out.run_id;
    st = ctx.store.PutViewMarker(view.name, marker)
             .WithContext(fmt::format("feature view '{}': writing its online marker", view.name));
    wrote_marker = st.ok();
  }
  RunOutcome outcome;
  outcome.status = st.ok() ? RunStatus::kSucceeded : RunStatus::kFailed;
  outcome.finished_at = ctx.options.clock->Now();
  outcome.rows_read = out.scan.rows_scanned;
  outcome.entities_written = out.entities_written;
  outcome.entities_skipped = out.entities_skipped;
  outcome.error = st.ok() ? "" : st.message();
  outcome.newest_event = out.newest_event;
  if (st.ok() && plan.advances_watermark) outcome.advance_watermark_to = plan.end;
  outcome.watermark_layout = tag;
  outcome.wrote_online_marker = wrote_marker;
  Status recorded = ctx.registry.FinishRun(out.run_id, outcome);
  if (st.ok() && !recorded.ok()) st = recorded.WithContext("recording the run");
  out.status = st;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  if (st.ok()) {
    auto states = ctx.registry.WatermarkStates();
    if (states.ok()) {
      auto it = states->find(view.name);
      if (it != states->end() && it->second.layout == tag)
        out.watermark_after = it->second.watermark;
    }
  }
  if (ctx.options.metrics != nullptr) {
    RecordRunMetrics(*ctx.options.metrics, view.name, outcome.status, outcome.rows_read,
                     outcome.entities_written, outcome.entities_skipped, out.seconds);
  }
  return out;
}

Result<MaterializeReport> RunLocked(const RepoConfig& config, const MaterializeRequest& request,
                                    const MaterializeOptions& options, OnlineStore* store,
                                    const std::atomic<bool>* cancelled,
                                    const std::string& lock_token) {
  const Timestamp now = options.clock->Now();
  if (request.end > now) {
    return Status::InvalidArgument(fmt::format(
        "END {} is in the future (now is {}): it would become the watermark, and incremental runs "
        "would never read rows that arrive later with earlier times; use a time at or before now",
        FormatTimestamp(request.end), FormatTimestamp(now)));
  }
  if (request.kind == MaterializeRequest::Kind::kInterval && request.start > request.end) {
    return Status::InvalidArgument(fmt::format(
        "START {} is after END {}", FormatTimestamp(request.start), FormatTimestamp(request.end)));
  }
  GRANARY_ASSIGN_OR_RAISE(auto registry, OpenRegistry(config, OpenMode::kOpenExisting));
  GRANARY_ASSIGN_OR_RAISE(RegistryVersion latest, LatestApplied(*registry));
  const Definitions& defs = latest.definitions;
  GRANARY_ASSIGN_OR_RAISE(auto views, SelectViews(defs, request.views));
  GRANARY_ASSIGN_OR_RAISE(ViewLayouts layouts, MakeViewLayouts(defs, config.online_store.key_ttl));
  std::unique_ptr<OnlineStore> owned;
  if (store == nullptr) {
    auto opened = OpenOnlineStore(config, options.store_options);
    if (!opened.ok()) {
      Status st = opened.status();
      if (st.code() == StatusCode::kUnavailable && config.online_store.type == "rocksdb") {
        return st.WithContext(
            "the embedded online store is open in another process (e.g. granary serve); "
            "materialize through that server (POST /materialize-incremental) or stop it first");
      }
      return st;
    }
    owned = std::move(*opened);
    store = owned.get();
  }
  std::unique_ptr<OfflineEngine> owned_engine;
  OfflineEngine* engine = options.engine;
  if (engine == nullptr) {
    GRANARY_ASSIGN_OR_RAISE(owned_engine, OpenOfflineEngine(config, options.offline));
    engine = owned_engine.get();
  }
  GRANARY_ASSIGN_OR_RAISE(auto states, registry->WatermarkStates());
  // Every incremental run first checks that the store still holds what the watermarks promise;
  // a view whose data is lost is reloaded over its ttl window. Markers that cannot be read leave
  // the views as they are: the writes that follow meet the same failure and say so.
  std::map<std::string, std::string> lost;
  if (request.kind == MaterializeRequest::Kind::kIncremental) {
    std::vector<std::string> names, tags;
    bool promised = false;
    for (const FeatureView* view : views) {
      names.push_back(view->name);
      tags.push_back(LayoutTag(*layouts.at(view->name), config.online_store));
      auto it = states.find(view->name);
      promised = promised || (it != states.end() && it->second.online_marker);
    }
    if (promised) {
      for (const ViewDataCheck& check :
           CheckViewMarkers(names, tags, states, store->ReadViewMarkers())) {
        if (check.state == ViewDataCheck::State::kLost) lost[check.view] = check.reason;
      }
    }
  }
  RunContext ctx{config, request, options, defs, *registry, *store, *engine, cancelled, lock_token};
  MaterializeReport report;
  for (const FeatureView* view : views) {
    if (IsCancelled(cancelled)) {
      if (report.status.ok()) report.status = Status::Cancelled("materialization cancelled");
      break;
    }
    std::optional<WatermarkState> state;
    if (auto it = states.find(view->name); it != states.end()) state = it->second;
    auto reload = lost.find(view->name);
    ViewMaterialization done = MaterializeOneView(ctx, *view, *layouts.at(view->name), state,
                                                  reload == lost.end() ? "" : reload->second);
    if (!done.status.ok() && (report.status.ok() || done.status.code() == StatusCode::kCancelled)) {
      report.status = done.status;
    }
    if (options.after_view) options.after_view(done);
    report.views.push_back(std::move(done));
    if (report.status.code() == StatusCode::kCancelled) break;
  }
  return report;
}

std::string Describe(const MaterializeRequest& request) {
  return request.kind == MaterializeRequest::Kind::kIncremental
             ? fmt::format("{} (materialize-incremental {})", request.trigger,
                           FormatTimestamp(request.end))
             : fmt::format("{} (materialize {} {})", request.trigger,
                           FormatTimestamp(request.start), FormatTimestamp(request.end));
}

// Records `error`, which stopped an attempt before any view started, as a failed run of each view
// it would have run, so that status, the metrics and the success rate count it. When those views
// cannot be known (no registry, no definitions, a bad --views), there is nothing to record it
// against and only the caller sees it, as for a bad request (InvalidArgument). `lock_token`: the
// lock held (empty when refused).
void RecordFailedAttempt(const RepoConfig& config, const MaterializeRequest& request,
                         const MaterializeOptions& options, const Status& error,
                         const std::string& lock_token) {
  // Stopped by its caller, or a request refused as written (a bad END or START, which the
  // caller sees and must fix): not an attempt that failed.
  if (error.code() == StatusCode::kCancelled || error.code() == StatusCode::kInvalidArgument) {
    return;
  }
  auto registry = OpenRegistry(config, OpenMode::kOpenExisting);
  if (!registry.ok()) return;
  auto latest = (*registry)->Latest();
  if (!latest.ok() || !*latest) return;
  auto views = SelectViews((*latest)->definitions, request.views);
  if (!views.ok()) return;
  auto states = (*registry)->WatermarkStates();
  const Timestamp now = options.clock->Now();
  for (const FeatureView* view : *views) {
    MaterializationRun run;
    run.view = view->name;
    run.interval_start =
        request.kind == MaterializeRequest::Kind::kInterval ? request.start : kUnboundedStart;
    if (request.kind == MaterializeRequest::Kind::kIncremental && states.ok()) {
      if (auto it = states->find(view->name); it != states->end()) {
        run.interval_start = it->second.watermark;
      }
    }
    run.interval_end = request.end;
    run.trigger = request.trigger;
    run.started_at = now;
    run.finished_at = now;
    run.status = RunStatus::kFailed;
    run.error = error.message();
    run.pid = getpid();
    run.host = ThisHost();
    run.lock_token = lock_token;
    // Best effort: the registry itself may be what failed.
    if (!(*registry)->RecordFailedRun(run).ok()) return;
    if (options.metrics != nullptr) {
      RecordRunMetrics(*options.metrics, view->name, RunStatus::kFailed, 0, 0, 0, 0);
    }
  }
}

// Takes the lock and runs; an attempt that fails before any view starts is recorded.
Result<MaterializeReport> LockAndRun(const RepoConfig& config, const MaterializeRequest& request,
                                     const MaterializeOptions& options, OnlineStore* store,
                                     const std::atomic<bool>* cancelled) {
  auto lock = RepositoryLock::Acquire(config.Registry(), Describe(request), options.clock->Now());
  if (!lock.ok()) {
    RecordFailedAttempt(config, request, options, lock.status(), "");
    return lock.status();
  }
  auto report = RunLocked(config, request, options, store, cancelled, (*lock)->token());
  if (!report.ok()) {
    RecordFailedAttempt(config, request, options, report.status(), (*lock)->token());
  }
  return report;
}

}  // namespace

OfflineEngineOptions DefaultMaterializeEngineOptions() {
  OfflineEngineOptions options;
  options.embedded.memory_budget_bytes = int64_t{1} << 30;
  return options;
}

void SetMemoryBudget(MaterializeOptions* options, int64_t bytes,
                     const std::filesystem::path& spill_dir) {
  options->offline.embedded.memory_budget_bytes = bytes;
  options->offline.embedded.spill_dir = spill_dir;
  options->batch_memory_bytes = bytes / 4;
  options->store_options.memory_budget_bytes = bytes;
}

Result<MaterializeReport> Materialize(const RepoConfig& config, const MaterializeRequest& request,
                                      const MaterializeOptions& options, OnlineStore* store,
                                      const std::atomic<bool>* cancelled) {
  return LockAndRun(config, request, options, store, cancelled);
}

Result<std::unique_ptr<MaterializationJob>> MaterializationJob::Start(RepoConfig config,
                                                                      MaterializeRequest request,
                                                                      MaterializeOptions options,
                                                                      OnlineStore* store,
                                                                      OnDone on_done) {
  auto acquired =
      RepositoryLock::Acquire(config.Registry(), Describe(request), options.clock->Now());
  if (!acquired.ok()) {
    RecordFailedAttempt(config, request, options, acquired.status(), "");
    return acquired.status();
  }
  std::unique_ptr<RepositoryLock> lock = std::move(*acquired);
  std::unique_ptr<MaterializationJob> job(new MaterializationJob());
  MaterializationJob* self = job.get();
  job->thread_ = std::thread([self, lock = std::move(lock), config = std::move(config),
                              request = std::move(request), options = std::move(options), store,
                              on_done = std::move(on_done)]() mutable {
    const std::string& token = lock->token();
    self->result_.emplace(RunLocked(config, request, options, store, &self->cancelled_, token));
    if (!self->result_->ok()) {
      RecordFailedAttempt(config, request, options, self->result_->status(), token);
    }
    lock.reset();  // before done_: a caller that sees done may start the next run at once
    self->done_.store(true);
    if (on_done) on_done(*self->result_);
  });
  return job;
}

MaterializationJob::~MaterializationJob() {
  Cancel();
  Wait();
}

const Result<MaterializeReport>& MaterializationJob::Wait() {
  MutexLock lock(&join_mu_);
  if (thread_.joinable()) thread_.join();
  return *result_;
}

}  // namespace granary
