// Whether the online store still holds what each view's watermark promises, by the view markers
// materialization keeps in the store itself (online_store.h, "View markers"; docs/OPERATIONS.md,
// "Lost online data").
//
// A view is checked when its watermark, under its current layout, was set by a run that wrote a
// marker (WatermarkState::online_marker). It is lost on a shard whose markers lack it, carry
// another layout, or promise less than the watermark: that shard's data is gone (FLUSHALL, a
// Redis without persistence restarting, a cluster master back empty, a RocksDB folder deleted).
// Markers are written before the watermark moves, so a marker ahead of the watermark is normal
// (a run that failed to record its end). `granary status`, the feature server's /health and
// /metrics report the result; every materialize-incremental checks its views first and reloads
// the lost ones over their ttl window.
//
// Plain functions; thread-safe as the store is (the registry states are passed in).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "granary/common/result.h"
#include "granary/online/online_store.h"
#include "granary/registry/definitions.h"
#include "granary/registry/registry_store.h"
#include "granary/registry/repo_config.h"

namespace granary {

struct ViewDataCheck {
  enum class State {
    kNotChecked,  // nothing promised yet, no marker kept, or the markers could not be read
    kIntact,      // every shard holds a marker that keeps the watermark's promise
    kLost,        // some shard does not
  };
  std::string view;
  State state = State::kNotChecked;
  std::vector<std::string> lost_shards;  // kLost: the shards that lost it, in store order
  int shards = 0;                        // shards checked
  bool markers_unreadable = false;       // kNotChecked because the markers could not be read
  // kLost: what was found, naming the shards ("no marker on 127.0.0.1:7001 (of 3 shards)");
  // kNotChecked: why not.
  std::string reason;
};

// "not_checked", "intact", "lost".
std::string_view ViewDataStateName(ViewDataCheck::State state);

// Checks `views` (their layout tags in `layout_tags`, same order) against `states` (the
// registry's watermarks) and `markers` (OnlineStore::ReadViewMarkers; an error makes every view
// kNotChecked, naming it).
std::vector<ViewDataCheck> CheckViewMarkers(const std::vector<std::string>& views,
                                            const std::vector<std::string>& layout_tags,
                                            const std::map<std::string, WatermarkState>& states,
                                            const Result<std::vector<ShardMarkers>>& markers);

// The same for every online view of `defs`, reading the markers from `store` and the watermarks
// from `registry`. Errors only when the registry cannot be read.
Result<std::vector<ViewDataCheck>> CheckOnlineData(RegistryStore& registry, const Definitions& defs,
                                                   const RepoConfig& config, OnlineStore& store);

}  // namespace granary
