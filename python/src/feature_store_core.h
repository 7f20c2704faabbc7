// FeatureStoreCore: the native side of granary.FeatureStore (python/granary/feature_store.py): one
// repository's config, its registry and, once an online lookup asks for it, its online store.
//
// Definitions are read from the registry's latest version and cached; Definitions(true) first
// asks the registry whether a newer version exists (one SQLite query). The online store is opened
// on first use and kept until Close(). The embedded RocksDB store admits one writing process (a
// running `granary serve` may be it), so lookups use a read-only instance that follows the
// writer, and only a push opens (and keeps) the store for writing; materialize() hands its run
// to a running server, or opens the store for the run alone (serving/materialize_handoff.h).
//
// Thread-safe: Python may call from several threads (the GIL is released during C++ work). Long
// work (a training set) runs on snapshots (shared_ptr) taken under the mutex, not under it.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "granary/common/result.h"
#include "granary/offline/offline_engine.h"
#include "granary/online/online_store.h"
#include "granary/registry/apply.h"
#include "granary/registry/registry_store.h"
#include "granary/registry/repo_config.h"
#include "granary/serving/online_features.h"

namespace granary::python {

class FeatureStoreCore {
 public:
  // Loads <repo>/granary.yaml; the registry need not exist yet.
  static Result<std::unique_ptr<FeatureStoreCore>> Open(const std::filesystem::path& repo);

  const RepoConfig& config() const { return config_; }

  // The latest applied definitions and their version. FailedPrecondition when nothing was applied
  // (or the registry file does not exist). `check_for_newer`: ask the registry first.
  struct Applied {
    std::shared_ptr<const Definitions> definitions;
    int64_t version = 0;
  };
  Result<Applied> Latest(bool check_for_newer);

  // `granary plan` / `granary apply`; an apply refreshes the cached definitions.
  Result<ApplyOutcome> PlanOrApply(ApplyMode mode, std::vector<std::string>* warnings);

  // The online store (read-only) and the get-online-features service over the cached
  // definitions, opened on first use. The service borrows the store; keep the pair together.
  struct Online {
    std::shared_ptr<OnlineStore> store;
    std::shared_ptr<const OnlineFeaturesService> service;
  };
  Result<Online> OnlineService();

  // The online store for writing (push), opened on first use and kept until Close(). With Redis,
  // the store of OnlineService().
  Result<std::shared_ptr<OnlineStore>> WritableStore();
  // The writable store if one is open already, else null (materialize then opens its own).
  std::shared_ptr<OnlineStore> OpenWritableStore();

  // The offline engine of offline_store with its default options (pushes to offline, apply's
  // source checks), opened on first use and kept until Close(). Training sets open their own,
  // with the call's memory budget.
  Result<std::shared_ptr<OfflineEngine>> Offline();

  // Closes the online stores (releases the RocksDB lock once calls in flight finish) and the
  // registry. Later calls open them again.
  void Close();

 private:
  explicit FeatureStoreCore(RepoConfig config) : config_(std::move(config)) {}
  Status OpenRegistryLocked();

  const RepoConfig config_;
  std::mutex mu_;
  std::unique_ptr<RegistryStore> registry_;  // guarded by mu_
  Applied applied_;                          // guarded by mu_
  Online online_;                            // guarded by mu_
  std::shared_ptr<OnlineStore> writer_;      // guarded by mu_; RocksDB only, for pushes
  std::shared_ptr<OfflineEngine> offline_;   // guarded by mu_
  int64_t online_version_ = 0;               // the definitions version online_.service uses
};

}  // namespace granary::python
