// The materialization state of each online view, for `granary status`, the metrics collector
// (materialize_metrics.h) and the feature server: watermark, staleness, last run, success rate.
// Read from the registry only; writes nothing. Plain functions; thread-safe (the registry
// instance passed in belongs to the calling thread).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "granary/common/result.h"
#include "granary/common/time.h"
#include "granary/registry/definitions.h"
#include "granary/registry/registry_store.h"
#include "granary/registry/repo_config.h"

namespace granary {

struct ViewStatus {
  std::string view;
  // The watermark, when reached under the view's current layout.
  std::optional<Timestamp> watermark;
  // A watermark exists under another layout: the view's schema changed since (its online values
  // read as NOT_FOUND until the next run, which starts it over).
  bool layout_changed = false;
  std::optional<Timestamp> stale_watermark;  // that other layout's watermark, for messages
  // now - watermark; unset without a valid watermark (infinitely stale).
  std::optional<Duration> staleness;
  // The newest run. A run still marked running whose process is gone (a crash, kill -9) is shown
  // as failed, as the next run will record it.
  std::optional<MaterializationRun> last_run;
  std::optional<MaterializationRun> last_finished;  // the newest run not running
  std::optional<MaterializationRun> last_success;
  bool running = false;  // a run is in progress now
  int recent_runs = 0;   // finished runs among the last N
  int recent_succeeded = 0;
};

// Whether `run`, marked running, belongs to a process of this host that no longer exists.
bool RunWasInterrupted(const MaterializationRun& run);

// The status of each view in `views` (their layout tags in `layout_tags`, same order), with the
// success rate over each view's last `recent` finished runs.
Result<std::vector<ViewStatus>> CollectViewStatus(RegistryStore& registry,
                                                  const std::vector<std::string>& views,
                                                  const std::vector<std::string>& layout_tags,
                                                  Timestamp now, int recent);

// The same for every online view of `defs` (in definition order), each with its layout tag in
// `store` (interval.h's LayoutTag): what `granary status`, the metrics and the SDK show.
Result<std::vector<ViewStatus>> CollectOnlineViewStatus(RegistryStore& registry,
                                                        const Definitions& defs,
                                                        const OnlineStoreConfig& store,
                                                        Timestamp now, int recent);

// Whether a view is older than `max_staleness` (a view never materialized is).
bool IsStale(const ViewStatus& status, Duration max_staleness);

}  // namespace granary
