#include "granary/serving/registry_watcher.h"

#include <fmt/format.h>

#include <algorithm>

#include "granary/registry/registry_factory.h"
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
  // No other thread yet; the lock only lets the analysis see registry_ read under poll_mu_.
  MutexLock lock(&watcher->poll_mu_);
  GRANARY_ASSIGN_OR_RAISE(watcher->registry_,
                          OpenRegistry(watcher->options_.registry, OpenMode::kOpenExisting));
  GRANARY_ASSIGN_OR_RAISE(RegistryVersion latest, LatestApplied(*watcher->registry_));
  GRANARY_ASSIGN_OR_RAISE(auto snapshot,
                          MakeServingSnapshot(std::move(latest), watcher->options_.store,
                                              watcher->options_.default_key_ttl));
  watcher->version_gauge_->Set(static_cast<double>(snapshot->info.version));
  watcher->Publish(std::move(snapshot));
  lock.Unlock();
  if (watcher->options_.poll_interval.count() > 0) {
    watcher->thread_ = std::thread([w = watcher.get()] { w->Run(); });
  }
  return watcher;
}

void RegistryWatcher::Publish(std::shared_ptr<const ServingSnapshot> snapshot) {
  {
    MutexLock lock(&current_mu_);
    current_.swap(snapshot);
  }
  // The old snapshot (if this was its last holder) is destroyed here, outside the lock.
}

RegistryWatcher::~RegistryWatcher() {
  {
    MutexLock lock(&stop_mu_);
    stop_ = true;
  }
  stop_cv_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

void RegistryWatcher::Run() {
  using Clock = std::chrono::steady_clock;
  // The feed waits in slices this long, so that the destructor's stop is seen soon.
  constexpr std::chrono::milliseconds kSlice{200};
  auto next_poll = Clock::now() + options_.poll_interval;
  bool feed_lost_logged = false;
  auto next_listen = Clock::now();
  for (;;) {
    bool announced = false;
    if (feed_ == nullptr && registry_can_listen_ && Clock::now() >= next_listen) {
      // While the registry is down, try again at the polling pace, not every slice.
      next_listen = Clock::now() + options_.poll_interval;
      // Under poll_mu_: Poll() is public and may run on another thread at the same time, and
      // the registry store is not thread-safe.
      auto feed = [this] {
        MutexLock lock(&poll_mu_);
        return registry_->WatchChanges();
      }();
      if (feed.ok() && *feed != nullptr) {
        feed_ = std::move(*feed);
        if (feed_lost_logged) ServerLog("registry: listening for new versions again");
        feed_lost_logged = false;
        announced = true;  // a version may have come while nobody listened
      } else if (feed.ok()) {
        registry_can_listen_ = false;  // SQLite: polling only
      }
      listening_.store(feed_ != nullptr, std::memory_order_relaxed);
    }
    if (feed_ != nullptr && !announced) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(next_poll - Clock::now());
      auto heard = feed_->Wait(
          static_cast<int>(std::clamp(left, std::chrono::milliseconds(0), kSlice).count()));
      if (heard.ok()) {
        announced = *heard;
      } else {
        if (!feed_lost_logged) {
          ServerLog(fmt::format("registry: {}; polling every {} ms until it is back",
                                heard.status().message(), options_.poll_interval.count()));
        }
        feed_lost_logged = true;
        feed_.reset();
        listening_.store(false, std::memory_order_relaxed);
      }
    } else if (!announced) {
      MutexLock lock(&stop_mu_);
      const auto deadline = std::min(next_poll, Clock::now() + kSlice);
      while (!stop_ && stop_cv_.WaitUntil(&stop_mu_, deadline)) {
      }
    }
    {
      MutexLock lock(&stop_mu_);
      if (stop_) return;
    }
    if (announced || Clock::now() >= next_poll) {
      (void)Poll();  // errors are logged and counted by Poll
      // With a live feed, polling is only the fallback for a notification lost in between.
      next_poll =
          Clock::now() + (feed_ != nullptr ? options_.poll_interval * 10 : options_.poll_interval);
    }
  }
}

std::string RegistryWatcher::registry_error() const {
  MutexLock lock(&error_mu_);
  return published_error_;
}

void RegistryWatcher::PublishError() {
  MutexLock lock(&error_mu_);
  published_error_ = last_error_;
}

Status RegistryWatcher::Poll() {
  MutexLock lock(&poll_mu_);
  auto history = registry_->History(1);
  Status st = history.status();
  int64_t newest = 0;
  if (st.ok()) {
    if (history->empty()) return Status::OK();
    newest = history->front().version;
    if (newest == Current()->info.version) {
      if (!last_error_.empty()) {
        ServerLog(fmt::format("registry: {} is reachable again; serving version {}",
                              options_.registry.Describe(), newest));
      }
      failed_version_ = 0;
      last_error_.clear();
      PublishError();
      return Status::OK();
    }
    st = Reload();
    if (st.ok()) return st;
  }
  reload_failure_->Increment();
  if (newest != failed_version_ || st.message() != last_error_) {
    ServerLog(newest == 0
                  ? fmt::format("registry: cannot read {}; still serving version {}: {}",
                                options_.registry.Describe(), Current()->info.version, st.message())
                  : fmt::format("registry: cannot load version {} of {}; still serving version "
                                "{}: {}",
                                newest, options_.registry.Describe(), Current()->info.version,
                                st.message()));
    failed_version_ = newest;
    last_error_ = st.message();
    PublishError();
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
  Publish(std::move(snapshot));
  reload_success_->Increment();
  failed_version_ = 0;
  last_error_.clear();
  PublishError();
  ServerLog(fmt::format("registry: now serving version {} (was {})", loaded, old));
  return Status::OK();
}

}  // namespace granary
