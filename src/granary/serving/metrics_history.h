// MetricsHistory: the feature server's own serving metrics over the last hours, kept in memory so
// that the console (and anyone with curl) sees request rate, latency and errors over time without
// a Prometheus server: GET /metrics/history (docs/CONSOLE.md, "Serving").
//
// Every `interval` a background thread reads the server's counters and histograms from its
// MetricsRegistry and stores what changed since the previous sample: requests answered (every
// path but the admin ones: /health, /metrics, /metrics/history, /registry), of which 4xx and 5xx,
// 503s shed by admission control, the p50/p99 of request latency (over the same paths, from the
// latency histograms' bucket deltas, interpolated inside a bucket as Prometheus's
// histogram_quantile does), the p50/p99 of the online store's read time, and the mean entities
// per get-online-features request. A ring keeps the newest `capacity` samples; older ones are
// dropped. Counters restart with the process, so the history does too.
//
// Thread-safe: the sampler thread writes, any thread reads. Destroying it stops the thread.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "granary/common/clock.h"
#include "granary/common/metrics.h"
#include "granary/common/mutex.h"

namespace granary {

struct MetricsSample {
  Timestamp at;                 // when taken (the interval's end)
  double interval_seconds = 0;  // since the previous sample (the server's start for the first)
  int64_t requests = 0;         // answered in the interval
  int64_t client_errors = 0;    // 4xx
  int64_t server_errors = 0;    // 5xx (503s included)
  int64_t shed = 0;             // 503s from admission control
  // Seconds; unset when no request (store read) finished in the interval.
  std::optional<double> latency_p50, latency_p99;
  std::optional<double> store_read_p50, store_read_p99;
  std::optional<double> entities_per_request;  // mean over get-online-features requests
};

// The q-quantile (0 < q < 1) of the observations counted in `counts` (non-cumulative, the last
// the +Inf bucket) over `upper_bounds`, linear inside its bucket; the +Inf bucket answers the
// highest finite bound. Unset when the counts are all zero.
std::optional<double> HistogramQuantile(const std::vector<double>& upper_bounds,
                                        const std::vector<uint64_t>& counts, double q);

struct MetricsHistoryOptions {
  MetricsRegistry* metrics = &MetricsRegistry::Default();
  const Clock* clock = &SystemClock::Default();
  std::chrono::milliseconds interval{10'000};
  size_t capacity = 2160;  // 6 hours of 10 s samples
  // The label of the store read histogram's series (ServingMetrics: {"store", kind}).
  std::string store_kind;
};

class MetricsHistory {
 public:
  // Takes a first reading (the baseline) and starts the sampler thread; an interval of 0 starts
  // no thread (tests call SampleNow()).
  static std::unique_ptr<MetricsHistory> Start(MetricsHistoryOptions options);
  ~MetricsHistory();
  MetricsHistory(const MetricsHistory&) = delete;
  MetricsHistory& operator=(const MetricsHistory&) = delete;

  // Takes a sample now (what the thread does every interval).
  void SampleNow();
  // The samples kept, oldest first.
  std::vector<MetricsSample> Samples() const;
  // {"interval_seconds": 10, "capacity": 2160, "samples": [{"at": "...", "interval_seconds",
  // "requests", "client_errors", "server_errors", "shed", "latency_p50_seconds", ...}]}; unset
  // values are null.
  std::string ToJson() const;

 private:
  struct Totals {
    double requests = 0, client_errors = 0, server_errors = 0, shed = 0;
    std::vector<double> latency_bounds;
    std::vector<uint64_t> latency_counts;
    std::vector<double> store_bounds;
    std::vector<uint64_t> store_counts;
    double entities_sum = 0;
    uint64_t entities_count = 0;
    Timestamp at;
  };
  explicit MetricsHistory(MetricsHistoryOptions options);
  Totals Read() const;
  void Loop();

  const MetricsHistoryOptions options_;
  mutable Mutex mu_;
  CondVar wake_;
  bool stopping_ GUARDED_BY(mu_) = false;
  Totals last_ GUARDED_BY(mu_);
  std::deque<MetricsSample> samples_ GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace granary
