#include "granary/serving/registry_watcher.h"

#include <fmt/format.h>

#include "granary/serving/registry_json.h"
#include "granary/serving/server_log.h"

namespace granary {

Result<std::shared_ptr<const ServingSnapshot>> MakeServingSnapshot(RegistryVersion version,
                                                                   OnlineStore* store,
                                                                   Duration default_key_ttl) {
  auto snapshot = std::make_shared<ServingSnapshot>();
  snapshot->info = version.info;
  snapshot->registry_json = RegistryJson(version.info, version.definitions);
  auto definitions = std::make_shared<const Definitions>(std::move(version.definitions));
  GRANARY_ASSIGN_OR_RAISE(snapshot->online,
                          OnlineFeaturesService::Make(definitions, store, default_key_ttl));
  return std::shared_ptr<const ServingSnapshot>(std::move(snapshot));
}

RegistryWatcher::RegistryWatcher(RegistryWatcherOptions options) : options_(std::move(options)) {
  MetricsRegistry& m = *options_.metrics;
  constexpr std::string_view kHelp =
      "Registry versions loaded by the feature server after an apply, by outcome (a failure "
      "keeps the previous version serving).";
  reload_success_ =
      &m.GetCounter("granary_registry_reloads_total", kHelp, {{"outcome", "success"}});
  reload_failure_ =
      &m.GetCounter("granary_registry_reloads_total", kHelp, {{"outcome", "failure"}});
  version_gauge_ = &m.GetGauge("granary_registry_version",
                               "The registry version the feature server is serving.");
}

Result<std::unique_ptr<RegistryWatcher>> RegistryWatcher::Start(RegistryWatcherOptions options) {
  std::unique_ptr<RegistryWatcher> watcher(new RegistryWatcher(std::move(options)));
  GRANARY_ASSIGN_OR_RAISE(watcher->registry_, OpenSqliteRegistry(watcher->options_.registry_path,
                                                                 OpenMode::kOpenExisting));
  GRANARY_ASSIGN_OR_RAISE(auto latest, watcher->registry_->Latest());
  if (!latest.has_value()) {
    return Status::FailedPrecondition(
        fmt::format("{} holds no definitions yet; run 'granary apply' first",
                    watcher->options_.registry_path.string()));
  }
  GRANARY_ASSIGN_OR_RAISE(auto snapshot,
                          MakeServingSnapshot(std::move(*latest), watcher->options_.store,
                                              watcher->options_.default_key_ttl));
  watcher->version_gauge_->Set(static_cast<double>(snapshot->info.version));
  watcher->current_.store(std::move(snapshot), std::memory_order_release);
  if (watcher->options_.poll_interval.count() > 0) {
    watcher->thread_ = std::thread([w = watcher.get()] { w->Run(); });
  }
  return watcher;
}

RegistryWatcher::~RegistryWatcher() {
  {
    std::lock_guard lock(stop_mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void RegistryWatcher::Run() {
  std::unique_lock lock(stop_mu_);
  while (!stop_cv_.wait_for(lock, options_.poll_interval, [this] { return stop_; })) {
    lock.unlock();
    (void)Poll();  // errors are logged and counted by Poll
    lock.lock();
  }
}

Status RegistryWatcher::Poll() {
  std::lock_guard lock(poll_mu_);
  auto history = registry_->History(1);
  Status st = history.status();
  int64_t newest = 0;
  if (st.ok()) {
    if (history->empty()) return Status::OK();
    newest = history->front().version;
    if (newest == Current()->info.version) return Status::OK();
    st = Reload();
    if (st.ok()) return st;
  }
  reload_failure_->Increment();
  if (newest != failed_version_ || st.message() != last_error_) {
    ServerLog(fmt::format("registry: cannot load version {} of {}; still serving version {}: {}",
                          newest, options_.registry_path.string(), Current()->info.version,
                          st.message()));
    failed_version_ = newest;
    last_error_ = st.message();
  }
  return st;
}

Status RegistryWatcher::Reload() {
  GRANARY_ASSIGN_OR_RAISE(auto latest, registry_->Latest());
  if (!latest.has_value()) return Status::Corruption("the registry lost its versions");
  GRANARY_ASSIGN_OR_RAISE(auto snapshot, MakeServingSnapshot(std::move(*latest), options_.store,
                                                             options_.default_key_ttl));
  const int64_t old = Current()->info.version;
  const int64_t loaded = snapshot->info.version;
  version_gauge_->Set(static_cast<double>(loaded));
  current_.store(std::move(snapshot), std::memory_order_release);
  reload_success_->Increment();
  failed_version_ = 0;
  last_error_.clear();
  ServerLog(fmt::format("registry: now serving version {} (was {})", loaded, old));
  return Status::OK();
}

}  // namespace granary
