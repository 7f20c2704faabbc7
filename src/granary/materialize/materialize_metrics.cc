#include "granary/materialize/materialize_metrics.h"

#include <limits>

#include "granary/materialize/interval.h"
#include "granary/materialize/online_check.h"
#include "granary/materialize/view_status.h"
#include "granary/online/view_layout.h"
#include "granary/registry/registry_factory.h"

namespace granary {
namespace {

double Seconds(Timestamp t) { return static_cast<double>(t.micros) / 1e6; }

std::vector<double> DurationBuckets() {
  return {0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 14400};
}

}  // namespace

void RecordRunMetrics(MetricsRegistry& metrics, const std::string& view, RunStatus status,
                      int64_t rows_read, int64_t entities_written, int64_t entities_skipped,
                      double seconds) {
  const MetricLabels labels = {{"view", view}};
  metrics
      .GetCounter("granary_materialize_runs_total", "Materialization runs finished, by result",
                  {{"view", view}, {"result", std::string(RunStatusName(status))}})
      .Increment();
  metrics
      .GetCounter("granary_materialize_rows_read_total", "Source rows read by materialization runs",
                  labels)
      .Increment(static_cast<double>(rows_read));
  metrics
      .GetCounter("granary_materialize_entities_written_total",
                  "Entities written to the online store by materialization", labels)
      .Increment(static_cast<double>(entities_written));
  metrics
      .GetCounter("granary_materialize_entities_skipped_total",
                  "Entities not written because the online store held a newer row", labels)
      .Increment(static_cast<double>(entities_skipped));
  metrics
      .GetHistogram("granary_materialize_run_duration_seconds",
                    "Wall time of a materialization run of one view", DurationBuckets(), labels)
      .Observe(seconds);
}

std::unique_ptr<MaterializationStateMetrics> MaterializationStateMetrics::Register(
    MetricsRegistry* metrics, RepoConfig config, const Clock* clock, OnlineStore* store) {
  std::unique_ptr<MaterializationStateMetrics> out(
      new MaterializationStateMetrics(metrics, std::move(config), clock, store));
  MaterializationStateMetrics* self = out.get();
  out->collector_id_ = metrics->AddCollector([self](MetricWriter& w) { self->Collect(w); });
  return out;
}

MaterializationStateMetrics::~MaterializationStateMetrics() {
  metrics_->RemoveCollector(collector_id_);
}

void MaterializationStateMetrics::Collect(MetricWriter& out) {
  MutexLock lock(&mu_);
  auto collect = [&]() -> Status {
    mu_.AssertHeld();  // runs here, under the lock above
    if (registry_ == nullptr) {
      GRANARY_ASSIGN_OR_RAISE(registry_, OpenRegistry(config_, OpenMode::kOpenExisting));
    }
    GRANARY_ASSIGN_OR_RAISE(auto latest, registry_->Latest());
    if (!latest) return Status::OK();
    GRANARY_ASSIGN_OR_RAISE(auto statuses, CollectOnlineViewStatus(*registry_, latest->definitions,
                                                                   config_, clock_->Now(), 1));
    for (const ViewStatus& s : statuses) {
      const MetricLabels labels = {{"view", s.view}};
      if (s.watermark) {
        out.Gauge("granary_materialize_watermark_timestamp_seconds",
                  "End of the newest interval materialized without a gap (Unix seconds)", labels,
                  Seconds(*s.watermark));
      }
      out.Gauge("granary_materialize_staleness_seconds",
                "Now minus the watermark; +Inf when never materialized under the current schema",
                labels,
                s.staleness ? static_cast<double>(s.staleness->micros) / 1e6
                            : std::numeric_limits<double>::infinity());
      if (s.last_success && s.last_success->finished_at) {
        out.Gauge("granary_materialize_last_success_timestamp_seconds",
                  "When the newest succeeded run of the view finished (Unix seconds)", labels,
                  Seconds(*s.last_success->finished_at));
      }
      if (s.last_finished) {
        out.Gauge("granary_materialize_last_run_succeeded",
                  "1 when the newest finished run of the view succeeded, else 0", labels,
                  s.last_finished->status == RunStatus::kSucceeded ? 1 : 0);
      }
      out.Gauge("granary_materialize_running", "1 while a run of the view is in progress", labels,
                s.running ? 1 : 0);
      out.Gauge("granary_materialize_consecutive_failures",
                "The newest finished runs of the view that failed in a row (attempts that failed "
                "before starting included)",
                labels, s.consecutive_failures);
    }
    if (store_ != nullptr) {
      GRANARY_ASSIGN_OR_RAISE(auto checks,
                              CheckOnlineData(*registry_, latest->definitions, config_, *store_));
      bool readable = true;
      for (const ViewDataCheck& c : checks) {
        if (c.state == ViewDataCheck::State::kNotChecked) {
          readable = readable && !c.markers_unreadable;
          continue;
        }
        out.Gauge("granary_online_data_lost",
                  "1 when the online store lost data the view's watermark promises (a shard "
                  "without its marker), else 0",
                  {{"view", c.view}}, c.state == ViewDataCheck::State::kLost ? 1 : 0);
      }
      out.Gauge("granary_online_markers_up",
                "1 when the online store's view markers could be read, else 0", {},
                readable ? 1 : 0);
    }
    return Status::OK();
  };
  Status st = collect();
  if (!st.ok()) registry_.reset();  // reopen next time (the file may have been replaced)
  out.Gauge("granary_materialize_state_up",
            "1 when the materialization state could be read from the registry, else 0", {},
            st.ok() ? 1 : 0);
}

}  // namespace granary
