// The point-in-time join: for each entity row (keys, t), the feature row of one view with the same
// keys and the latest event timestamp in [t - ttl, t] (ties: latest created timestamp, then the
// row read last). The exact rules are in docs/POINT_IN_TIME.md.
//
// Engine, per view, in two passes over the source (FeatureSourceScan):
//  1. match: read only join keys and timestamps. How is planned from what each way must hold
//     (pit_plan.h): when the entity rows' matching state fits in the budget (the usual case),
//     feature rows stream through a StreamingMatcher (pit_stream.h) and are not kept; when it
//     does not, the entity rows are split by key hash into groups that do, one read of the keys
//     and times each; or the keys and times are held and sorted when they fit; or else split by
//     a hash of the join keys into partitions (EntityPartitioner, spilling to Arrow IPC files)
//     and matched one partition at a time: rows are bucketed by key hash, each bucket sorted by
//     (key hash, event time, created time, read order) and swept, on all cores (or, when the
//     feature rows are no more than the entity rows, each entity row looks its key up among
//     them: MatchWay). The result: for each entity row, the read position of its chosen feature
//     row.
//  2. gather: read only the features (the chosen rows are found by read position; row groups
//     with none are skipped) and keep only the chosen rows, in entity order (each chosen row's
//     value taken once, however many entity rows chose it). It holds one list of the chosen
//     rows (16 bytes a matched entity row) and the output columns being gathered;
//     a caller that takes the columns as they are gathered (PointInTimeJoinInto) lets it gather
//     them in groups of columns that fit the budget, one read of the features each (each
//     column is decoded once either way).
// Feature values of rows that are not chosen are decoded but never held, so memory scales with
// the entity rows and the output (streaming), or with the keys and times of the range up to the
// budget (otherwise), never with the width of the view.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "granary/common/cancel.h"
#include "granary/common/result.h"
#include "granary/common/time.h"
#include "granary/offline/embedded/embedded_engine.h"
#include "granary/offline/pit_plan.h"
#include "granary/offline/source_scan.h"
#include "granary/registry/definitions.h"

namespace arrow {
class Array;
class ChunkedArray;
class RecordBatch;
}  // namespace arrow

namespace granary {

class KeyColumns;
class PhaseTimings;
class Progress;

// The streaming match's entity side (a StreamingMatcher: the entity rows grouped by join key, each
// group sorted by time), kept from one view's join for the next views' joins over the same entity
// rows and join keys, so that it is built once rather than once a view. A join given the cache
// reuses what it holds when that was built over the very key and time arrays of the join's entity
// rows (the same buffers: the caller passes the same arrays to the views that share join keys),
// else builds its own; when its match pass ends it hands the entity side back if keep() is set,
// else frees it, so that it is held neither through the last such view's gather pass nor after.
// A join whose match does not stream (the entity side does not fit its budget) frees what the
// cache holds at once. Held: about StreamingMatcher::MemoryFor's 88 bytes an entity row, less the
// sort's records. One thread at a time.
class EntitySideCache {
 public:
  EntitySideCache();
  ~EntitySideCache();
  EntitySideCache(const EntitySideCache&) = delete;
  EntitySideCache& operator=(const EntitySideCache&) = delete;

  // Whether the next join hands its entity side back for a later join (false: frees it).
  void set_keep(bool keep) { keep_ = keep; }
  bool keep() const { return keep_; }
  // Frees the entity side held, if any.
  void Clear();
  // Whether it holds an entity side built over exactly `keys` and `ts` (the same buffers).
  bool Holds(const std::vector<std::shared_ptr<arrow::Array>>& keys,
             const std::shared_ptr<arrow::Array>& ts) const;

  // The join's side (pit_match_pass.cc): an entity side with the arrays it was built over.
  struct Entry;
  // The entity side held if it was built over exactly `keys` and `ts`, else null; either way the
  // cache holds nothing after.
  std::unique_ptr<Entry> Take(const std::vector<std::shared_ptr<arrow::Array>>& keys,
                              const std::shared_ptr<arrow::Array>& ts);
  // Holds `entry` for the next join when keep() is set, else frees it.
  void Return(std::unique_ptr<Entry> entry);

 private:
  bool keep_ = false;
  std::unique_ptr<Entry> entry_;
};

// A view's match pass run ahead of its join (MatchAhead), for the join of the same view and
// entity rows to take (JoinOptions::matched) rather than match again: the chosen rows, the files
// the match read and how it ran. Defined in pit_match_pass.h.
struct MatchedView;
struct MatchedViewDeleter {
  void operator()(MatchedView* matched) const;
};
using MatchedViewPtr = std::unique_ptr<MatchedView, MatchedViewDeleter>;

struct JoinOptions {
  // Bytes of feature data (and join state) held in memory at once; past it the engine spills.
  int64_t memory_budget_bytes = kDefaultMemoryBudget;
  int threads = 0;  // 0: every core
  // Ignore feature rows whose created timestamp is after the entity row's time.
  bool created_timestamp_cutoff = false;
  std::filesystem::path spill_dir;  // empty: the system's temp dir
  Progress* progress = nullptr;     // counts rows read from the source's files; may be null
  // Polled between batches and partitions; once set, the join returns kCancelled. May be null.
  const CancelFlag* cancel = nullptr;
  // Records the join's phases (the entity side, the match pass, the gather pass, putting values
  // back into entity order), named after the view. May be null.
  PhaseTimings* timings = nullptr;
  // Where the streaming match's entity side is kept for the next view's join (EntitySideCache).
  // May be null: each join builds its own.
  EntitySideCache* entity_side = nullptr;
  // The join's match pass, already run by MatchAhead over the same entities, source and options
  // (on another thread, beside the previous view's gather pass): the join takes it and runs
  // only its gather pass. Null: the join matches itself.
  MatchedView* matched = nullptr;
  // Fixed-width output columns come in chunks of this many rows (a power of two; else, and with
  // 0, one chunk), each with buffers of its own: a consumer that goes through the rows in order
  // (the training set's writer) frees each once done with it (ScatteredColumn).
  int64_t output_chunk_rows = 0;
  // Test hook (LevelDB's TEST_ naming; production leaves it empty): called between the match pass
  // and the gather pass, for tests that change the source there.
  std::function<void()> TEST_after_match_pass;
  // Test hook: the match pass runs this plan instead of the one PlanMatch makes.
  std::optional<MatchPlan> TEST_force_plan;
  // Test hook: the gather pass decodes every row of the row groups it reads (Arrow's reader), as
  // before it decoded only the chosen values (SourceScanOptions::chosen_rows); for tests that
  // compare the two.
  bool TEST_read_whole_row_groups = false;
};

struct ViewJoinStats {
  SourceScanStats scan;  // the match pass (keys and times; the last read when it read several)
  // How the match pass ran (pit_plan.h) and why, in words for the retrieval's summary.
  MatchStrategy strategy = MatchStrategy::kStream;
  std::string plan;
  // 0 streamed (or in passes), 1 sorted in memory, >1 partitioned (and spilled past the budget).
  int partitions = 0;
  int passes = 1;             // reads of the keys and times (kPasses: one per group of entity rows)
  int64_t bytes_spilled = 0;  // written to spill files
  int64_t rows_matched = 0;   // entity rows that got a feature row
  // Row groups the gather pass left unread (in each of its reads): none of their rows was chosen.
  int64_t row_groups_skipped = 0;
  // Row groups the gather pass read in gather mode, only their chosen rows' values decoded
  // (SourceScanOptions::chosen_rows), in each of its reads.
  int64_t row_groups_picked = 0;
  // Reads of the features in the gather pass: one per group of output columns.
  int gather_reads = 0;
  // The most bytes the gather pass held at once: its list of chosen rows, the order array of
  // the columns put in entity order by a Take, and the output columns of the group being
  // gathered (counted at their full size from the start).
  int64_t gather_held_bytes = 0;
  // The match pass ran on a thread of its own beside the previous view's gather pass
  // (MatchAhead; the retrieval sets it).
  bool matched_ahead = false;
};

// One chunk of feature rows as the matcher sees it. Each row has an index in the read order:
// `row_index[i]` (int64, ascending across all chunks) when given, else `index_offset + i`.
struct FeatureRowsView {
  const KeyColumns* keys;
  const arrow::Array* event_ts;    // timestamp[us, UTC], never null (the scan drops those)
  const arrow::Array* created_ts;  // timestamp[us, UTC] or null when the source has none
  int64_t index_offset = 0;
  const arrow::Array* row_index = nullptr;
};

// A feature row chosen for an entity row: its index in the read order (-1: none; the join's are
// FeatureSourceScan::positions) and its event time in microseconds (materialization's second
// read checks it).
struct ChosenRow {
  int64_t index = -1;
  int64_t event_ts = 0;
};

// How MatchPointInTime pairs the entity rows with the feature rows, both ways choosing the same
// rows. Either way the feature rows become 32-byte records sorted by (key hash, event time,
// created time, read position) in buckets of the hash.
//  - kSweep: the entity rows become records too (24 bytes, written twice while bucketed: 48 bytes
//    an entity row at once, besides the result's 16), sorted by (key hash, time) and swept
//    beside the feature records. For more feature rows than entity rows.
//  - kLookUp: each entity row looks its key up among the feature records (a binary search in its
//    bucket) and walks back from its time; the entity rows are hashed a block at a time, so
//    nothing is held per entity row but the result. For a source with at most as many usable
//    rows as there are entity rows (a small view, one row per key, joined to many entity rows),
//    whose records stay in the cache.
//  - kAuto: kLookUp when the source's usable rows are at most the entity rows, else kSweep.
enum class MatchWay { kAuto, kSweep, kLookUp };

// The matching step alone: for each entity row, the feature row that the rules choose. Entity
// rows with a null key or time get none. `ttl` 0 means no lower bound. Runs on `threads` threads
// (0: every core). Exposed for tests and benchmarks.
Result<std::vector<ChosenRow>> MatchPointInTime(const KeyColumns& entity_keys,
                                                const arrow::Array& entity_ts,
                                                const std::vector<FeatureRowsView>& features,
                                                Duration ttl, bool created_timestamp_cutoff,
                                                int threads, MatchWay way = MatchWay::kAuto);

// What to read for one view: the source of `view` (resolved against `repo_root`), over
// `options`' time range and features. The join sets the with_* columns of each pass itself.
struct ViewSource {
  std::filesystem::path repo_root;
  const Definitions* defs = nullptr;
  const FeatureView* view = nullptr;
  SourceScanOptions options;
};

// Joins one feature view to the entity rows. `entities` has the view's join key columns (named and
// typed as the entities declare) and `event_timestamp` (timestamp[us, UTC]). Returns one column
// per requested feature, in order, with exactly one value per entity row, in the entities' order
// (null when no feature row qualifies). Both passes read the files listed (the Delta version
// replayed) once at the start, so files added or commits made meanwhile are not seen; if a file
// read is rewritten or removed between the passes, the join fails rather than mixing versions.
Result<std::vector<std::shared_ptr<arrow::ChunkedArray>>> PointInTimeJoin(
    const arrow::RecordBatch& entities, const ViewSource& source, const JoinOptions& options,
    ViewJoinStats* stats);

// Which matches MatchAhead runs.
enum class MatchAheadIf {
  kAlways,
  // Only a match that streams with the entity side `options.entity_side` already holds (built
  // by an earlier view's match over the same entity key and time arrays): its memory is then
  // the entity side, held anyway, the list of chosen rows and the read's buffers.
  kSharedEntitySide,
};

// The match pass of PointInTimeJoin(entities, source, options) alone, for that join to take
// (JoinOptions::matched), so that other work can run between the two passes or beside the
// match: the retrieval runs a view's match pass on a thread of its own while the view before it
// is gathered (historical.h). Returns null, having read no row, when `run_if` excludes the
// match (the join then matches itself). Thread-safe as PointInTimeJoin is: the entity side
// cache, if given, must not be used by another thread meanwhile.
Result<MatchedViewPtr> MatchAhead(const arrow::RecordBatch& entities, const ViewSource& source,
                                  const JoinOptions& options, MatchAheadIf run_if);

// Takes a group of a view's output columns as soon as the gather pass has them: `first` is the
// index (among the requested features) of the first of `columns`, which are consecutive
// features, each one value per entity row in the entities' order. Called in feature order, each
// feature once. An error stops the join and is returned by it.
using GatheredColumnsSink =
    std::function<Status(int first, std::vector<std::shared_ptr<arrow::ChunkedArray>> columns)>;

// PointInTimeJoin, the columns handed to `sink` in groups rather than returned together: each
// group is gathered by one read of its features, and holds as many consecutive columns as fit,
// beside the gather's list of chosen rows, in `options.memory_budget_bytes` (at least one
// column). The columns are the ones PointInTimeJoin returns.
Status PointInTimeJoinInto(const arrow::RecordBatch& entities, const ViewSource& source,
                           const JoinOptions& options, const GatheredColumnsSink& sink,
                           ViewJoinStats* stats);

}  // namespace granary
