#include "granary/offline/feature_stats.h"

#include <arrow/api.h>
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <unordered_map>

#include "granary/common/hash.h"
#include "granary/common/strings.h"
#include "granary/offline/source_scan.h"

namespace granary {
namespace {

constexpr int kSketchBits = 12;
constexpr size_t kMaxTrackedValues = 100'000;

// What a feature is summarized as.
enum class Kind { kNumber, kTimestamp, kBool, kText, kList };

Kind KindOf(ValueType type) {
  if (type.is_list) return Kind::kList;
  switch (type.scalar) {
    case ScalarType::kBool:
      return Kind::kBool;
    case ScalarType::kString:
    case ScalarType::kBytes:
      return Kind::kText;
    case ScalarType::kTimestamp:
      return Kind::kTimestamp;
    default:
      return Kind::kNumber;
  }
}

// The first pass's running state of one feature.
struct Accumulator {
  FeatureStats stats;
  Kind kind = Kind::kNumber;
  int column = -1;  // in the scan's batches
  double sum = 0;
  int64_t summed = 0;
  bool have_text = false;
  DistinctSketch sketch;
  std::unordered_map<std::string, int64_t> counts;  // bool and text values

  void Number(double v) {
    if (std::isnan(v)) {
      ++stats.nan;
      return;
    }
    if (!stats.min || v < *stats.min) stats.min = v;
    if (!stats.max || v > *stats.max) stats.max = v;
    sum += v;
    ++summed;
  }
  void Count(std::string value) {
    auto it = counts.find(value);
    if (it != counts.end()) {
      ++it->second;
    } else if (counts.size() < kMaxTrackedValues) {
      counts.emplace(std::move(value), 1);
    } else {
      stats.top_values_exact = false;
    }
  }
  void Text(std::string_view v, bool bytes) {
    sketch.AddHash(HashForSketch(v.data(), v.size()));
    std::string shown = bytes ? PrintableBytes(v) : std::string(v);
    if (!have_text || shown < stats.min_text) stats.min_text = shown;
    if (!have_text || shown > stats.max_text) stats.max_text = shown;
    have_text = true;
    Count(std::move(shown));
  }
};

template <typename T>
void HashValue(DistinctSketch& sketch, T v) {
  sketch.AddHash(HashForSketch(&v, sizeof(v)));
}

void AccumulateColumn(Accumulator& acc, const arrow::Array& array) {
  const int64_t n = array.length();
  acc.stats.count += n;
  acc.stats.nulls += array.null_count();
  switch (array.type_id()) {
    case arrow::Type::BOOL: {
      const auto& a = static_cast<const arrow::BooleanArray&>(array);
      for (int64_t i = 0; i < n; ++i) {
        if (a.IsNull(i)) continue;
        const bool v = a.Value(i);
        acc.Number(v ? 1.0 : 0.0);
        HashValue(acc.sketch, static_cast<uint8_t>(v));
        acc.Count(v ? "true" : "false");
      }
      break;
    }
    case arrow::Type::INT32:
    case arrow::Type::INT64:
    case arrow::Type::FLOAT:
    case arrow::Type::DOUBLE:
    case arrow::Type::TIMESTAMP: {
      for (int64_t i = 0; i < n; ++i) {
        if (array.IsNull(i)) continue;
        double v = 0;
        switch (array.type_id()) {
          case arrow::Type::INT32: {
            int32_t x = static_cast<const arrow::Int32Array&>(array).Value(i);
            HashValue(acc.sketch, static_cast<int64_t>(x));
            v = x;
            break;
          }
          case arrow::Type::INT64: {
            int64_t x = static_cast<const arrow::Int64Array&>(array).Value(i);
            HashValue(acc.sketch, x);
            v = static_cast<double>(x);
            break;
          }
          case arrow::Type::TIMESTAMP: {
            int64_t x = static_cast<const arrow::TimestampArray&>(array).Value(i);
            HashValue(acc.sketch, x);
            v = static_cast<double>(x);
            break;
          }
          case arrow::Type::FLOAT: {
            float x = static_cast<const arrow::FloatArray&>(array).Value(i);
            if (!std::isnan(x)) HashValue(acc.sketch, static_cast<double>(x));
            v = x;
            break;
          }
          default: {
            double x = static_cast<const arrow::DoubleArray&>(array).Value(i);
            if (!std::isnan(x)) HashValue(acc.sketch, x == 0.0 ? 0.0 : x);  // -0 is 0
            v = x;
            break;
          }
        }
        acc.Number(v);
      }
      break;
    }
    case arrow::Type::STRING:
    case arrow::Type::BINARY: {
      const auto& a = static_cast<const arrow::BinaryArray&>(array);
      const bool bytes = array.type_id() == arrow::Type::BINARY;
      for (int64_t i = 0; i < n; ++i) {
        if (!a.IsNull(i)) acc.Text(a.GetView(i), bytes);
      }
      break;
    }
    case arrow::Type::LIST: {
      const auto& a = static_cast<const arrow::ListArray&>(array);
      for (int64_t i = 0; i < n; ++i) {
        if (!a.IsNull(i)) {
          acc.sum += a.value_length(i);
          ++acc.summed;
        }
      }
      break;
    }
    default:
      break;
  }
}

void HistogramColumn(FeatureStats& stats, const arrow::Array& array) {
  const int bins = static_cast<int>(stats.histogram.size());
  const double min = *stats.min, max = *stats.max;
  for (int64_t i = 0; i < array.length(); ++i) {
    if (array.IsNull(i)) continue;
    double v = 0;
    switch (array.type_id()) {
      case arrow::Type::INT32:
        v = static_cast<const arrow::Int32Array&>(array).Value(i);
        break;
      case arrow::Type::INT64:
        v = static_cast<double>(static_cast<const arrow::Int64Array&>(array).Value(i));
        break;
      case arrow::Type::TIMESTAMP:
        v = static_cast<double>(static_cast<const arrow::TimestampArray&>(array).Value(i));
        break;
      case arrow::Type::FLOAT:
        v = static_cast<const arrow::FloatArray&>(array).Value(i);
        break;
      case arrow::Type::DOUBLE:
        v = static_cast<const arrow::DoubleArray&>(array).Value(i);
        break;
      default:
        return;
    }
    if (std::isnan(v)) continue;
    ++stats.histogram[HistogramBinOf(v, min, max, bins)].count;
  }
}

// The text of row `i` of a join key column (int32, int64, string: what join keys are).
std::string KeyText(const arrow::Array& array, int64_t i) {
  if (array.IsNull(i)) return "";
  switch (array.type_id()) {
    case arrow::Type::INT32:
      return std::to_string(static_cast<const arrow::Int32Array&>(array).Value(i));
    case arrow::Type::INT64:
      return std::to_string(static_cast<const arrow::Int64Array&>(array).Value(i));
    case arrow::Type::STRING:
    case arrow::Type::BINARY:
      return std::string(static_cast<const arrow::BinaryArray&>(array).GetView(i));
    default: {
      auto scalar = array.GetScalar(i);
      return scalar.ok() ? (*scalar)->ToString() : "";
    }
  }
}

// The `limit` distinct entities with the newest event times (a small array: limit <= 100).
class NewestEntities {
 public:
  explicit NewestEntities(size_t limit) : limit_(limit) {}

  void Offer(const std::vector<const arrow::Array*>& keys, int64_t row, int64_t micros) {
    if (limit_ == 0) return;
    if (entries_.size() == limit_ && micros <= entries_.back().micros) return;
    std::vector<std::string> key;
    key.reserve(keys.size());
    for (const arrow::Array* k : keys) key.push_back(KeyText(*k, row));
    auto same = std::find_if(entries_.begin(), entries_.end(),
                             [&](const Entry& e) { return e.key == key; });
    if (same != entries_.end()) {
      if (micros <= same->micros) return;
      entries_.erase(same);
    }
    // Newest first; a later row with an equal time goes after the earlier ones.
    auto at = std::find_if(entries_.begin(), entries_.end(),
                           [&](const Entry& e) { return e.micros < micros; });
    entries_.insert(at, Entry{micros, std::move(key)});
    if (entries_.size() > limit_) entries_.pop_back();
  }

  std::vector<std::vector<std::string>> Keys() const {
    std::vector<std::vector<std::string>> out;
    for (const Entry& e : entries_) out.push_back(e.key);
    return out;
  }

 private:
  struct Entry {
    int64_t micros;
    std::vector<std::string> key;
  };
  size_t limit_;
  std::vector<Entry> entries_;
};

}  // namespace

DistinctSketch::DistinctSketch() : registers_(size_t{1} << kSketchBits, 0) {}

void DistinctSketch::AddHash(uint64_t hash) {
  const size_t index = hash >> (64 - kSketchBits);
  const uint64_t rest = hash << kSketchBits;
  // The position of the first 1 bit in the remaining 52 bits (52 + 1 when none).
  const uint8_t rank = rest == 0 ? static_cast<uint8_t>(64 - kSketchBits + 1)
                                 : static_cast<uint8_t>(std::countl_zero(rest) + 1);
  if (rank > registers_[index]) registers_[index] = rank;
}

int64_t DistinctSketch::Estimate() const {
  const double m = static_cast<double>(registers_.size());
  double sum = 0;
  int zeros = 0;
  for (uint8_t r : registers_) {
    sum += std::ldexp(1.0, -r);
    if (r == 0) ++zeros;
  }
  const double alpha = 0.7213 / (1 + 1.079 / m);
  double estimate = alpha * m * m / sum;
  // Small cardinalities: linear counting over the empty registers is far more precise.
  if (estimate <= 2.5 * m && zeros > 0) estimate = m * std::log(m / zeros);
  return static_cast<int64_t>(std::llround(estimate));
}

Status CheckFeatureStatsOptions(const FeatureView& view, const FeatureStatsOptions& o) {
  if (o.histogram_bins < 1 || o.histogram_bins > 1000) {
    return Status::InvalidArgument(
        fmt::format("histogram bins must be 1 to 1000, not {}", o.histogram_bins));
  }
  if (o.top_values < 0 || o.top_values > 1000) {
    return Status::InvalidArgument(
        fmt::format("top values must be 0 to 1000, not {}", o.top_values));
  }
  if (o.sample_entities < 0 || o.sample_entities > 100) {
    return Status::InvalidArgument(
        fmt::format("sample entities must be 0 to 100, not {}", o.sample_entities));
  }
  if (o.start && o.end && *o.start > *o.end) {
    return Status::InvalidArgument(fmt::format("the start {} is after the end {}",
                                               FormatTimestamp(*o.start), FormatTimestamp(*o.end)));
  }
  std::vector<std::string> names;
  for (const Field& f : view.schema) names.push_back(f.name);
  for (const std::string& f : o.features) {
    if (view.FindFeature(f) == nullptr) {
      return Status::InvalidArgument(fmt::format("feature view '{}' has no feature '{}'{}",
                                                 view.name, f, DidYouMean(f, names)));
    }
  }
  return Status::OK();
}

std::vector<const Field*> RequestedStatsFeatures(const FeatureView& view,
                                                 const FeatureStatsOptions& options) {
  std::vector<const Field*> out;
  for (const Field& f : view.schema) {
    if (options.features.empty() || std::find(options.features.begin(), options.features.end(),
                                              f.name) != options.features.end()) {
      out.push_back(&f);
    }
  }
  return out;
}

std::vector<HistogramBin> HistogramBins(double min, double max, int bins) {
  if (min == max) bins = 1;
  const double width = (max - min) / bins;
  std::vector<HistogramBin> out;
  for (int b = 0; b < bins; ++b) {
    out.push_back({min + width * b, b + 1 == bins ? max : min + width * (b + 1), 0});
  }
  return out;
}

int HistogramBinOf(double v, double min, double max, int bins) {
  if (max <= min) return 0;
  int b = static_cast<int>(std::floor((v - min) / (max - min) * bins));
  return std::clamp(b, 0, bins - 1);
}

void SortTopValues(std::vector<ValueCount>& values, int top) {
  std::sort(values.begin(), values.end(), [](const ValueCount& x, const ValueCount& y) {
    return x.count != y.count ? x.count > y.count : x.value < y.value;
  });
  if (values.size() > static_cast<size_t>(top)) values.resize(static_cast<size_t>(top));
}

std::string PrintableBytes(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  return out;
}

Result<FeatureStatsReport> NewFeatureStatsReport(const FeatureView& view,
                                                 const FeatureStatsOptions& options) {
  GRANARY_RETURN_NOT_OK(CheckFeatureStatsOptions(view, options));
  FeatureStatsReport report;
  report.view = view.name;
  report.start = options.start;
  report.end = options.end;
  return report;
}

uint64_t HashForSketch(const void* data, size_t size) {
  uint64_t h = Fnv1a64(std::string_view(static_cast<const char*>(data), size));
  // splitmix64's finalizer: FNV-1a's high bits depend weakly on the last bytes.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

Result<FeatureStatsReport> ComputeFeatureStatsFromFiles(const std::filesystem::path& repo_root,
                                                        const Definitions& defs,
                                                        const FeatureView& view,
                                                        const FeatureStatsOptions& options) {
  const auto began = std::chrono::steady_clock::now();
  GRANARY_ASSIGN_OR_RAISE(FeatureStatsReport report, NewFeatureStatsReport(view, options));
  const std::string what = fmt::format("the statistics of feature view '{}'", view.name);

  std::vector<Accumulator> accs;
  for (const Field* f : RequestedStatsFeatures(view, options)) {
    Accumulator acc;
    acc.stats.name = f->name;
    acc.stats.type = f->type;
    acc.kind = KindOf(f->type);
    accs.push_back(std::move(acc));
  }

  GRANARY_ASSIGN_OR_RAISE(SourceSnapshot snapshot, SourceSnapshot::Read(repo_root, defs, view));
  report.delta_version = snapshot.delta_version;
  SourceScanOptions scan_options;
  scan_options.start = options.start;
  scan_options.end = options.end;
  for (const Accumulator& a : accs) scan_options.features.push_back(a.stats.name);
  scan_options.with_created_timestamp = false;
  scan_options.with_join_keys = options.sample_entities > 0;

  GRANARY_ASSIGN_OR_RAISE(auto scan, FeatureSourceScan::Open(snapshot, defs, view, scan_options));
  report.join_keys = scan->join_keys();
  const auto& schema = scan->schema();
  for (Accumulator& a : accs) a.column = schema->GetFieldIndex(a.stats.name);
  std::vector<int> key_columns;
  if (scan_options.with_join_keys) {
    for (const std::string& k : report.join_keys) key_columns.push_back(schema->GetFieldIndex(k));
  }
  const int time_column = scan->event_timestamp_index();
  NewestEntities newest(static_cast<size_t>(options.sample_entities));

  while (true) {
    GRANARY_RETURN_NOT_OK(CheckCancelled(options.cancel, what));
    GRANARY_ASSIGN_OR_RAISE(auto batch, scan->Next());
    if (batch == nullptr) break;
    report.rows += batch->num_rows();
    const auto& times = static_cast<const arrow::TimestampArray&>(*batch->column(time_column));
    std::vector<const arrow::Array*> keys;
    for (int k : key_columns) keys.push_back(batch->column(k).get());
    for (int64_t i = 0; i < batch->num_rows(); ++i) {
      const Timestamp t = Timestamp::FromMicros(times.Value(i));
      if (!report.first_event || t < *report.first_event) report.first_event = t;
      if (!report.last_event || t > *report.last_event) report.last_event = t;
      if (!keys.empty()) newest.Offer(keys, i, t.micros);
    }
    for (Accumulator& a : accs) AccumulateColumn(a, *batch->column(a.column));
  }
  const SourceScanStats& scanned = scan->stats();
  report.scan.view = view.name;
  report.scan.files_total = scanned.files_total;
  report.scan.files_pruned = scanned.files_pruned;
  report.scan.row_groups_total = scanned.row_groups_total;
  report.scan.row_groups_pruned = scanned.row_groups_pruned;
  report.scan.rows_scanned = scanned.rows_scanned;
  report.scan.rows_returned = scanned.rows_returned;
  report.scan.bytes_estimated = scanned.bytes_estimated;
  report.scan.rows_estimated = scanned.rows_estimated;
  scan.reset();
  report.sample_keys = newest.Keys();

  bool need_histogram = false;
  for (Accumulator& a : accs) {
    FeatureStats& s = a.stats;
    if (a.summed > 0) s.mean = a.sum / static_cast<double>(a.summed);
    if (a.kind == Kind::kList) {
      s.min.reset();
      s.max.reset();
      s.distinct_estimate = 0;
    } else {
      s.distinct_estimate = a.sketch.Estimate();
    }
    if (a.kind == Kind::kTimestamp && s.min) {
      s.min_text = FormatTimestamp(Timestamp::FromMicros(static_cast<int64_t>(*s.min)));
      s.max_text = FormatTimestamp(Timestamp::FromMicros(static_cast<int64_t>(*s.max)));
    }
    if ((a.kind == Kind::kNumber || a.kind == Kind::kTimestamp) && s.min) {
      s.histogram = HistogramBins(*s.min, *s.max, options.histogram_bins);
      need_histogram = true;
    }
    if (a.kind == Kind::kBool || a.kind == Kind::kText) {
      std::vector<ValueCount> values;
      values.reserve(a.counts.size());
      for (auto& [value, count] : a.counts) values.push_back({value, count});
      SortTopValues(values, options.top_values);
      s.top_values = std::move(values);
    }
  }

  if (need_histogram) {
    SourceScanOptions second = scan_options;
    second.with_join_keys = false;
    second.features.clear();
    for (const Accumulator& a : accs) {
      if (!a.stats.histogram.empty()) second.features.push_back(a.stats.name);
    }
    GRANARY_ASSIGN_OR_RAISE(auto again, FeatureSourceScan::Open(snapshot, defs, view, second));
    std::vector<std::pair<FeatureStats*, int>> targets;
    for (Accumulator& a : accs) {
      if (!a.stats.histogram.empty()) {
        targets.emplace_back(&a.stats, again->schema()->GetFieldIndex(a.stats.name));
      }
    }
    while (true) {
      GRANARY_RETURN_NOT_OK(CheckCancelled(options.cancel, what));
      GRANARY_ASSIGN_OR_RAISE(auto batch, again->Next());
      if (batch == nullptr) break;
      for (auto& [stats, column] : targets) HistogramColumn(*stats, *batch->column(column));
    }
  }

  for (Accumulator& a : accs) report.features.push_back(std::move(a.stats));
  report.elapsed = Duration::Microseconds(std::chrono::duration_cast<std::chrono::microseconds>(
                                              std::chrono::steady_clock::now() - began)
                                              .count());
  return report;
}

}  // namespace granary
