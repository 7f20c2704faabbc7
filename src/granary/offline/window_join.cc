#include "granary/offline/window_join.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/util/byte_size.h>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <numeric>
#include <thread>

#include "granary/aggregation/window_kernel.h"
#include "granary/common/cancel.h"
#include "granary/common/progress.h"
#include "granary/common/strings.h"
#include "granary/common/threads.h"
#include "granary/offline/key_hash.h"
#include "granary/offline/partitioner.h"
#include "granary/offline/row_order_columns.h"
#include "granary/offline/source_inspector.h"
#include "granary/offline/spilled_answers.h"
#include "granary/offline/window_partition.h"
#include "granary/offline/window_slices.h"
#include "granary/types/arrow_convert.h"

namespace granary {
namespace {

Status ArrowError(const arrow::Status& st) { return Status::Internal(st.ToString()); }

// Rows of `batch` (event_timestamp at `time_index`) after `after` (all when nullopt): the
// events a slice reads that the slice before it did not, for the progress line.
int64_t CountAfter(const arrow::RecordBatch& batch, int time_index,
                   const std::optional<Timestamp>& after) {
  if (!after) return batch.num_rows();
  const arrow::Array& time = *batch.column(time_index);
  const int64_t* t = time.data()->GetValues<int64_t>(1);
  int64_t count = 0;
  for (int64_t i = 0; i < batch.num_rows(); ++i) count += t[i] > after->micros ? 1 : 0;
  return count;
}

// The events' size in memory, as the partitions are planned (EstimatedArrowBytes, or Parquet's
// uncompressed size if larger).
int64_t EventsArrowBytes(const FeatureSourceScan& scan) {
  return std::max(scan.stats().bytes_estimated,
                  EstimatedArrowBytes(*scan.schema(), scan.stats().rows_estimated));
}

Result<int64_t> ReferencedBytes(const arrow::Table& rows, const arrow::Table& events) {
  auto row_bytes = arrow::util::ReferencedBufferSize(rows);
  auto event_bytes = arrow::util::ReferencedBufferSize(events);
  if (!row_bytes.ok()) return ArrowError(row_bytes.status());
  if (!event_bytes.ok()) return ArrowError(event_bytes.status());
  return *row_bytes + *event_bytes;
}

void AddScanStats(const SourceScanStats& read, SourceScanStats* total) {
  total->files_total += read.files_total;
  total->files_pruned += read.files_pruned;
  total->row_groups_total += read.row_groups_total;
  total->row_groups_pruned += read.row_groups_pruned;
  total->rows_scanned += read.rows_scanned;
  total->rows_returned += read.rows_returned;
  total->bytes_estimated += read.bytes_estimated;
  total->rows_estimated += read.rows_estimated;
  total->row_groups_skipped += read.row_groups_skipped;
  total->readers = std::max(total->readers, read.readers);
}

// source.options reading the keys, the event time and the aggregations' columns only.
SourceScanOptions EventScanOptions(const ViewSource& source, const AggregationColumns& needed) {
  SourceScanOptions scan_options = source.options;
  scan_options.features.clear();
  scan_options.with_features = false;
  scan_options.with_created_timestamp = false;
  scan_options.extra_columns = needed.columns;
  return scan_options;
}

// What every read of the events shares.
struct ReadContext {
  const FeatureView& view;
  const std::vector<std::string>& keys;
  const std::vector<const Aggregation*>& aggregations;
  const AggregationColumns& needed;
  const JoinOptions& options;
  int threads;
  int64_t budget;    // the join's, bytes
  int64_t num_rows;  // entity rows of the request
};

// Where the partitions' answers go: into one array per aggregation in the rows' order
// (RowOrderColumns, made by the first read once its events are partitioned), or, when they are
// more than the join may hold, spilled by ranges of rows (SpilledAnswers, made up front).
struct Answers {
  std::vector<std::shared_ptr<arrow::DataType>> types;
  int64_t num_rows = 0;
  std::unique_ptr<RowOrderColumns> held;
  std::unique_ptr<SpilledAnswers> spilled;

  Status Prepare() {
    if (spilled != nullptr || held != nullptr) return Status::OK();
    GRANARY_ASSIGN_OR_RAISE(held, RowOrderColumns::Make(types, num_rows));
    return Status::OK();
  }
  Status Place(const arrow::Array& rows, const std::vector<std::shared_ptr<arrow::Array>>& values) {
    return spilled != nullptr ? spilled->Place(rows, values) : held->Place(rows, values);
  }
};

// One read of the events: the entity rows `row_batch` (the view's keys and the event time) with
// their positions in the request (`positions`, int64; null: 0, 1, 2, ...) partitioned by key with
// the events `scan` returns,
// each partition aggregated and its answers put in their rows' slots of `answers` (made, for
// every row of the request, once the first read's events are partitioned). The events'
// partitioner holds up to `hold_bytes` (or the default, if larger) before it spills. Progress
// counts the events after `counted_until` (the ones a slice before did not read). Adds to
// `stats` (partitions: the most of any read; largest_partition_bytes: the largest).
Status AggregateRead(std::shared_ptr<arrow::RecordBatch> row_batch,
                     std::shared_ptr<arrow::Array> positions,
                     std::unique_ptr<FeatureSourceScan> scan, const ReadContext& context,
                     int64_t hold_bytes, const std::optional<Timestamp>& counted_until,
                     Answers& answers, WindowJoinStats* stats) {
  const FeatureView& view = context.view;
  const std::vector<std::string>& keys = context.keys;
  const std::vector<const Aggregation*>& aggregations = context.aggregations;
  const AggregationColumns& needed = context.needed;
  const JoinOptions& options = context.options;
  const int threads = context.threads;
  const int64_t budget = context.budget;
  const int time_index = scan->event_timestamp_index();

  // Partitions small enough that each thread's partition of rows and events fits its share.
  // The events' size is what they take decoded, from the schema's Arrow widths: the scan's
  // bytes_estimated (Parquet's uncompressed size) was 9x under it at the seed's scale (small
  // integers Parquet run-length encodes), which made each partition 9x its share.
  const int64_t events_bytes = EventsArrowBytes(*scan);
  const int64_t num_rows = row_batch->num_rows();
  const int64_t data_bytes =
      BatchBytes(*row_batch) + num_rows * static_cast<int64_t>(sizeof(int64_t)) + events_bytes;
  // At most 4 MiB each even under a large budget: a partition's keys, hashes, orders, sorted
  // copies and answers take several times its size while it is worked on (about 6x), and small
  // partitions keep that peak low at no cost in time (bench/aggregations: 16 MiB partitions
  // peaked 80 MiB higher and were no faster; 1 MiB ones were slower: per-partition overhead).
  const int64_t share =
      std::clamp<int64_t>(budget / (4 * threads), int64_t{1} << 20, int64_t{4} << 20);
  // At most 4,096 (each Append cuts a batch into that many pieces), and no more than the
  // process may keep spill files open: one a spilled partition until Finish (MaxSpillPartitions).
  const int wanted =
      static_cast<int>(std::clamp<int64_t>((data_bytes + share - 1) / share, threads, 4096));
  const int partitions = std::max(1, std::min(wanted, MaxSpillPartitions(wanted)));
  PartitionerOptions part_options;
  part_options.num_partitions = partitions;
  // Each partitioner holds at most a quarter of the budget and never more than 64 MiB: the
  // rows and events are read back one partition at a time anyway, so spilling the rest costs one
  // sequential write and read, which is cheaper than holding a copy of the source in memory.
  part_options.memory_budget_bytes = std::min<int64_t>(budget / 4, int64_t{64} << 20);
  part_options.spill_parent = options.spill_dir;
  auto row_schema = row_batch->schema()->AddField(row_batch->num_columns(),
                                                  arrow::field(kWindowRowColumn, arrow::int64()));
  if (!row_schema.ok()) return ArrowError(row_schema.status());
  GRANARY_ASSIGN_OR_RAISE(auto row_parts, EntityPartitioner::Make(*row_schema, keys, part_options));
  // The rows go to the partitioner in pieces, each with its positions: partitioning a piece
  // takes about 60 bytes a row for a moment (its hashes, partitions, order and sorted copy), so
  // pieces of at most the budget's 64th part keep that within the join's share (at the seed's
  // scale, all 3.65 M rows at once added 230 MiB for a second: the 64 MiB run's peak).
  const int64_t piece_rows = std::max<int64_t>(int64_t{64} << 10, budget / 64);
  for (int64_t lo = 0; lo < num_rows; lo += piece_rows) {
    const int64_t length = std::min(piece_rows, num_rows - lo);
    std::shared_ptr<arrow::Array> piece_positions;
    if (positions != nullptr) {
      piece_positions = positions->Slice(lo, length);
    } else {
      arrow::Int64Builder builder;
      if (auto st = builder.Reserve(length); !st.ok()) return ArrowError(st);
      for (int64_t i = lo; i < lo + length; ++i) builder.UnsafeAppend(i);
      if (auto st = builder.Finish(&piece_positions); !st.ok()) return ArrowError(st);
    }
    arrow::ArrayVector columns = row_batch->Slice(lo, length)->columns();
    columns.push_back(std::move(piece_positions));
    GRANARY_RETURN_NOT_OK(
        row_parts->Append(arrow::RecordBatch::Make(*row_schema, length, std::move(columns))));
  }
  GRANARY_RETURN_NOT_OK(row_parts->Finish());
  // The partitioner holds its own copies: the rows and their positions need not stay too. What
  // partitioning them freed (its hashes, partitions and order, 20 bytes a row, on this thread's
  // heap: 84 MiB kept resident through the events' read at the seed's scale) goes back first.
  row_batch.reset();
  positions.reset();
  ReleaseFreedMemory();
  // The events' partitioner may hold what the plan gave them (a slice's, or all of them when
  // they fit) rather than spill past the default.
  part_options.memory_budget_bytes = std::max(part_options.memory_budget_bytes, hold_bytes);
  GRANARY_ASSIGN_OR_RAISE(auto event_parts,
                          EntityPartitioner::Make(scan->schema(), keys, part_options));
  while (true) {
    GRANARY_RETURN_NOT_OK(CheckCancelled(options.cancel, "reading events of " + view.name));
    GRANARY_ASSIGN_OR_RAISE(auto batch, scan->Next());
    if (batch == nullptr) break;
    if (options.progress != nullptr)
      options.progress->Add(CountAfter(*batch, time_index, counted_until));
    GRANARY_RETURN_NOT_OK(event_parts->Append(batch));
  }
  GRANARY_RETURN_NOT_OK(event_parts->Finish());
  AddScanStats(scan->stats(), &stats->scan);
  stats->partitions = std::max(stats->partitions, partitions);
  stats->events_bytes_planned += events_bytes;
  scan.reset();
  // What the read freed (its readers' buffers and batches, on this thread) goes back to the
  // system before the aggregation's workers allocate in arenas of their own.
  ReleaseFreedMemory();
  // Each partition's answers go straight to their rows' slots of one output array per
  // aggregation and are freed by the worker that computed them: the answers are held once, in
  // row order, never also in partition order (at the seed's scale 140 MiB of
  // bay_occupancy_windows' answers, plus an inverse permutation of 8 bytes a row, twice). Made
  // only now: made before the rows were partitioned, they took pages that partitioning had just
  // freed and kept them resident through the whole read (100 MiB more RSS at the seed's scale).
  GRANARY_RETURN_NOT_OK(answers.Prepare());

  std::atomic<int> next{0};
  std::atomic<int64_t> used{0};
  std::atomic<int64_t> with_events{0};
  std::atomic<int64_t> largest{0};
  std::mutex error_mutex;
  std::mutex release_mutex;  // Release may run beside ReadPartition of others, one at a time
  Status error;
  auto work = [&] {
    int64_t local_used = 0;
    int64_t local_with_events = 0;
    int64_t local_largest = 0;
    for (int p = next++; p < partitions; p = next++) {
      auto run = [&]() -> Status {
        GRANARY_RETURN_NOT_OK(CheckCancelled(options.cancel, "aggregating " + view.name));
        GRANARY_ASSIGN_OR_RAISE(auto rows, row_parts->ReadPartition(p));
        if (rows->num_rows() != 0) {
          GRANARY_ASSIGN_OR_RAISE(auto events, event_parts->ReadPartition(p));
          // The bytes the partition's rows and events reference: a partition that was never
          // spilled is ranges of a batch it shares with the others, whose whole buffers
          // TotalBufferSize would count.
          GRANARY_ASSIGN_OR_RAISE(int64_t bytes, ReferencedBytes(*rows, *events));
          local_largest = std::max(local_largest, bytes);
          GRANARY_ASSIGN_OR_RAISE(
              PartitionAnswers result,
              AggregatePartition(*rows, *events, keys, aggregations, needed, view.granularity,
                                 &local_used, &local_with_events));
          GRANARY_RETURN_NOT_OK(answers.Place(*result.rows, result.values));
        }
        // The partition's buffered rows and events (and spill files) go as soon as it is done:
        // otherwise they stay until the end.
        std::lock_guard<std::mutex> lock(release_mutex);
        row_parts->Release(p);
        event_parts->Release(p);
        return Status::OK();
      };
      Status st = run();
      if (!st.ok()) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (error.ok()) error = st;
        next = partitions;  // the others stop after their current partition
      }
    }
    used += local_used;
    with_events += local_with_events;
    for (int64_t seen = largest; seen < local_largest;) {
      if (largest.compare_exchange_weak(seen, local_largest)) break;
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  // The workers' partitions were freed into their threads' allocator arenas, which nothing
  // allocates from any more: hand those pages back, which would otherwise stay beside the
  // answers through the next views' joins and the output (bench/aggregations, PERFORMANCE.md).
  ReleaseFreedMemory();
  GRANARY_RETURN_NOT_OK(error);
  stats->events_used += used;
  stats->rows_with_events += with_events;
  stats->largest_partition_bytes = std::max<int64_t>(stats->largest_partition_bytes, largest);
  stats->bytes_spilled += row_parts->stats().bytes_spilled + event_parts->stats().bytes_spilled;
  return Status::OK();
}

}  // namespace

Result<std::unique_ptr<FeatureSourceScan>> OpenAggregationEventScan(const ViewSource& source) {
  std::vector<const Aggregation*> aggregations;
  for (const Aggregation& a : source.view->aggregations) aggregations.push_back(&a);
  GRANARY_ASSIGN_OR_RAISE(AggregationColumns needed, AggregationColumnsOf(source, aggregations));
  return FeatureSourceScan::Open(source.repo_root, *source.defs, *source.view,
                                 EventScanOptions(source, needed));
}

namespace {

// Bytes an answer of `type` takes in memory (strings and lists: a guess), its validity bit
// included, for deciding whether the answers are held.
double AnswerWidth(const arrow::DataType& type) {
  if (type.id() == arrow::Type::BOOL) return 0.25;
  const auto* fixed = dynamic_cast<const arrow::FixedWidthType*>(&type);
  if (fixed != nullptr && type.id() != arrow::Type::DICTIONARY && fixed->bit_width() > 0) {
    return fixed->bit_width() / 8.0 + 0.125;
  }
  return 16.125;
}

// The join, its answers into `answers` (types and rows filled in here; `spill_answers` past what
// the join may hold: see WindowAggregationJoinInto).
Status RunWindowJoin(const arrow::RecordBatch& entities, const ViewSource& source,
                     const std::vector<std::string>& aggregation_names, const JoinOptions& options,
                     bool spill_answers, Answers& answers, WindowJoinStats* stats) {
  const FeatureView& view = *source.view;
  std::vector<const Aggregation*> aggregations;
  Duration longest;
  for (const std::string& name : aggregation_names) {
    const Aggregation* a = view.FindAggregation(name);
    if (a == nullptr || !a->type) {
      return Status::InvalidArgument(
          fmt::format("feature view '{}' has no aggregation '{}'", view.name, name));
    }
    aggregations.push_back(a);
    longest = std::max(longest, a->window);
  }
  GRANARY_ASSIGN_OR_RAISE(AggregationColumns needed, AggregationColumnsOf(source, aggregations));
  const SourceScanOptions scan_options = EventScanOptions(source, needed);
  // One listing of the files for every read: the slices read the same files.
  GRANARY_ASSIGN_OR_RAISE(SourceSnapshot snapshot,
                          SourceSnapshot::Read(source.repo_root, *source.defs, view));
  GRANARY_ASSIGN_OR_RAISE(auto scan,
                          FeatureSourceScan::Open(snapshot, *source.defs, view, scan_options));
  const std::vector<std::string> keys = scan->join_keys();
  const ReadContext context{view,
                            keys,
                            aggregations,
                            needed,
                            options,
                            ThreadCount(options.threads),
                            std::max<int64_t>(options.memory_budget_bytes, 1 << 20),
                            entities.num_rows()};
  WindowJoinStats local_stats;
  if (stats == nullptr) stats = &local_stats;
  *stats = WindowJoinStats{};

  // The entity rows (their positions are added as they are partitioned: AggregateRead).
  const int64_t n = entities.num_rows();
  std::shared_ptr<arrow::RecordBatch> row_batch =
      arrow::RecordBatch::Make(entities.schema(), n, entities.columns());

  std::string answers_plan;  // said when the answers are spilled
  answers.num_rows = n;
  for (const Aggregation* a : aggregations) answers.types.push_back(ToArrowType(*a->type));
  if (spill_answers) {
    // Held in row order, the answers would take n times their widths whatever the partitions;
    // past half the join's budget (the other half is the partitions being aggregated) they are
    // spilled by ranges of rows instead, each range read back and handed out in turn. The
    // buffer and a range (read back, then in order: its positions and twice its answers) take a
    // quarter of the budget each.
    double width = 0;
    for (const auto& type : answers.types) width += AnswerWidth(*type);
    const auto held_bytes = static_cast<int64_t>(width * static_cast<double>(n));
    if (held_bytes > context.budget / 2) {
      SpilledAnswersOptions spill_options;
      spill_options.num_rows = n;
      spill_options.buffer_bytes = context.budget / 4;
      spill_options.range_rows = std::max<int64_t>(
          4096, static_cast<int64_t>(static_cast<double>(context.budget / 4) / (8 + 2 * width)));
      spill_options.spill_parent = options.spill_dir;
      GRANARY_ASSIGN_OR_RAISE(answers.spilled,
                              SpilledAnswers::Make(answers.types, std::move(spill_options)));
      answers_plan = fmt::format(
          "its answers ({:.0f} MiB in row order) are more than half the join's share of the memory "
          "budget ({:.1f} MiB): spilled with their row positions by ranges of {} rows, then read "
          "back and handed out one range at a time",
          static_cast<double>(held_bytes) / (1 << 20),
          static_cast<double>(context.budget / 2) / (1 << 20), spill_options.range_rows);
    }
  }

  // One read of the whole range, or time slices of the rows (window_slices.h), planned from the
  // events' Arrow size (as the partitions are) against half the join's budget: the other half
  // is the rows, the partitions being aggregated and the answers.
  WindowSliceInputs inputs;
  inputs.events_bytes = EventsArrowBytes(*scan);
  inputs.longest = longest;
  inputs.granularity = view.granularity;
  inputs.hold_budget = context.budget / 2;
  if (scan_options.start && scan_options.end) {
    inputs.start = *scan_options.start;
    inputs.end = *scan_options.end;
  } else {
    inputs.end = Timestamp{-1};  // unbounded: no time slices
  }
  GRANARY_ASSIGN_OR_RAISE(
      WindowSlicePlan plan,
      PlanWindowSlices(*entities.GetColumnByName(kEventTimestampColumn), inputs));
  // Said only when the events are more than a partitioner holds by default: otherwise one read
  // holds them as it always did.
  if (inputs.events_bytes > std::min<int64_t>(context.budget / 4, int64_t{64} << 20)) {
    stats->plan = plan.reason;
  }
  stats->slice_bytes_planned = plan.slice_bytes;
  if (plan.slices.empty()) {
    GRANARY_RETURN_NOT_OK(AggregateRead(std::move(row_batch), nullptr, std::move(scan), context,
                                        plan.hold_bytes, std::nullopt, answers, stats));
  } else {
    scan.reset();
    std::optional<Timestamp> read_until;
    for (WindowSlice& slice : plan.slices) {
      GRANARY_RETURN_NOT_OK(CheckCancelled(options.cancel, "reading events of " + view.name));
      SourceScanOptions slice_options = scan_options;
      slice_options.start = slice.start;
      slice_options.end = slice.end;
      GRANARY_ASSIGN_OR_RAISE(auto slice_scan,
                              FeatureSourceScan::Open(snapshot, *source.defs, view, slice_options));
      std::shared_ptr<arrow::RecordBatch> slice_rows = row_batch;
      std::shared_ptr<arrow::Array> take_array;  // the slice's rows' positions
      if (plan.slices.size() > 1) {
        arrow::Int64Builder take;
        if (auto st = take.AppendValues(slice.rows); !st.ok()) return ArrowError(st);
        std::vector<int64_t>().swap(slice.rows);
        if (auto st = take.Finish(&take_array); !st.ok()) return ArrowError(st);
        auto taken = arrow::compute::Take(row_batch, take_array);
        if (!taken.ok()) return ArrowError(taken.status());
        slice_rows = taken->record_batch();
      }
      GRANARY_RETURN_NOT_OK(AggregateRead(std::move(slice_rows), std::move(take_array),
                                          std::move(slice_scan), context, plan.hold_bytes,
                                          read_until, answers, stats));
      read_until = std::max(read_until.value_or(slice.end), slice.end);
    }
    stats->slices = static_cast<int>(plan.slices.size());
    // The slices read the files several times: one rewritten meanwhile (its size or time
    // changed) would give rows of different slices different data.
    GRANARY_RETURN_NOT_OK(snapshot.CheckUnchanged(fmt::format("feature view '{}'", view.name)));
  }
  row_batch.reset();
  if (answers.spilled != nullptr) {
    stats->answers_bytes_spilled = answers.spilled->bytes_spilled();
    stats->bytes_spilled += stats->answers_bytes_spilled;
    stats->plan = stats->plan.empty() ? answers_plan : stats->plan + "; " + answers_plan;
  }
  return Status::OK();
}

}  // namespace

Result<std::vector<std::shared_ptr<arrow::ChunkedArray>>> WindowAggregationJoin(
    const arrow::RecordBatch& entities, const ViewSource& source,
    const std::vector<std::string>& aggregations, const JoinOptions& options,
    WindowJoinStats* stats) {
  Answers answers;
  GRANARY_RETURN_NOT_OK(RunWindowJoin(entities, source, aggregations, options,
                                      /*spill_answers=*/false, answers, stats));
  return answers.held->Finish();
}

Status WindowAggregationJoinInto(const arrow::RecordBatch& entities, const ViewSource& source,
                                 const std::vector<std::string>& aggregations,
                                 const JoinOptions& options, const WindowAnswersSink& sink,
                                 WindowJoinStats* stats) {
  WindowJoinStats local_stats;
  if (stats == nullptr) stats = &local_stats;
  Answers answers;
  GRANARY_RETURN_NOT_OK(RunWindowJoin(entities, source, aggregations, options,
                                      /*spill_answers=*/true, answers, stats));
  auto pieces = [&](std::vector<std::shared_ptr<arrow::ChunkedArray>> columns) -> Status {
    std::vector<std::shared_ptr<arrow::Array>> arrays;
    for (auto& column : columns) {
      if (column->num_chunks() != 1) return Status::Internal("answers of more than one chunk");
      arrays.push_back(column->chunk(0));
    }
    columns.clear();
    return sink(std::move(arrays));
  };
  if (answers.held != nullptr) {
    GRANARY_ASSIGN_OR_RAISE(auto columns, answers.held->Finish());
    answers.held.reset();
    return pieces(std::move(columns));
  }
  Status emitted = answers.spilled->Emit(
      [&](int64_t, std::vector<std::shared_ptr<arrow::ChunkedArray>> columns) -> Status {
        GRANARY_RETURN_NOT_OK(CheckCancelled(options.cancel, "handing out the answers"));
        GRANARY_RETURN_NOT_OK(pieces(std::move(columns)));
        // The range's answers, handed over, go back now rather than after mimalloc's purge
        // delay (5 s), which the ranges of a whole view take together.
        ReleaseFreedMemory();
        return Status::OK();
      });
  return emitted;
}

}  // namespace granary
