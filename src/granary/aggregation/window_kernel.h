// The window aggregation kernel: for entity rows (group, t) and the events of the same groups,
// computes each aggregation over the events with start <= event time <= t, where
// start = floor((t - window) / granularity) * granularity (the "sawtooth" rule of
// docs/AGGREGATIONS.md: the head of a window is exact, its tail whole tiles).
//
// This is the only code that defines what an aggregation's value is; the offline engines feed it
// (offline/window_join.h partitions and sorts a source's events, spilling past the memory budget)
// and every other implementation (online tiles, the Spark engine) is tested against it.
//
// The kernel is a sorted sweep: both inputs sorted by (group, time), one pass over each with a
// head pointer (events up to t enter) and one tail pointer per aggregation (events before start
// leave), so every event enters and leaves each aggregation's state once: O(rows + events) per
// aggregation (min/max with a monotonic deque; count_distinct with a hash map of counts). It
// knows nothing about files, keys or partitions. Stateless; thread-safe (callers run one
// partition per thread).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "granary/common/result.h"
#include "granary/common/time.h"
#include "granary/registry/definitions.h"

namespace arrow {
class Array;
}

namespace granary::aggregation {

// One aggregation to compute.
struct WindowSpec {
  AggregationFunction function = AggregationFunction::kCount;
  Duration window;        // > 0
  ValueType output_type;  // as FeatureView::Outputs() gives it
  // Column of the events (same length and order as the events): the aggregated values; null for
  // count of every event. Any type the function accepts (AggregationOutputType).
  std::shared_ptr<arrow::Array> values;
  // Bool column of the events: only events where it is true count; null: every event.
  std::shared_ptr<arrow::Array> where;
};

// Input sorted by (group, time). Events with equal (group, time) keep their read order, which
// breaks ties for first and last (the last one read is the last). Pointers are borrowed.
struct WindowInput {
  const int64_t* event_group = nullptr;
  const int64_t* event_time = nullptr;  // UTC microseconds
  int64_t num_events = 0;
  const int64_t* row_group = nullptr;
  const int64_t* row_time = nullptr;   // UTC microseconds
  const uint8_t* row_valid = nullptr;  // null: every row has a time; else 0 marks a null time
  int64_t num_rows = 0;
  Duration granularity;  // > 0
};

// The window start of an entity row at `t` (inclusive): t - window rounded down to granularity.
int64_t WindowStart(int64_t t, Duration window, Duration granularity);

// One array per spec, num_rows long, in the rows' (sorted) order, typed by ToArrowType of the
// spec's output type. A row with a null time gets nulls; an empty window gives count and
// count_distinct 0, every other function null (also sum over only null values).
Result<std::vector<std::shared_ptr<arrow::Array>>> ComputeWindows(
    const WindowInput& input, const std::vector<WindowSpec>& specs);

}  // namespace granary::aggregation
