// WindowSlicePlan: how the window join (window_join.h) reads a view's events for its entity
// rows: in one read of the whole range, or in time slices of the entity rows, each read with
// only the events its rows' windows reach.
//
// An entity row at t needs the events of its key from WindowStart(t, longest window,
// granularity) to t (aggregation/window_kernel.h), never the rest of the range. One read
// partitions all of the range's events by key before any is aggregated, so it must hold them all
// or spill what its partitioners cannot hold. A slice of the rows whose times span [t0, t1] needs
// only the events of [WindowStart(t0), t1]: when those fit what the join may hold, each slice is
// read, partitioned and aggregated in memory, and only the lead-in (the longest window and the
// granularity before t0, about `lead`) is read twice, by this slice and the one before.
//
// The plan, from the events' Arrow size over the range (estimated: EstimatedArrowBytes) taken as
// spread evenly over time (bytes a microsecond):
//   - the events fit `hold_budget`: one read that holds them all (nothing spilled);
//   - a slice spanning at least four lead-ins beyond its own (so that at most a fifth of what a
//     slice reads is read again) fits `hold_budget`: the rows ordered by time (ties by position)
//     are cut where a slice's events [WindowStart(first row's time), last row's time] would pass
//     it. Rows without a time read no events and go with the first slice;
//   - otherwise one read of the whole range, partitioned and spilled past what the partitioners
//     hold, as before slices existed (`reason` says why).
// Events that are not spread evenly make some slices larger than planned: their partitioners
// then spill past `hold_bytes`, which keeps the answers right and the memory bounded.
//
// A plain value; PlanWindowSlices is a pure function (thread-safe).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "granary/common/result.h"
#include "granary/common/time.h"

namespace arrow {
class Array;
}  // namespace arrow

namespace granary {

struct WindowSliceInputs {
  // The events' estimated Arrow bytes over [start, end] (both inclusive, UTC microseconds): the
  // range the join would read in one read.
  int64_t events_bytes = 0;
  Timestamp start;
  Timestamp end;
  Duration longest;      // the longest window of the aggregations asked
  Duration granularity;  // the view's (> 0)
  // What a read may hold of events in memory, in bytes (the join's: half its share).
  int64_t hold_budget = 0;
};

struct WindowSlice {
  std::vector<int64_t> rows;  // positions of the slice's entity rows in the request
  Timestamp start;            // the events to read, both bounds inclusive
  Timestamp end;
};

struct WindowSlicePlan {
  // Empty: one read of the whole range over every row. Else each slice is read on its own; every
  // row with a time is in exactly one slice, in time order.
  std::vector<WindowSlice> slices;
  // What each read's event partitioner may hold before it spills, in bytes; 0: the join's
  // default (the events do not fit and are spilled past it).
  int64_t hold_bytes = 0;
  // The events a slice is planned to hold at most (the whole range's when one read), bytes.
  int64_t slice_bytes = 0;
  std::string reason;  // what was decided and why, in words for the retrieval's summary
};

// `row_times`: the entity rows' times (timestamp[us], nulls allowed), one per row.
Result<WindowSlicePlan> PlanWindowSlices(const arrow::Array& row_times,
                                         const WindowSliceInputs& inputs);

}  // namespace granary
