// RegistryWatcher: the feature server's view of the registry, kept current while it serves.
//
// Requests read an immutable ServingSnapshot (the applied definitions, their online layouts, the
// resolved features and the GET /registry body) through Current(): a shared_ptr copy under a lock
// held for that copy only (libstdc++'s atomic<shared_ptr> is a lock bit too, and one
// ThreadSanitizer cannot follow). A background thread learns of a new version in one of two ways: a
// PostgreSQL registry announces each commit (LISTEN/NOTIFY on a connection of the watcher's own),
// and the thread also asks for the newest version number every poll_interval (SQLite: that is the
// only way; PostgreSQL: the fallback, every 10 poll intervals while the feed is up, every one while
// it is down). After a `granary apply` it loads the new definitions, builds the next snapshot and
// swaps it in. The registry down (PostgreSQL stopped, unreachable): the server keeps serving its
// snapshot; registry_error() says why it cannot check (/health reports "degraded"), and the watcher
// reconnects by itself. Requests that started on the old snapshot finish on it (they hold a
// reference). A version that fails to load (unreadable, or definitions the server cannot serve)
// keeps the old snapshot; the error is logged once per version and counted
// (granary_registry_reloads_total{outcome="failure"}).
//
// Thread-safe: Current() from any thread; Poll() is serialized internally.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "granary/common/metrics.h"
#include "granary/common/mutex.h"
#include "granary/common/result.h"
#include "granary/online/online_store.h"
#include "granary/registry/registry_store.h"
#include "granary/serving/online_features.h"

namespace granary {

// One applied version, ready to serve. Immutable.
struct ServingSnapshot {
  RegistryVersionInfo info;
  std::unique_ptr<OnlineFeaturesService> online;  // definitions, layouts, resolved features
  std::string registry_json;                      // GET /registry

  const Definitions& definitions() const { return online->definitions(); }
};

// Builds the snapshot of one version; InvalidArgument when its views cannot be laid out.
Result<std::shared_ptr<const ServingSnapshot>> MakeServingSnapshot(RegistryVersion version,
                                                                   OnlineStore* store,
                                                                   Duration default_key_ttl);

struct RegistryWatcherOptions {
  RegistryLocation registry;
  OnlineStore* store = nullptr;  // not owned; outlives the watcher
  Duration default_key_ttl;      // online_store.key_ttl
  // How often the background thread checks for a new version; 0: no thread (tests call Poll).
  std::chrono::milliseconds poll_interval{1000};
  MetricsRegistry* metrics = &MetricsRegistry::Default();
};

class RegistryWatcher {
 public:
  // Opens the registry and loads its newest version. FailedPrecondition when nothing was applied
  // yet (run granary apply), or the error of loading it.
  static Result<std::unique_ptr<RegistryWatcher>> Start(RegistryWatcherOptions options);
  ~RegistryWatcher();  // stops and joins the polling thread
  RegistryWatcher(const RegistryWatcher&) = delete;
  RegistryWatcher& operator=(const RegistryWatcher&) = delete;

  // The snapshot to serve a request with.
  std::shared_ptr<const ServingSnapshot> Current() const EXCLUDES(current_mu_) {
    MutexLock lock(&current_mu_);
    return current_;
  }

  // Checks for a newer version now and swaps it in. OK when nothing changed or the reload worked;
  // the error otherwise (the old snapshot stays).
  Status Poll() EXCLUDES(poll_mu_);

  // Why the last check of the registry failed (it could not be read, or its newest version could
  // not be loaded); empty when it succeeded. Thread-safe.
  std::string registry_error() const;
  // Whether new versions are announced to this watcher (a PostgreSQL LISTEN that is up).
  bool listening() const { return listening_.load(std::memory_order_relaxed); }

 private:
  explicit RegistryWatcher(RegistryWatcherOptions options);
  void Run();
  Status Reload() REQUIRES(poll_mu_);
  void PublishError() REQUIRES(poll_mu_);  // copies last_error_ for registry_error()

  const RegistryWatcherOptions options_;
  void Publish(std::shared_ptr<const ServingSnapshot> snapshot) EXCLUDES(current_mu_);

  mutable Mutex current_mu_;
  std::shared_ptr<const ServingSnapshot> current_ GUARDED_BY(current_mu_);
  Counter* reload_success_ = nullptr;
  Counter* reload_failure_ = nullptr;
  Gauge* version_gauge_ = nullptr;

  mutable Mutex poll_mu_;                     // serializes Poll()
  std::unique_ptr<RegistryChangeFeed> feed_;  // owned by the thread; null while down or SQLite
  std::atomic<bool> listening_{false};
  bool registry_can_listen_ = true;  // owned by the thread: false once WatchChanges gave none
  std::unique_ptr<RegistryStore> registry_ GUARDED_BY(poll_mu_);
  int64_t failed_version_ GUARDED_BY(poll_mu_) = 0;  // last version that failed
  std::string last_error_ GUARDED_BY(poll_mu_);
  // A copy of last_error_ for registry_error(), which must not wait behind a slow Poll.
  mutable Mutex error_mu_ ACQUIRED_AFTER(poll_mu_);
  std::string published_error_ GUARDED_BY(error_mu_);

  Mutex stop_mu_;
  CondVar stop_cv_;
  bool stop_ GUARDED_BY(stop_mu_) = false;
  std::thread thread_;
};

}  // namespace granary
