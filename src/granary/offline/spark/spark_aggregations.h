// The Spark SQL of window aggregations (docs/AGGREGATIONS.md; docs/SPARK.md, "Window
// aggregations"): a view's aggregation features at each entity row of a training set, and the
// raw events of a view that materialization turns into online tiles. Pure text builders, as
// spark_sql.h: no I/O.
//
// At entity rows (key, t), for a view with granularity G and requested aggregations of windows
// W1..Wn, one query part per view (CTEs w<i>_e, w<i>_r, w<i>):
//   - the events of the source with event time in [start(min t, max W), max t] (date partitions
//     pruned as for plain views), no null key or time: keys, time, read position (file path, row
//     index) and each column the aggregations read;
//   - the entity rows with each window's start, start = (t - W) - pmod(t - W, G) (integer
//     microseconds: t - W rounded down to G, also before 1970);
//   - a range join of entity rows to events on the keys and start(max W) <= e <= t, grouped per
//     entity row; each aggregation keeps the joined events with e >= its own start, its `where`
//     true and its column not null: count, sum, avg, min, max, stddev_samp, count(DISTINCT) and
//     min_by / max_by over (event time, file path, row index) for first / last (the embedded
//     engine's read order breaks ties of equal times).
// The work is in the cluster; the cost is the pairs (entity row, event of its key in the longest
// window), so a key with many entity rows and many events in its window costs their product.
//
// Values equal the kernel's (aggregation/window_kernel.h) exactly for count, count_distinct
// (exact, as in the embedded engine: no sketch), min, max, first, last and integer sums; sum of
// floating columns, mean and stddev are summed in another order (double in Spark, long double
// in the kernel) and agree within a few units in the last place.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "granary/offline/spark/spark_sql.h"

namespace granary::spark_sql {

// The CTEs of the aggregation features of q.views[view] (those with an aggregation in
// JoinView::aggregations), ending with `w<view>`: kRowColumn and, per aggregation feature f,
// FeatureColumn(view, f) typed as the aggregation's type; one row per entity row.
std::vector<std::string> WindowAggregationCtes(const PointInTimeQuery& q, size_t view);

// The start of the window of an entity row at `t` (UTC microseconds), as the kernel's
// WindowStart: t - window rounded down to a multiple of granularity.
int64_t WindowStartMicros(int64_t t, int64_t window, int64_t granularity);

// A column of the source that a view's aggregations read, as ReadEvents returns it.
struct EventColumn {
  std::string name;       // the definition name (the source column through field_mapping)
  bool is_where = false;  // read as a `where`: cast to BOOLEAN
  // The Spark type to cast the value to; "" keeps the source's type. Only CSV sources (every
  // column text) are cast: to the type of a min/max/first/last of it, else of a sum, else
  // DOUBLE for mean/stddev; a column only counted stays text.
  std::string cast;
};

// The columns the aggregations of `view` read, once each, in definition order.
std::vector<EventColumn> AggregationEventColumns(const FeatureView& view, const DataSource& source);

// The raw events of a view for its online tiles (OfflineEngine::ReadEvents): the join keys
// (named and typed as the entities declare), `event_timestamp`, then `columns` named by their
// definition names; start <= event time <= end, no null key; in read order (file path, row
// index).
struct EventsQuery {
  JoinView view;  // keys and source; features unused
  std::vector<EventColumn> columns;
  Timestamp start;
  Timestamp end;
  std::filesystem::path repo_root;
  std::string csv_view;
};
std::string EventsSql(const EventsQuery& query);

}  // namespace granary::spark_sql
