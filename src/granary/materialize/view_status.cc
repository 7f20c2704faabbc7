#include "granary/materialize/view_status.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include "granary/materialize/interval.h"
#include "granary/materialize/repository_lock.h"
#include "granary/online/view_layout.h"

namespace granary {

bool RunWasInterrupted(const MaterializationRun& run) {
  if (run.status != RunStatus::kRunning || run.host != ThisHost()) return false;
  if (run.pid == getpid()) return false;
  return kill(static_cast<pid_t>(run.pid), 0) != 0 && errno == ESRCH;
}

Result<std::vector<ViewStatus>> CollectViewStatus(RegistryStore& registry,
                                                  const std::vector<std::string>& views,
                                                  const std::vector<std::string>& layout_tags,
                                                  Timestamp now, int recent) {
  GRANARY_ASSIGN_OR_RAISE(auto states, registry.WatermarkStates());
  std::vector<ViewStatus> out;
  for (size_t v = 0; v < views.size(); ++v) {
    ViewStatus s;
    s.view = views[v];
    if (auto it = states.find(s.view); it != states.end()) {
      if (it->second.layout == layout_tags[v]) {
        s.watermark = it->second.watermark;
        s.staleness = now - it->second.watermark;
      } else {
        s.layout_changed = true;
        s.stale_watermark = it->second.watermark;
      }
    }
    // Enough history for the rate and, usually, the last success.
    GRANARY_ASSIGN_OR_RAISE(auto runs, registry.Runs(s.view, std::max(recent, 1) + 50));
    for (MaterializationRun& run : runs) {
      if (RunWasInterrupted(run)) {
        run.status = RunStatus::kFailed;
        run.error =
            "interrupted: the process running it is gone (a crash or kill -9); the watermark was "
            "not advanced";
      }
      if (run.status == RunStatus::kRunning) s.running = true;
      if (!s.last_run) s.last_run = run;
      if (!s.last_finished && run.status != RunStatus::kRunning) s.last_finished = run;
      if (run.status != RunStatus::kRunning && s.recent_runs < recent) {
        ++s.recent_runs;
        if (run.status == RunStatus::kSucceeded) ++s.recent_succeeded;
      }
      if (!s.last_success && run.status == RunStatus::kSucceeded) s.last_success = run;
    }
    out.push_back(std::move(s));
  }
  return out;
}

bool IsStale(const ViewStatus& status, Duration max_staleness) {
  return !status.staleness || *status.staleness > max_staleness;
}

Result<std::vector<ViewStatus>> CollectOnlineViewStatus(RegistryStore& registry,
                                                        const Definitions& defs,
                                                        const OnlineStoreConfig& store,
                                                        Timestamp now, int recent) {
  GRANARY_ASSIGN_OR_RAISE(ViewLayouts layouts, MakeViewLayouts(defs, store.key_ttl));
  std::vector<std::string> views, tags;
  for (const FeatureView& v : defs.feature_views) {
    if (!v.online) continue;
    views.push_back(v.name);
    tags.push_back(LayoutTag(*layouts.at(v.name), store));
  }
  return CollectViewStatus(registry, views, tags, now, recent);
}

}  // namespace granary
