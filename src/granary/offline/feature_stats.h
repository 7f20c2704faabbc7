// Feature statistics: what one feature view's offline data looks like over an event-time range,
// per feature: row count, nulls, min/max/mean, a distinct-count estimate, a histogram (numbers) or
// the most frequent values (strings, bytes, bools), and the entities with the newest rows (for an
// online sample). `granary stats`, the SDK's FeatureStore.feature_stats and the console's data
// page all call ComputeFeatureStats (docs/CONSOLE.md, "Statistics").
//
// Rules:
//  - Rows are those FeatureSourceScan returns for [start, end] (both inclusive; unbounded when
//    unset): field mapping applied, Delta deletion vectors honoured, rows without an event time
//    dropped. Duplicated rows of an entity all count: this describes the data, not the latest
//    value per entity.
//  - count is the rows read; nulls the rows whose value is null. NaN (float features) is a value,
//    counted in `nan` and left out of min, max, mean and the histogram.
//  - min/max/mean: numbers, bools (mean = the share of true) and timestamps (microseconds; their
//    text in min_text/max_text). Strings and bytes have a lexicographic min_text/max_text. Lists
//    have count and nulls only, plus the mean list length in `mean`.
//  - distinct: a HyperLogLog estimate (4096 registers: ~1.6% standard error; exact-ish below a
//    few thousand values through linear counting). Nulls and NaN are not values.
//  - histogram (int, float, timestamp features): `bins` equal-width bins from min to max, each
//    [low, high) but the last [low, high]; their counts add up to count - nulls - nan. One bin
//    when min == max. A second pass over the same files (the same Delta version) fills it.
//  - top values (bool, string, bytes): exact counts while at most 100,000 distinct values were
//    seen (top_values_exact); past that, values first seen later are not counted.
//  - sample_keys: the join key values (as text) of up to `sample_entities` distinct entities
//    with the newest event times, newest first; ties keep the first row read.
//
// Reads the source; blocks. Thread-compatible (no shared state).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "granary/common/result.h"
#include "granary/common/time.h"
#include "granary/offline/source_scan.h"
#include "granary/registry/definitions.h"

namespace granary {

struct FeatureStatsOptions {
  std::optional<Timestamp> start;     // inclusive; unset: from the first row
  std::optional<Timestamp> end;       // inclusive; unset: to the last row
  std::vector<std::string> features;  // empty: every feature of the view
  int histogram_bins = 20;            // 1 to 1000
  int top_values = 10;                // 0 to 1000
  int sample_entities = 5;            // 0 to 100
};

struct HistogramBin {
  double low = 0;
  double high = 0;
  int64_t count = 0;
};

struct ValueCount {
  std::string value;  // bools "true"/"false"; bytes as escaped text (\xNN for non-printables)
  int64_t count = 0;
};

struct FeatureStats {
  std::string name;
  ValueType type;
  int64_t count = 0;  // rows read
  int64_t nulls = 0;
  int64_t nan = 0;  // float features
  std::optional<double> min, max, mean;
  std::string min_text, max_text;  // timestamps (ISO 8601), strings, bytes
  int64_t distinct_estimate = 0;
  std::vector<HistogramBin> histogram;
  std::vector<ValueCount> top_values;  // most frequent first, ties by value
  bool top_values_exact = true;

  double null_rate() const { return count == 0 ? 0.0 : static_cast<double>(nulls) / count; }
};

struct FeatureStatsReport {
  std::string view;
  std::optional<Timestamp> start, end;               // as asked
  std::optional<Timestamp> first_event, last_event;  // of the rows read
  int64_t rows = 0;
  SourceScanStats scan;  // of the first pass
  int64_t delta_version = -1;
  std::vector<std::string> join_keys;
  std::vector<FeatureStats> features;                 // in the view's order
  std::vector<std::vector<std::string>> sample_keys;  // per entity: one text per join key
  Duration elapsed;                                   // wall time of the computation
};

// InvalidArgument for a feature the view lacks (with a suggestion), bad options or start > end;
// errors of the scan name the view, the source and the file.
Result<FeatureStatsReport> ComputeFeatureStats(const std::filesystem::path& repo_root,
                                               const Definitions& defs, const FeatureView& view,
                                               const FeatureStatsOptions& options);

// A HyperLogLog sketch of 2^12 registers over 64-bit hashes. Plain value; thread-compatible.
class DistinctSketch {
 public:
  DistinctSketch();
  void AddHash(uint64_t hash);
  int64_t Estimate() const;

 private:
  std::vector<uint8_t> registers_;
};

// The 64-bit hash DistinctSketch expects of a value's bytes (FNV-1a, then a finalizing mix so
// that the top bits are well spread).
uint64_t HashForSketch(const void* data, size_t size);

}  // namespace granary
