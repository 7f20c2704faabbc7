// WindowAggregationJoin: a feature view's window aggregations at each entity row, computed by the
// embedded engine out of core. Semantics (the sawtooth window, empty windows, ties) are the
// kernel's: aggregation/window_kernel.h and docs/AGGREGATIONS.md.
//
//   entity rows --+-- EntityPartitioner by key hash (spills past its budget) --+
//   source scan --+-- (keys, time, the aggregations' columns)                  |
//                     per partition, on `threads` threads:                     v
//                     events of keys the rows ask for, sorted by (key, time); rows sorted by
//                     (key, time) -> ComputeWindows (one sweep) -> values into their rows' slots
//
// Reads: one read of the whole range, or, when the events are more than half the budget, time
// slices of the entity rows, each read with only the events its rows' windows reach (the
// longest window and the granularity before its first row, to its last), partitioned and
// aggregated as above (window_slices.h says when and how they are cut). A time-ordered source
// (Delta or hive date partitions, row groups in time order) prunes each slice's scan to about
// its own range, so each event is read about once plus the lead-in again.
//
// Memory: the partition count is chosen so that a partition of rows and events fits in the
// budget divided among the threads. The events' partitioner holds up to half the budget when
// the events, or a slice's, are planned to fit it (nothing spilled), else at most a quarter of
// the budget (64 MiB at most) and spills the rest to Arrow IPC files, as the rows' partitioner
// does. Each partition's answers are written straight into the output columns in the rows'
// order (RowOrderColumns) and freed, so the answers are held once, whatever the slices; or, for
// WindowAggregationJoinInto past half the budget, spilled by ranges of rows and handed out one
// range at a time (SpilledAnswers). Not thread-safe itself (it runs its own threads).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "granary/common/result.h"
#include "granary/offline/pit_join.h"

namespace arrow {
class Array;
class ChunkedArray;
class RecordBatch;
}  // namespace arrow

namespace granary {

struct WindowJoinStats {
  SourceScanStats scan;  // summed over the reads (a slice's lead-in counts again)
  int partitions = 0;    // of the read that had the most
  // Reads in time slices of the entity rows; 0: one read of the whole range.
  int slices = 0;
  // Bytes of the events the partitions were planned for (their Arrow size estimated from the
  // schema and the scan's row count, or the scan's bytes_estimated if larger; summed over the
  // reads), and the Arrow bytes of the largest partition's entity rows and events as read back.
  int64_t events_bytes_planned = 0;
  int64_t largest_partition_bytes = 0;
  int64_t bytes_spilled = 0;  // the partitioners' and the answers'
  // Bytes of the answers spilled by WindowAggregationJoinInto (included in bytes_spilled).
  int64_t answers_bytes_spilled = 0;
  // The events the slices were planned to hold at most (bytes; the whole range's for one read),
  // and what was decided and why, in words for the retrieval's summary (empty when the events
  // are within what a partitioner holds by default).
  int64_t slice_bytes_planned = 0;
  std::string plan;
  // Events of keys that some entity row asks for (a slice's lead-in counts again).
  int64_t events_used = 0;
  // Entity rows with at least one event of their key in the longest of the aggregations'
  // windows (events before `where` applies); the others read count 0 and null.
  int64_t rows_with_events = 0;
};

class FeatureSourceScan;

// A scan of source.view's events for its aggregations (all of them): join keys,
// `event_timestamp`, then each column the aggregations read, once, as
// OfflineEngine::ReadEvents describes; source.options gives the range (features ignored).
Result<std::unique_ptr<FeatureSourceScan>> OpenAggregationEventScan(const ViewSource& source);

// `entities`: the view's join key columns (typed as the entities declare) and `event_timestamp`
// (timestamp[us, UTC]), as for PointInTimeJoin. `aggregations` names aggregations of
// source.view; returns one column per name, one value per entity row, in the rows' order.
// source.options gives the time range to read (the caller widens it by the longest window plus
// the granularity); its features are ignored. options.memory_budget_bytes, threads, spill_dir,
// progress and cancel are honoured; created_timestamp_cutoff does not apply (events are
// aggregated by event time).
Result<std::vector<std::shared_ptr<arrow::ChunkedArray>>> WindowAggregationJoin(
    const arrow::RecordBatch& entities, const ViewSource& source,
    const std::vector<std::string>& aggregations, const JoinOptions& options,
    WindowJoinStats* stats);

// Receives the answers of consecutive entity rows, from row 0 on: one array per aggregation, all
// as long.
using WindowAnswersSink = std::function<Status(std::vector<std::shared_ptr<arrow::Array>>)>;

// WindowAggregationJoin's columns handed to `sink` in pieces of consecutive rows instead of
// returned, for a caller that spills them anyway (the training set's output past its share of
// the budget). When held in the rows' order the answers (the entity rows times the answers'
// widths) would pass half the join's budget, they are not held: each partition's answers are
// spilled with their row positions by ranges of rows (SpilledAnswers, under
// options.spill_dir) and each range is read back, put in order and handed out in turn, so the
// join holds a quarter of its budget of answers and one range at a time instead of all of them
// (stats: answers_bytes_spilled, and the plan says so). Otherwise one piece of every row. The
// values are WindowAggregationJoin's either way.
Status WindowAggregationJoinInto(const arrow::RecordBatch& entities, const ViewSource& source,
                                 const std::vector<std::string>& aggregations,
                                 const JoinOptions& options, const WindowAnswersSink& sink,
                                 WindowJoinStats* stats);

}  // namespace granary
