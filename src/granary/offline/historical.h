// The embedded engine's training-set retrieval (OfflineEngine::GetHistoricalFeatures): entity rows
// in, the point-in-time-correct feature values of each row out, as an Arrow table. Semantics:
// docs/POINT_IN_TIME.md.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "granary/common/result.h"
#include "granary/offline/offline_engine.h"
#include "granary/offline/pit_join.h"
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
  // Test hook: every view's match pass runs this plan (JoinOptions::TEST_force_plan).
  std::optional<MatchPlan> TEST_force_plan;
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
  };
  std::vector<View> views;
  // Estimated bytes of the entity rows plus the output columns, which stay in memory whatever
  // the budget (the result is one table).
  int64_t resident_bytes = 0;
};

// Output: every entity column in order (the entity time as timestamp[UTC]), then the features in
// the requested order. Exactly one output row per entity row, in the entities' order, duplicates
// included. Sources resolve against config.root.
// The embedded engine's implementation of OfflineEngine::GetHistoricalFeatures, whole; entity
// rows given as SQL or a table are the caller's to refuse.
Result<std::shared_ptr<arrow::Table>> JoinHistoricalFeatures(const std::filesystem::path& repo_root,
                                                             const Definitions& defs,
                                                             const HistoricalRequest& request,
                                                             const HistoricalJoinOptions& options,
                                                             HistoricalStats* stats = nullptr);

}  // namespace granary
