// Metrics: counters, gauges and histograms with labels, rendered in the Prometheus text exposition
// format (version 0.0.4) for `GET /metrics` of the feature server and the scheduler.
//
// One MetricsRegistry is shared by everything in a process (materialization, serving), so one
// scrape shows it all. Look a series up once (GetCounter() and friends take a lock) and keep the
// returned reference: updating it is one relaxed atomic operation, safe from any thread, with no
// lock, so hot paths (a request) can count freely. Series live as long as their registry.
//
// Values that are cheaper to compute when scraped (staleness of a view, computed from its
// watermark) come from collectors: callbacks that run during Render().
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "granary/common/mutex.h"

namespace granary {

// Label name/value pairs, e.g. {{"view", "customer_risk"}, {"status", "success"}}.
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// A value that only goes up (requests served, rows written).
class Counter {
 public:
  void Increment(double by = 1) { value_.fetch_add(by, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// A value that goes up and down, or is set (last success time, in-flight requests).
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double by) { value_.fetch_add(by, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Counts observations into buckets with fixed upper bounds (le), plus their count and sum.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double v);

  const std::vector<double>& upper_bounds() const { return upper_bounds_; }
  // Non-cumulative count of bucket i (i == upper_bounds().size() is the +Inf bucket).
  uint64_t bucket_count(size_t i) const { return counts_[i].load(std::memory_order_relaxed); }
  uint64_t count() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> upper_bounds_;  // sorted, ascending
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0};
};

// Buckets for latencies in seconds, from 25 us to 10 s.
std::vector<double> LatencyBuckets();
// Buckets for sizes and counts: 1, 2, 5, 10, ... up to `max`.
std::vector<double> CountBuckets(double max);

// Writes samples for a collector during Render().
class MetricWriter {
 public:
  virtual ~MetricWriter() = default;
  // A gauge sample; `help` is written once per name.
  virtual void Gauge(std::string_view name, std::string_view help, const MetricLabels& labels,
                     double value) = 0;
};

class MetricsRegistry {
 public:
  using Collector = std::function<void(MetricWriter&)>;

  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // The process-wide registry.
  static MetricsRegistry& Default();

  // The series of metric `name` with `labels`, created on first use. A name keeps the type and
  // help of its first registration; asking for it as another type is a bug (it aborts with a
  // message), since it would render an invalid exposition.
  Counter& GetCounter(std::string_view name, std::string_view help,
                      const MetricLabels& labels = {});
  Gauge& GetGauge(std::string_view name, std::string_view help, const MetricLabels& labels = {});
  // `upper_bounds` applies when the series is created.
  Histogram& GetHistogram(std::string_view name, std::string_view help,
                          const std::vector<double>& upper_bounds, const MetricLabels& labels = {});

  // Adds a callback run on every Render(); returns an id for RemoveCollector().
  int AddCollector(Collector collector);
  void RemoveCollector(int id);

  // The Prometheus text exposition (Content-Type: text/plain; version=0.0.4), families sorted by
  // name, series by labels.
  std::string Render() const;

  // Copies of one family's series now, for readers in the process (the serving metrics history);
  // empty when `name` is not a family of that type. Collectors are not run.
  struct HistogramSeries {
    MetricLabels labels;
    std::vector<double> upper_bounds;
    std::vector<uint64_t> counts;  // non-cumulative, the last is the +Inf bucket
    double sum = 0;
  };
  std::vector<std::pair<MetricLabels, double>> CounterSeries(std::string_view name) const;
  std::vector<HistogramSeries> HistogramSeriesOf(std::string_view name) const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family {
    Type type;
    std::string help;
    std::map<MetricLabels, std::unique_ptr<Counter>> counters;
    std::map<MetricLabels, std::unique_ptr<Gauge>> gauges;
    std::map<MetricLabels, std::unique_ptr<Histogram>> histograms;
  };
  Family& FamilyFor(std::string_view name, std::string_view help, Type type) REQUIRES(mu_);

  mutable Mutex mu_;
  std::map<std::string, Family, std::less<>> families_ GUARDED_BY(mu_);
  std::map<int, Collector> collectors_ GUARDED_BY(mu_);
  int next_collector_id_ GUARDED_BY(mu_) = 1;
};

// Escapes a label value for the text format (backslash, double quote, newline).
std::string EscapeLabelValue(std::string_view value);

}  // namespace granary
