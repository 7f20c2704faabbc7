#include "granary/serving/metrics_history.h"

#include <algorithm>
#include <cmath>

#include "granary/common/json.h"

namespace granary {
namespace {

// Paths whose requests are the server's own housekeeping, not serving.
bool IsAdminPath(std::string_view path) {
  return path == "/health" || path == "/metrics" || path == "/metrics/history" ||
         path == "/registry";
}

std::string_view LabelOf(const MetricLabels& labels, std::string_view name) {
  for (const auto& [k, v] : labels) {
    if (k == name) return v;
  }
  return {};
}

// Adds `counts` into `into` (sized on first use); series with other bounds are skipped.
void AddCounts(std::vector<double>* bounds, std::vector<uint64_t>* into,
               const MetricsRegistry::HistogramSeries& series) {
  if (into->empty()) {
    *bounds = series.upper_bounds;
    into->assign(series.counts.size(), 0);
  }
  if (series.upper_bounds != *bounds) return;
  for (size_t i = 0; i < series.counts.size(); ++i) (*into)[i] += series.counts[i];
}

std::vector<uint64_t> Delta(const std::vector<uint64_t>& now, const std::vector<uint64_t>& before) {
  std::vector<uint64_t> out(now.size(), 0);
  for (size_t i = 0; i < now.size(); ++i) {
    const uint64_t b = i < before.size() ? before[i] : 0;
    out[i] = now[i] >= b ? now[i] - b : 0;
  }
  return out;
}

int64_t CounterDelta(double now, double before) {
  return now >= before ? static_cast<int64_t>(std::llround(now - before)) : 0;
}

void Optional(JsonWriter& w, std::string_view key, const std::optional<double>& v) {
  w.Key(key);
  if (v) {
    w.Double(*v);
  } else {
    w.Null();
  }
}

}  // namespace

std::optional<double> HistogramQuantile(const std::vector<double>& upper_bounds,
                                        const std::vector<uint64_t>& counts, double q) {
  uint64_t total = 0;
  for (uint64_t c : counts) total += c;
  if (total == 0 || upper_bounds.empty()) return std::nullopt;
  const double rank = q * static_cast<double>(total);
  uint64_t below = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] == 0) continue;
    if (static_cast<double>(below + counts[i]) >= rank) {
      if (i >= upper_bounds.size()) return upper_bounds.back();  // +Inf: the last finite bound
      const double low = i == 0 ? 0.0 : upper_bounds[i - 1];
      const double high = upper_bounds[i];
      const double within = (rank - static_cast<double>(below)) / static_cast<double>(counts[i]);
      return low + (high - low) * std::clamp(within, 0.0, 1.0);
    }
    below += counts[i];
  }
  return upper_bounds.back();
}

MetricsHistory::MetricsHistory(MetricsHistoryOptions options) : options_(std::move(options)) {}

std::unique_ptr<MetricsHistory> MetricsHistory::Start(MetricsHistoryOptions options) {
  std::unique_ptr<MetricsHistory> history(new MetricsHistory(std::move(options)));
  {
    MutexLock lock(&history->mu_);  // no other thread yet: for the analysis
    history->last_ = history->Read();
  }
  if (history->options_.interval.count() > 0) {
    history->thread_ = std::thread([raw = history.get()] { raw->Loop(); });
  }
  return history;
}

MetricsHistory::~MetricsHistory() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  wake_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

void MetricsHistory::Loop() {
  MutexLock lock(&mu_);
  while (!stopping_) {
    const auto deadline = std::chrono::steady_clock::now() + options_.interval;
    while (!stopping_ && wake_.WaitUntil(&mu_, deadline)) {
    }
    if (stopping_) break;
    lock.Unlock();
    SampleNow();
    lock.Lock();
  }
}

MetricsHistory::Totals MetricsHistory::Read() const {
  Totals t;
  t.at = options_.clock->Now();
  const MetricsRegistry& m = *options_.metrics;
  for (const auto& [labels, value] : m.CounterSeries("granary_http_requests_total")) {
    if (IsAdminPath(LabelOf(labels, "path"))) continue;
    t.requests += value;
    const std::string_view code = LabelOf(labels, "code");
    if (code.starts_with('4')) t.client_errors += value;
    if (code.starts_with('5')) t.server_errors += value;
  }
  for (const auto& [labels, value] : m.CounterSeries("granary_http_shed_requests_total")) {
    t.shed += value;
  }
  for (const auto& series : m.HistogramSeriesOf("granary_http_request_duration_seconds")) {
    if (IsAdminPath(LabelOf(series.labels, "path"))) continue;
    AddCounts(&t.latency_bounds, &t.latency_counts, series);
  }
  for (const auto& series : m.HistogramSeriesOf("granary_online_store_read_seconds")) {
    if (!options_.store_kind.empty() && LabelOf(series.labels, "store") != options_.store_kind) {
      continue;
    }
    AddCounts(&t.store_bounds, &t.store_counts, series);
  }
  for (const auto& series : m.HistogramSeriesOf("granary_serving_entities_per_request")) {
    t.entities_sum += series.sum;
    for (uint64_t c : series.counts) t.entities_count += c;
  }
  return t;
}

void MetricsHistory::SampleNow() {
  Totals now = Read();
  MutexLock lock(&mu_);
  MetricsSample s;
  s.at = now.at;
  s.interval_seconds = static_cast<double>((now.at - last_.at).micros) / 1e6;
  s.requests = CounterDelta(now.requests, last_.requests);
  s.client_errors = CounterDelta(now.client_errors, last_.client_errors);
  s.server_errors = CounterDelta(now.server_errors, last_.server_errors);
  s.shed = CounterDelta(now.shed, last_.shed);
  if (!now.latency_counts.empty()) {
    const auto delta = Delta(now.latency_counts, last_.latency_counts);
    s.latency_p50 = HistogramQuantile(now.latency_bounds, delta, 0.5);
    s.latency_p99 = HistogramQuantile(now.latency_bounds, delta, 0.99);
  }
  if (!now.store_counts.empty()) {
    const auto delta = Delta(now.store_counts, last_.store_counts);
    s.store_read_p50 = HistogramQuantile(now.store_bounds, delta, 0.5);
    s.store_read_p99 = HistogramQuantile(now.store_bounds, delta, 0.99);
  }
  if (now.entities_count > last_.entities_count) {
    s.entities_per_request = (now.entities_sum - last_.entities_sum) /
                             static_cast<double>(now.entities_count - last_.entities_count);
  }
  last_ = std::move(now);
  samples_.push_back(s);
  while (samples_.size() > std::max<size_t>(options_.capacity, 1)) samples_.pop_front();
}

std::vector<MetricsSample> MetricsHistory::Samples() const {
  MutexLock lock(&mu_);
  return {samples_.begin(), samples_.end()};
}

std::string MetricsHistory::ToJson() const {
  const std::vector<MetricsSample> samples = Samples();
  JsonWriter w;
  w.StartObject();
  w.Key("interval_seconds");
  w.Double(static_cast<double>(options_.interval.count()) / 1000.0);
  w.Key("capacity");
  w.Uint64(options_.capacity);
  w.Key("samples");
  w.StartArray();
  for (const MetricsSample& s : samples) {
    w.StartObject();
    w.Key("at");
    w.String(FormatTimestamp(s.at));
    w.Key("interval_seconds");
    w.Double(s.interval_seconds);
    w.Key("requests");
    w.Int64(s.requests);
    w.Key("client_errors");
    w.Int64(s.client_errors);
    w.Key("server_errors");
    w.Int64(s.server_errors);
    w.Key("shed");
    w.Int64(s.shed);
    Optional(w, "latency_p50_seconds", s.latency_p50);
    Optional(w, "latency_p99_seconds", s.latency_p99);
    Optional(w, "store_read_p50_seconds", s.store_read_p50);
    Optional(w, "store_read_p99_seconds", s.store_read_p99);
    Optional(w, "entities_per_request", s.entities_per_request);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return w.Release();
}

}  // namespace granary
