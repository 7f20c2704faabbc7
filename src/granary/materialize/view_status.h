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
  // The newest event time materialized online under the current layout, and now minus it: how
  // old the freshest data the store holds is (a watermark can be recent over an old source).
  std::optional<Timestamp> newest_event;
  std::optional<Duration> data_age;
  // The watermark's run wrote an online marker, so the store can be checked against it.
  bool online_marker = false;
  // The view reads a push source: rows also arrive by push (the feature server's POST /push),
  // recorded in `push` once pushed. Its staleness is then now minus the later of the watermark and
  // the last push.
  bool push_view = false;
  std::optional<PushRecord> push;
  // The newest run. A run still marked running whose process no longer holds the repository lock
  // (a crash, kill -9) is shown as failed, as the next run will record it.
  std::optional<MaterializationRun> last_run;
  std::optional<MaterializationRun> last_finished;  // the newest run not running
  std::optional<MaterializationRun> last_success;
  bool running = false;  // a run is in progress now
  int recent_runs = 0;   // finished runs among the last N
  int recent_succeeded = 0;
  // The newest finished runs that failed, in a row (0 when the newest finished run succeeded);
  // counted over the history read (`recent` + 50 runs) at most.
  int consecutive_failures = 0;
};

// Whether `run`, marked running, was cut off: its process does not hold the repository lock
// under the run's token. `lock_holder` is RepositoryLock::CurrentHolder's answer.
bool RunWasInterrupted(const MaterializationRun& run,
                       const std::optional<std::string>& lock_holder);

// The status of each view in `views` (their layout tags in `layout_tags`, same order), with the
// success rate over each view's last `recent` finished runs; `lock_holder` as above.
Result<std::vector<ViewStatus>> CollectViewStatus(RegistryStore& registry,
                                                  const std::vector<std::string>& views,
                                                  const std::vector<std::string>& layout_tags,
                                                  const std::optional<std::string>& lock_holder,
                                                  Timestamp now, int recent);

// The same for every online view of `defs` (in definition order), each with its layout tag in
// the repository's online store (interval.h's LayoutTag), probing the repository lock of
// `config`: what `granary status`, the metrics and the SDK show.
Result<std::vector<ViewStatus>> CollectOnlineViewStatus(RegistryStore& registry,
                                                        const Definitions& defs,
                                                        const RepoConfig& config, Timestamp now,
                                                        int recent);

// Whether a view is older than `max_staleness` (a view never materialized is).
bool IsStale(const ViewStatus& status, Duration max_staleness);

// Whether a view's newest runs failed more than `max_failures` times in a row.
bool IsFailing(const ViewStatus& status, int max_failures);

}  // namespace granary
