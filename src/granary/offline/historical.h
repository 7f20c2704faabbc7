// The embedded engine's training-set retrieval (OfflineEngine::GetHistoricalFeatures): entity rows
// in, the point-in-time-correct feature values of each row out, as an Arrow table. Semantics:
// docs/POINT_IN_TIME.md.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "granary/common/cancel.h"
#include "granary/common/result.h"
#include "granary/offline/offline_engine.h"
#include "granary/offline/pit_join.h"
#include "granary/offline/table_io.h"
#include "granary/offline/training_set_output.h"
#include "granary/registry/definitions.h"
#include "granary/registry/repo_config.h"
#include "granary/types/feature_ref.h"

namespace arrow {
class Table;
}

namespace granary {

// The embedded engine's knobs for one retrieval.
struct HistoricalJoinOptions {
  // Bytes of memory for the whole retrieval: entity rows, output and each view's join (which
  // spills past its share). At least a quarter of it always goes to the join.
  int64_t memory_budget_bytes = kDefaultMemoryBudget;
  int threads = 0;                  // 0: every core
  std::filesystem::path spill_dir;  // empty: the system's temp dir
  // The training set's batches end at every multiple of this many rows (TrainingSetOutput): the
  // output file's row group, so that writing holds one row group of the spilled columns.
  int64_t output_slice_rows = kTableFileRowGroupRows;
  // Test hook: every view's match pass runs this plan (JoinOptions::TEST_force_plan).
  std::optional<MatchPlan> TEST_force_plan;
  // Test hook: JoinOptions::TEST_read_whole_row_groups for every view.
  bool TEST_read_whole_row_groups = false;
  // Test hook: run on the thread of a match run ahead (beside the previous view's gather) before
  // it starts, with the flag that stops it (set when the previous view's join fails or the
  // retrieval is cancelled); a test blocks there until the flag is set.
  std::function<void(const CancelFlag&)> TEST_before_match_ahead;
};

struct HistoricalStats {
  struct View {
    std::string name;
    ViewJoinStats join;          // join.rows_matched: the plain features' point-in-time join
    bool plain_features = true;  // false: only aggregations were asked of the view
    // Aggregations asked of the view: the longest of their windows (zero when none was) and the
    // entity rows with at least one event in it (WindowJoinStats::rows_with_events).
    Duration window;
    int64_t rows_with_events = 0;
    // Reads of the aggregations' events in time slices of the entity rows (0: one read).
    int time_slices = 0;
    // The view's output columns: their bytes, and whether they were spilled to disk until the
    // training set is written (else held in memory); `output_plan` says which and why, in words.
    int64_t output_bytes = 0;
    bool output_spilled = false;
    std::string output_plan;
  };
  std::vector<View> views;
  // Bytes held whatever the budget: the entity rows (read whole) plus the largest view's output
  // columns, which its join gathers whole before they are held or spilled.
  int64_t resident_bytes = 0;
  int64_t entity_bytes = 0;          // the entity rows' columns
  int64_t output_spilled_bytes = 0;  // views' columns spilled until written
};

// Output: every entity column in order (the entity time as timestamp[UTC]), then the features in
// the requested order. Exactly one output row per entity row, in the entities' order, duplicates
// included. Sources resolve against config.root.
// The embedded engine's implementation of OfflineEngine::GetHistoricalFeatures; entity rows given
// as SQL or a table are the caller's to refuse. The views are joined one after the other, but
// that the next view's match pass runs on a thread of its own beside a view's gather pass when
// both views' columns are held and the next one streams with the entity side the first kept
// (MatchAhead, pit_join.h; HistoricalStats::View::join.matched_ahead; when that view's join
// fails, the match ahead is stopped, not waited for, and the retrieval returns the join's error);
// each view's columns are then held in memory, or, when the entity rows and the columns held with
// them would pass half the memory budget, spilled to disk until they are read back one slice at a
// time (TrainingSetOutput). `stats` may be null.
Result<std::unique_ptr<TrainingSetOutput>> BuildHistoricalFeatures(
    const std::filesystem::path& repo_root, const Definitions& defs,
    const HistoricalRequest& request, const HistoricalJoinOptions& options,
    HistoricalStats* stats = nullptr);

// The same training set as one table (every batch of BuildHistoricalFeatures' output read).
Result<std::shared_ptr<arrow::Table>> JoinHistoricalFeatures(const std::filesystem::path& repo_root,
                                                             const Definitions& defs,
                                                             const HistoricalRequest& request,
                                                             const HistoricalJoinOptions& options,
                                                             HistoricalStats* stats = nullptr);

}  // namespace granary
