// Training-set retrieval (get_historical_features): entity rows in, the point-in-time-correct
// feature values of each row out, as an Arrow table. Semantics: docs/POINT_IN_TIME.md.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "granary/common/result.h"
#include "granary/offline/pit_join.h"
#include "granary/registry/definitions.h"
#include "granary/registry/repo_config.h"
#include "granary/types/feature_ref.h"

namespace arrow {
class Table;
}

namespace granary {

struct HistoricalRequest {
  // The entity rows: the join keys of every requested view, and the entity time: the column
  // `event_timestamp`, or else the only timestamp (or date) column; strings in ISO 8601 are
  // parsed. Other columns pass through unchanged.
  std::shared_ptr<arrow::Table> entities;
  // What the entity rows are called in error messages: the file they came from, when they did.
  std::string entities_name = "entity rows";
  // Either features ("view:feature") or a feature service's name.
  std::vector<FeatureRef> features;
  std::string feature_service;
  // Name output columns "view__feature" instead of "feature".
  bool full_feature_names = false;
  // Ignore feature rows whose created timestamp is after the entity row's time.
  bool created_timestamp_cutoff = false;
  // Bytes of memory for the whole retrieval: entity rows, output and each view's join (which
  // spills past its share). At least a quarter of it always goes to the join.
  int64_t memory_budget_bytes = kDefaultMemoryBudget;
  int threads = 0;                  // 0: every core
  std::filesystem::path spill_dir;  // empty: the system's temp dir
  bool show_progress = false;       // a Progress line per view on stderr
  // Polled between batches, partitions and views; once set, the retrieval stops and returns
  // kCancelled (Ctrl-C in Python). Not owned; may be null.
  const CancelFlag* cancel = nullptr;
};

struct HistoricalStats {
  struct View {
    std::string name;
    ViewJoinStats join;
  };
  std::vector<View> views;
  // Estimated bytes of the entity rows plus the output columns, which stay in memory whatever
  // the budget (the result is one table).
  int64_t resident_bytes = 0;
};

// The requested features resolved to (view, features) in request order, with their output column
// names; InvalidArgument for an unknown view, feature or service (with "did you mean"), and for
// two features that would get the same output name (naming both views).
struct ResolvedFeatures {
  struct ViewFeatures {
    const FeatureView* view;
    std::vector<std::string> features;
    std::vector<std::string> output_names;
  };
  std::vector<ViewFeatures> views;
};
Result<ResolvedFeatures> ResolveFeatures(const Definitions& defs, const HistoricalRequest& request);

// Output: every entity column in order (the entity time as timestamp[UTC]), then the features in
// the requested order. Exactly one output row per entity row, in the entities' order, duplicates
// included. Sources resolve against config.root.
Result<std::shared_ptr<arrow::Table>> GetHistoricalFeatures(const RepoConfig& config,
                                                            const Definitions& defs,
                                                            const HistoricalRequest& request,
                                                            HistoricalStats* stats = nullptr);

}  // namespace granary
