// Feature statistics: what one feature view's offline data looks like over an event-time range,
// per feature: row count, nulls, min/max/mean, a distinct-count estimate, a histogram (numbers) or
// the most frequent values (strings, bytes, bools), and the entities with the newest rows (for an
// online sample). Every engine computes them (OfflineEngine::FeatureStatistics): the embedded one
// by reading the files here (ComputeFeatureStatsFromFiles), Spark as aggregate queries in the
// cluster (offline/spark/spark_stats.h). `granary stats`, the SDK's FeatureStore.feature_stats
// and the console's data page call the repository's engine (docs/CONSOLE.md, "Statistics").
//
// Rules (every engine):
//  - Rows are the source's rows with an event time in [start, end] (both inclusive; unbounded
//    when unset): field mapping applied, Delta deletion vectors honoured, rows without an event
//    time dropped. Duplicated rows of an entity all count: this describes the data, not the
//    latest value per entity.
//  - count is the rows read; nulls the rows whose value is null. NaN (float features) is a value,
//    counted in `nan` and left out of min, max, mean and the histogram.
//  - min/max/mean: numbers, bools (mean = the share of true) and timestamps (microseconds; their
//    text in min_text/max_text). Strings and bytes have a lexicographic min_text/max_text. Lists
//    have count and nulls only, plus the mean list length in `mean`.
//  - histogram (int, float, timestamp features): `bins` equal-width bins from min to max, each
//    [low, high) but the last [low, high]; their counts add up to count - nulls - nan. One bin
//    when min == max (HistogramBins).
//  - top values (bool, string, bytes): most frequent first, ties by value (SortTopValues).
//  - sample_keys: the join key values (as text) of up to `sample_entities` distinct entities
//    with the newest event times, newest first.
// Where engines may differ (each within its stated precision):
//  - distinct: an estimate. Embedded: a HyperLogLog of 4096 registers (~1.6% standard error;
//    exact-ish below a few thousand values through linear counting). Spark: its
//    approx_count_distinct (HyperLogLog++) at a 1% relative standard deviation. Nulls and NaN
//    are not values.
//  - top values: exact on Spark (a GROUP BY in the cluster); embedded, exact while at most
//    100,000 distinct values were seen (top_values_exact), past that values first seen later are
//    not counted. Bytes are compared as raw bytes on Spark and as their escaped text (\xNN)
//    embedded, which orders only ties and min/max_text differently.
//  - sample_keys of entities tied on their newest time: embedded keeps the first row read;
//    Spark any of them. Embedded: a histogram is a second pass over the same files (the same
//    Delta version); Spark: a second query over the table as it is then.
//  - scan: the embedded engine counts files, row groups and rows read and pruned; Spark fills
//    rows_scanned and, in engine_detail, its job's metrics.
//
// Blocks; polls options.cancel between batches (embedded) or while the cluster works (Spark).
// Thread-compatible (no shared state).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "granary/common/cancel.h"
#include "granary/common/result.h"
#include "granary/common/time.h"
#include "granary/offline/offline_engine.h"
#include "granary/registry/definitions.h"

namespace granary {

struct FeatureStatsOptions {
  std::optional<Timestamp> start;      // inclusive; unset: from the first row
  std::optional<Timestamp> end;        // inclusive; unset: to the last row
  std::vector<std::string> features;   // empty: every feature of the view
  int histogram_bins = 20;             // 1 to 1000
  int top_values = 10;                 // 0 to 1000
  int sample_entities = 5;             // 0 to 100
  const CancelFlag* cancel = nullptr;  // may be null
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
  OfflineReadStats scan;       // of the first pass (the engine fills what it knows)
  int64_t delta_version = -1;  // the Delta version read (embedded engine); -1: none or unknown
  std::vector<std::string> join_keys;
  std::vector<FeatureStats> features;                 // in the view's order
  std::vector<std::vector<std::string>> sample_keys;  // per entity: one text per join key
  Duration elapsed;                                   // wall time of the computation
};

// The embedded engine's statistics: the view's files read in this process (two passes when a
// histogram is asked). Callers go through OfflineEngine::FeatureStatistics, which picks the
// repository's engine. InvalidArgument for a feature the view lacks (with a suggestion), bad
// options or start > end; errors of the scan name the view, the source and the file.
Result<FeatureStatsReport> ComputeFeatureStatsFromFiles(const std::filesystem::path& repo_root,
                                                        const Definitions& defs,
                                                        const FeatureView& view,
                                                        const FeatureStatsOptions& options);

// Pieces every engine shares, so that the rules above have one definition.
// The checks of `options` against `view` (the errors ComputeFeatureStatsFromFiles describes).
Status CheckFeatureStatsOptions(const FeatureView& view, const FeatureStatsOptions& options);
// A report of `view` before any figure: `options` checked (CheckFeatureStatsOptions), the view's
// name and the interval set. Every engine's statistics start from it.
Result<FeatureStatsReport> NewFeatureStatsReport(const FeatureView& view,
                                                 const FeatureStatsOptions& options);
// The features of `view` that `options` asks for, in the view's order.
std::vector<const Field*> RequestedStatsFeatures(const FeatureView& view,
                                                 const FeatureStatsOptions& options);
// The empty bins of a histogram over [min, max]: `bins` equal-width ones, one when min == max.
std::vector<HistogramBin> HistogramBins(double min, double max, int bins);
// The bin of `v` among `bins` equal bins over [min, max] (the last one closed).
int HistogramBinOf(double v, double min, double max, int bins);
// Most frequent first, ties by value; at most `top` kept.
void SortTopValues(std::vector<ValueCount>& values, int top);
// Bytes as text: printable ASCII kept, everything else (and '\\') as \xNN.
std::string PrintableBytes(std::string_view bytes);

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
