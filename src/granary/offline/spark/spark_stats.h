// Feature statistics on Spark (OfflineEngine::FeatureStatistics of the Spark engine): the rules of
// offline/feature_stats.h computed in the cluster as Spark SQL aggregates, so that only figures
// come back to this process, whatever the size of the history. At most four queries, each over
// the source's rows in [start, end] (pruned by date partition as every Spark query is):
//   1. the summary, one row: rows, first and last event, and per feature count(x), NaNs,
//      min/max/avg (NaN left out), approx_count_distinct(x, 0.01) (lists: the mean length);
//   2. the histograms of every number and timestamp feature, one GROUP BY (feature, bin) over the
//      bins of 1.'s min and max, by the same double arithmetic as the embedded engine
//      (HistogramBinOf); skipped when no feature needs one;
//   3. the top values of bool, string and bytes features: one GROUP BY (feature, value), the first
//      `top_values` of each by count then value (row_number()); exact;
//   4. the sample entities: the join keys grouped, by their newest event time, first
//      `sample_entities`.
// The SQL builders are pure text (tested without a cluster); ComputeSparkFeatureStats runs them.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "granary/common/result.h"
#include "granary/offline/feature_stats.h"
#include "granary/registry/definitions.h"

namespace granary {

namespace spark_connect {
class SparkConnectClient;
}

namespace spark_sql {

// One view's statistics query: its source and keys, the features asked for, the range.
struct StatsQuery {
  const DataSource* source = nullptr;
  std::vector<std::string> join_keys;     // the view's entities' join keys, in order
  std::vector<ValueType> join_key_types;  // as the entities declare them
  std::vector<std::string> features;      // in the view's order
  std::vector<ValueType> feature_types;
  std::optional<Timestamp> start, end;  // inclusive; nullopt: unbounded
  std::filesystem::path repo_root;
  std::string csv_view;  // the CSV source's temporary view, or ""
};

// 1.: columns `rows`, `lo`, `hi` (event times as microseconds) and per feature j `c<j>`
// (non-null values), `nan<j>`, `min<j>`, `max<j>`, `mean<j>` (doubles; min/max of strings and
// bytes in `tmin<j>` / `tmax<j>`) and `d<j>` (the distinct estimate).
std::string StatsSummarySql(const StatsQuery& query);

// A number or timestamp feature's histogram: feature index, min, max and number of bins (> 1).
struct HistogramSpec {
  size_t feature = 0;
  double min = 0;
  double max = 0;
  int bins = 1;
};
// 2.: columns `f` (the feature index), `b` (the bin), `n` (rows).
std::string StatsHistogramSql(const StatsQuery& query, const std::vector<HistogramSpec>& specs);

// 3.: columns `f`, `v` (text: "true"/"false", the string, hex of the bytes), `n`; the first
// `top` of each feature.
std::string StatsTopValuesSql(const StatsQuery& query, const std::vector<size_t>& features,
                              int top);

// 4.: columns `k<i>` (each join key as text, "" for null) and `t`, newest first, `limit` rows.
std::string StatsSampleSql(const StatsQuery& query, int limit);

}  // namespace spark_sql

// Runs the queries above for `view` on `client` and assembles the report. Options are checked
// first (CheckFeatureStatsOptions); the source's CSV view, when it has one, is the caller's.
Result<FeatureStatsReport> ComputeSparkFeatureStats(spark_connect::SparkConnectClient& client,
                                                    const spark_sql::StatsQuery& query,
                                                    const FeatureView& view,
                                                    const FeatureStatsOptions& options);

}  // namespace granary
