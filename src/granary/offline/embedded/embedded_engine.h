// EmbeddedEngine: the offline engine that runs in this process (offline_store type: file).
//
// Reads Parquet, CSV and Delta Lake sources by path (FeatureSourceScan: files, folders, globs,
// hive partitions, Delta log replay with deletion vectors), joins them point-in-time in bounded
// memory (pit_join.h; spilling to local files past the budget) and appends pushed rows as new
// files or Delta commits (source_append.h). Sources given as `table:` or `query:` need a SQL
// engine: they are refused with kNotImplemented naming offline_store type spark.
//
// Latest rows run in two passes over the source: the first reads join keys and times and picks
// each entity's row by its read position (latest_rows.h: a hash table per entity, or partitions
// spilled past the budget); the stream then re-reads the source with the features and keeps
// exactly those positions. If the source changed in between (files added, removed or rewritten),
// Next() fails with FailedPrecondition rather than return rows of two versions.
//
// Thread-safe (offline_engine.h); each call works on its own state.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "granary/offline/offline_engine.h"

namespace granary {

// 2 GiB: the default memory budget of training-set retrieval.
inline constexpr int64_t kDefaultMemoryBudget = int64_t{2} << 30;

struct EmbeddedEngineOptions {
  // Bytes of memory for one call: a training set's entity rows, output and join state (past
  // it, the join spills), or the first pass of latest rows (past it, partitioned and spilled).
  int64_t memory_budget_bytes = kDefaultMemoryBudget;
  // How the budget was given, for warnings ("--memory-budget 2GiB"); empty: "the memory budget
  // (N MiB)".
  std::string memory_budget_name;
  int threads = 0;                  // join threads; 0: every core
  std::filesystem::path spill_dir;  // empty: the system's temp dir
  // Test hook (production leaves it 0): split the first pass of latest rows this many ways even
  // when it fits in memory.
  int TEST_force_partitions = 0;
};

// The embedded engine over the repository at `repo_root` (relative source paths resolve there).
std::unique_ptr<OfflineEngine> MakeEmbeddedEngine(std::filesystem::path repo_root,
                                                  EmbeddedEngineOptions options = {});

}  // namespace granary
