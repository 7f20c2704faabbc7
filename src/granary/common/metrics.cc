#include "granary/common/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace granary {
namespace {

std::string FormatNumber(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

// `{a="x",b="y"}` with an optional extra label last (le for buckets); "" when there are none.
std::string LabelText(const MetricLabels& labels, std::string_view extra_name = {},
                      std::string_view extra_value = {}) {
  if (labels.empty() && extra_name.empty()) return "";
  std::string out = "{";
  bool first = true;
  auto add = [&](std::string_view name, std::string_view value) {
    if (!first) out += ',';
    first = false;
    out.append(name);
    out += "=\"";
    out += EscapeLabelValue(value);
    out += '"';
  };
  for (const auto& [name, value] : labels) add(name, value);
  if (!extra_name.empty()) add(extra_name, extra_value);
  out += '}';
  return out;
}

void Header(std::string* out, std::string_view name, std::string_view help, std::string_view type) {
  std::string escaped;
  for (char c : help) {
    if (c == '\\') {
      escaped += "\\\\";
    } else if (c == '\n') {
      escaped += "\\n";
    } else {
      escaped += c;
    }
  }
  fmt::format_to(std::back_inserter(*out), "# HELP {} {}\n# TYPE {} {}\n", name, escaped, name,
                 type);
}

// Gathers collector samples by name so each name gets one HELP/TYPE block.
class GroupingWriter final : public MetricWriter {
 public:
  void Gauge(std::string_view name, std::string_view help, const MetricLabels& labels,
             double value) override {
    auto& group = groups_[std::string(name)];
    if (group.help.empty()) group.help = help;
    group.samples.emplace_back(labels, value);
  }
  void RenderTo(std::string* out) const {
    for (const auto& [name, group] : groups_) {
      Header(out, name, group.help, "gauge");
      for (const auto& [labels, value] : group.samples) {
        fmt::format_to(std::back_inserter(*out), "{}{} {}\n", name, LabelText(labels),
                       FormatNumber(value));
      }
    }
  }

 private:
  struct Group {
    std::string help;
    std::vector<std::pair<MetricLabels, double>> samples;
  };
  std::map<std::string, Group> groups_;
};

}  // namespace

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

Histogram::Histogram(std::vector<double> upper_bounds) : upper_bounds_(std::move(upper_bounds)) {
  std::sort(upper_bounds_.begin(), upper_bounds_.end());
  upper_bounds_.erase(std::unique(upper_bounds_.begin(), upper_bounds_.end()), upper_bounds_.end());
  counts_ = std::make_unique<std::atomic<uint64_t>[]>(upper_bounds_.size() + 1);
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::Observe(double v) {
  // The first bucket whose upper bound is >= v (Prometheus buckets are "le").
  const size_t i =
      std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), v) - upper_bounds_.begin();
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

uint64_t Histogram::count() const {
  uint64_t n = 0;
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) n += bucket_count(i);
  return n;
}

std::vector<double> LatencyBuckets() {
  return {25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3,
          25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1,    2.5,    5,    10};
}

std::vector<double> CountBuckets(double max) {
  std::vector<double> out;
  for (double decade = 1; decade <= max; decade *= 10) {
    for (double step : {1.0, 2.0, 5.0}) {
      if (decade * step <= max) out.push_back(decade * step);
    }
  }
  return out;
}

MetricsRegistry& MetricsRegistry::Default() {
  static MetricsRegistry* registry = new MetricsRegistry();  // never destroyed: used at exit
  return *registry;
}

MetricsRegistry::Family& MetricsRegistry::FamilyFor(std::string_view name, std::string_view help,
                                                    Type type) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), Family{type, std::string(help), {}, {}, {}}).first;
  } else if (it->second.type != type) {
    std::fprintf(stderr, "granary: metric '%.*s' registered twice with different types\n",
                 static_cast<int>(name.size()), name.data());
    std::abort();
  }
  return it->second;
}

Counter& MetricsRegistry::GetCounter(std::string_view name, std::string_view help,
                                     const MetricLabels& labels) {
  MutexLock lock(&mu_);
  auto& slot = FamilyFor(name, help, Type::kCounter).counters[labels];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Gauge& MetricsRegistry::GetGauge(std::string_view name, std::string_view help,
                                 const MetricLabels& labels) {
  MutexLock lock(&mu_);
  auto& slot = FamilyFor(name, help, Type::kGauge).gauges[labels];
  if (!slot) slot = std::make_unique<Gauge>();
  return *slot;
}

Histogram& MetricsRegistry::GetHistogram(std::string_view name, std::string_view help,
                                         const std::vector<double>& upper_bounds,
                                         const MetricLabels& labels) {
  MutexLock lock(&mu_);
  auto& slot = FamilyFor(name, help, Type::kHistogram).histograms[labels];
  if (!slot) slot = std::make_unique<Histogram>(upper_bounds);
  return *slot;
}

int MetricsRegistry::AddCollector(Collector collector) {
  MutexLock lock(&mu_);
  const int id = next_collector_id_++;
  collectors_.emplace(id, std::move(collector));
  return id;
}

void MetricsRegistry::RemoveCollector(int id) {
  MutexLock lock(&mu_);
  collectors_.erase(id);
}

std::string MetricsRegistry::Render() const {
  std::string out;
  std::vector<Collector> collectors;
  {
    MutexLock lock(&mu_);
    for (const auto& [name, family] : families_) {
      switch (family.type) {
        case Type::kCounter:
          Header(&out, name, family.help, "counter");
          for (const auto& [labels, c] : family.counters) {
            fmt::format_to(std::back_inserter(out), "{}{} {}\n", name, LabelText(labels),
                           FormatNumber(c->value()));
          }
          break;
        case Type::kGauge:
          Header(&out, name, family.help, "gauge");
          for (const auto& [labels, g] : family.gauges) {
            fmt::format_to(std::back_inserter(out), "{}{} {}\n", name, LabelText(labels),
                           FormatNumber(g->value()));
          }
          break;
        case Type::kHistogram:
          Header(&out, name, family.help, "histogram");
          for (const auto& [labels, h] : family.histograms) {
            uint64_t cumulative = 0;
            const auto& bounds = h->upper_bounds();
            for (size_t i = 0; i <= bounds.size(); ++i) {
              cumulative += h->bucket_count(i);
              const std::string le = i < bounds.size() ? FormatNumber(bounds[i]) : "+Inf";
              fmt::format_to(std::back_inserter(out), "{}_bucket{} {}\n", name,
                             LabelText(labels, "le", le), cumulative);
            }
            fmt::format_to(std::back_inserter(out), "{}_sum{} {}\n{}_count{} {}\n", name,
                           LabelText(labels), FormatNumber(h->sum()), name, LabelText(labels),
                           cumulative);
          }
          break;
      }
    }
    for (const auto& [id, c] : collectors_) collectors.push_back(c);
  }
  // Collectors run without the lock: they may read other state (a registry database) and may
  // even look up series of this registry.
  GroupingWriter writer;
  for (const auto& collect : collectors) collect(writer);
  writer.RenderTo(&out);
  return out;
}

std::vector<std::pair<MetricLabels, double>> MetricsRegistry::CounterSeries(
    std::string_view name) const {
  std::vector<std::pair<MetricLabels, double>> out;
  MutexLock lock(&mu_);
  auto it = families_.find(name);
  if (it == families_.end() || it->second.type != Type::kCounter) return out;
  for (const auto& [labels, counter] : it->second.counters) {
    out.emplace_back(labels, counter->value());
  }
  return out;
}

std::vector<MetricsRegistry::HistogramSeries> MetricsRegistry::HistogramSeriesOf(
    std::string_view name) const {
  std::vector<HistogramSeries> out;
  MutexLock lock(&mu_);
  auto it = families_.find(name);
  if (it == families_.end() || it->second.type != Type::kHistogram) return out;
  for (const auto& [labels, histogram] : it->second.histograms) {
    HistogramSeries series;
    series.labels = labels;
    series.upper_bounds = histogram->upper_bounds();
    for (size_t i = 0; i <= series.upper_bounds.size(); ++i) {
      series.counts.push_back(histogram->bucket_count(i));
    }
    series.sum = histogram->sum();
    out.push_back(std::move(series));
  }
  return out;
}

}  // namespace granary
