// One partition of the window join (window_join.h): entity rows and the events of the same keys,
// aggregated by the sawtooth kernel (aggregation/window_kernel.h). The join partitions rows and
// events by key hash and calls AggregatePartition once per partition, on its threads; this is
// the step inside one partition: the rows' keys to dense ids (events of other keys dropped), rows
// and events ordered by (key, time), one sweep of the kernel, the answers returned with the
// rows' positions in the request.
//
// Functions of their inputs only; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "granary/common/result.h"
#include "granary/common/time.h"
#include "granary/offline/pit_join.h"
#include "granary/registry/definitions.h"

namespace arrow {
class Array;
class Table;
}  // namespace arrow

namespace granary {

// The entity rows' column that holds each row's position in the request (int64).
inline constexpr const char* kWindowRowColumn = "__granary_row";

// The source columns a view's aggregations read: each one's column and its where column, once
// each, in order of first use; typed as in the source (where columns: bool).
struct AggregationColumns {
  std::vector<Field> columns;
  std::map<std::string, int> index;  // name -> position in `columns`
};

// The columns `aggregations` of `source`'s view read. InvalidArgument names the view, the column
// and the source's columns when one is missing; NotFound when the source has no data yet.
Result<AggregationColumns> AggregationColumnsOf(
    const ViewSource& source, const std::vector<const Aggregation*>& aggregations);

// One partition's answers: the rows' positions (`rows`, int64, from kWindowRowColumn) and one
// array per aggregation, both in the kernel's order (rows by key, then time, then position).
struct PartitionAnswers {
  std::shared_ptr<arrow::Array> rows;
  std::vector<std::shared_ptr<arrow::Array>> values;
};

// `rows`: the view's key columns, kEventTimestampColumn and kWindowRowColumn; `events`: the key
// columns, kEventTimestampColumn and `needed`'s columns. Adds to `events_used` the events whose
// key a row asks for, and to `rows_with_events` the rows with at least one event in the longest
// window (the training set's "matched" count). A row with a null key matches no event.
Result<PartitionAnswers> AggregatePartition(const arrow::Table& rows, const arrow::Table& events,
                                            const std::vector<std::string>& key_names,
                                            const std::vector<const Aggregation*>& aggregations,
                                            const AggregationColumns& needed, Duration granularity,
                                            int64_t* events_used, int64_t* rows_with_events);

}  // namespace granary
