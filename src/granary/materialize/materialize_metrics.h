// Prometheus metrics of materialization, in one MetricsRegistry shared with the feature server
// (docs/OPERATIONS.md, "Metrics").
//
// Counted by the runs of this process (RecordRunMetrics):
//   granary_materialize_runs_total{view,result}        runs finished; result succeeded | failed
//   granary_materialize_rows_read_total{view}          source rows read
//   granary_materialize_entities_written_total{view}
//   granary_materialize_entities_skipped_total{view}   not written: the online row was newer
//   granary_materialize_run_duration_seconds{view}     histogram
// Computed from the registry at each scrape (MaterializationStateMetrics), so any process that
// serves metrics shows the runs of every process, and a restart loses nothing:
//   granary_materialize_watermark_timestamp_seconds{view}
//   granary_materialize_staleness_seconds{view}        now - watermark; +Inf when the view was
//   never
//                                                      materialized (or its schema changed since)
//   granary_materialize_last_success_timestamp_seconds{view}
//   granary_materialize_last_run_succeeded{view}       1 or 0 (a run cut off by a crash is 0)
//   granary_materialize_running{view}                  1 while a run is in progress
//   granary_materialize_consecutive_failures{view}     newest finished runs failed in a row
//   granary_materialize_state_up                       0 when the registry could not be read
// With the online store given (a feature server's), also its view markers (online_check.h):
//   granary_online_data_lost{view}                     1 when the view's online data is lost
//                                                      (some shard lost its marker), else 0
//   granary_online_markers_up                          0 when the markers could not be read
#pragma once

#include <memory>
#include <string>

#include "granary/common/clock.h"
#include "granary/common/metrics.h"
#include "granary/common/mutex.h"
#include "granary/online/online_store.h"
#include "granary/registry/registry_store.h"
#include "granary/registry/repo_config.h"

namespace granary {

// Counts one finished run. Thread-safe.
void RecordRunMetrics(MetricsRegistry& metrics, const std::string& view, RunStatus status,
                      int64_t rows_read, int64_t entities_written, int64_t entities_skipped,
                      double seconds);

// A collector of the per-view state; removed from the registry when destroyed. Thread-safe.
class MaterializationStateMetrics {
 public:
  // `metrics`, `clock` and `store` (may be null: no online data metrics) must outlive the
  // returned object.
  static std::unique_ptr<MaterializationStateMetrics> Register(MetricsRegistry* metrics,
                                                               RepoConfig config,
                                                               const Clock* clock,
                                                               OnlineStore* store = nullptr);
  ~MaterializationStateMetrics();
  MaterializationStateMetrics(const MaterializationStateMetrics&) = delete;
  MaterializationStateMetrics& operator=(const MaterializationStateMetrics&) = delete;

 private:
  MaterializationStateMetrics(MetricsRegistry* metrics, RepoConfig config, const Clock* clock,
                              OnlineStore* store)
      : metrics_(metrics), config_(std::move(config)), clock_(clock), store_(store) {}
  void Collect(MetricWriter& out);

  MetricsRegistry* metrics_;
  RepoConfig config_;
  const Clock* clock_;
  OnlineStore* store_;
  int collector_id_ = 0;
  Mutex mu_;                                                 // one scrape at a time
  std::unique_ptr<RegistryStore> registry_ GUARDED_BY(mu_);  // opened on first use
};

}  // namespace granary
