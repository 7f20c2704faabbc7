#include "feature_store_core.h"

#include <fmt/format.h>

#include "granary/common/clock.h"
#include "granary/offline/engine_factory.h"

namespace granary::python {

Result<std::unique_ptr<FeatureStoreCore>> FeatureStoreCore::Open(
    const std::filesystem::path& repo) {
  GRANARY_ASSIGN_OR_RAISE(RepoConfig config, LoadRepoConfig(repo));
  return std::unique_ptr<FeatureStoreCore>(new FeatureStoreCore(std::move(config)));
}

Status FeatureStoreCore::OpenRegistryLocked() {
  if (registry_ != nullptr) return Status::OK();
  if (!std::filesystem::exists(config_.RegistryPath())) {
    return Status::FailedPrecondition(
        fmt::format("no registry at {}: run FeatureStore.apply() (or 'granary apply') first",
                    config_.RegistryPath().string()));
  }
  GRANARY_ASSIGN_OR_RAISE(registry_,
                          OpenSqliteRegistry(config_.RegistryPath(), OpenMode::kOpenExisting));
  return Status::OK();
}

Result<FeatureStoreCore::Applied> FeatureStoreCore::Latest(bool check_for_newer) {
  std::lock_guard lock(mu_);
  if (applied_.definitions != nullptr && !check_for_newer) return applied_;
  GRANARY_RETURN_NOT_OK(OpenRegistryLocked());
  if (applied_.definitions != nullptr) {
    GRANARY_ASSIGN_OR_RAISE(auto history, registry_->History(1));
    if (!history.empty() && history[0].version == applied_.version) return applied_;
  }
  GRANARY_ASSIGN_OR_RAISE(auto latest, registry_->Latest());
  if (!latest) {
    return Status::FailedPrecondition(
        fmt::format("registry {} holds no version yet: run FeatureStore.apply() (or 'granary "
                    "apply') first",
                    config_.RegistryPath().string()));
  }
  applied_.definitions = std::make_shared<const Definitions>(std::move(latest->definitions));
  applied_.version = latest->info.version;
  return applied_;
}

Result<std::shared_ptr<OfflineEngine>> FeatureStoreCore::Offline() {
  std::lock_guard lock(mu_);
  if (offline_ == nullptr) {
    GRANARY_ASSIGN_OR_RAISE(std::unique_ptr<OfflineEngine> engine, OpenOfflineEngine(config_));
    offline_ = std::move(engine);
  }
  return offline_;
}

Result<ApplyOutcome> FeatureStoreCore::PlanOrApply(ApplyMode mode,
                                                   std::vector<std::string>* warnings) {
  GRANARY_ASSIGN_OR_RAISE(std::shared_ptr<OfflineEngine> engine, Offline());
  GRANARY_ASSIGN_OR_RAISE(
      ApplyOutcome outcome,
      granary::PlanOrApply(config_, engine.get(), mode, SystemClock::Default().Now(), warnings));
  if (mode == ApplyMode::kApply) {
    std::lock_guard lock(mu_);
    // The next Latest(true) reads the registry again (and sees this version or a newer one).
    applied_ = {};
  }
  return outcome;
}

Result<FeatureStoreCore::Online> FeatureStoreCore::OnlineService() {
  GRANARY_ASSIGN_OR_RAISE(Applied applied, Latest(/*check_for_newer=*/false));
  std::lock_guard lock(mu_);
  if (online_.service != nullptr && online_version_ == applied.version) return online_;
  if (online_.store == nullptr) {
    OnlineStoreOptions options;
    options.read_only = true;  // beside a server (or this process's writer_) that writes
    GRANARY_ASSIGN_OR_RAISE(auto store, OpenOnlineStore(config_, options));
    online_.store = std::move(store);
  }
  GRANARY_ASSIGN_OR_RAISE(auto service,
                          OnlineFeaturesService::Make(applied.definitions, online_.store.get(),
                                                      config_.online_store.key_ttl));
  online_.service = std::move(service);
  online_version_ = applied.version;
  return online_;
}

Result<std::shared_ptr<OnlineStore>> FeatureStoreCore::WritableStore() {
  if (config_.online_store.type != "rocksdb") {
    GRANARY_ASSIGN_OR_RAISE(Online online, OnlineService());
    return online.store;
  }
  std::lock_guard lock(mu_);
  if (writer_ == nullptr) {
    GRANARY_ASSIGN_OR_RAISE(auto store, OpenOnlineStore(config_));
    writer_ = std::move(store);
  }
  return writer_;
}

std::shared_ptr<OnlineStore> FeatureStoreCore::OpenWritableStore() {
  std::lock_guard lock(mu_);
  if (config_.online_store.type != "rocksdb") return online_.store;
  return writer_;
}

void FeatureStoreCore::Close() {
  Online closing;
  std::shared_ptr<OnlineStore> writer;
  std::unique_ptr<RegistryStore> registry;
  std::shared_ptr<OfflineEngine> offline;
  {
    std::lock_guard lock(mu_);
    offline = std::move(offline_);
    closing = std::move(online_);
    online_ = {};
    writer = std::move(writer_);
    registry = std::move(registry_);
    applied_ = {};
  }
  // Destroyed outside the lock; a call in flight keeps its own references.
}

}  // namespace granary::python
