#include "granary/materialize/view_status.h"

#include "granary/materialize/interval.h"
#include "granary/materialize/repository_lock.h"
#include "granary/online/view_layout.h"

namespace granary {

bool RunWasInterrupted(const MaterializationRun& run,
                       const std::optional<std::string>& lock_holder) {
  if (run.status != RunStatus::kRunning) return false;
  // An empty token is nobody's: a holder that has not written its note yet, or a run recorded
  // before tokens were kept.
  return !lock_holder || lock_holder->empty() || run.lock_token != *lock_holder;
}

Result<std::vector<ViewStatus>> CollectViewStatus(RegistryStore& registry,
                                                  const std::vector<std::string>& views,
                                                  const std::vector<std::string>& layout_tags,
                                                  const std::optional<std::string>& lock_holder,
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
        s.newest_event = it->second.newest_event;
        if (s.newest_event) s.data_age = now - *s.newest_event;
        s.online_marker = it->second.online_marker;
      } else {
        s.layout_changed = true;
        s.stale_watermark = it->second.watermark;
      }
    }
    // Enough history for the rate and, usually, the last success.
    GRANARY_ASSIGN_OR_RAISE(auto runs, registry.Runs(s.view, std::max(recent, 1) + 50));
    bool failures_counted = false;
    for (MaterializationRun& run : runs) {
      if (RunWasInterrupted(run, lock_holder)) {
        run.status = RunStatus::kFailed;
        run.error =
            "interrupted: the process running it is gone (a crash or kill -9); the watermark was "
            "not advanced";
      }
      if (run.status == RunStatus::kFailed && !failures_counted) ++s.consecutive_failures;
      if (run.status == RunStatus::kSucceeded) failures_counted = true;
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

bool IsFailing(const ViewStatus& status, int max_failures) {
  return status.consecutive_failures > max_failures;
}

Result<std::vector<ViewStatus>> CollectOnlineViewStatus(RegistryStore& registry,
                                                        const Definitions& defs,
                                                        const RepoConfig& config, Timestamp now,
                                                        int recent) {
  const OnlineStoreConfig& store = config.online_store;
  GRANARY_ASSIGN_OR_RAISE(ViewLayouts layouts, MakeViewLayouts(defs, store.key_ttl));
  std::vector<std::string> views, tags;
  std::vector<bool> pushed;
  for (const FeatureView& v : defs.feature_views) {
    if (!v.online) continue;
    views.push_back(v.name);
    tags.push_back(LayoutTag(*layouts.at(v.name), store));
    const DataSource* source = defs.FindDataSource(v.source);
    pushed.push_back(source != nullptr && source->is_push());
  }
  GRANARY_ASSIGN_OR_RAISE(auto holder, RepositoryLock::CurrentHolder(config.Registry()));
  GRANARY_ASSIGN_OR_RAISE(auto out, CollectViewStatus(registry, views, tags, holder, now, recent));
  GRANARY_ASSIGN_OR_RAISE(auto pushes, registry.Pushes());
  for (size_t v = 0; v < out.size(); ++v) {
    ViewStatus& s = out[v];
    s.push_view = pushed[v];
    if (!s.push_view) continue;
    if (auto it = pushes.find(s.view); it != pushes.end()) {
      s.push = it->second;
      if (!s.watermark || *s.watermark < s.push->last_push_at) {
        s.staleness = now - s.push->last_push_at;
      }
    }
  }
  return out;
}

}  // namespace granary
