// SignalWatcher: SIGINT and SIGTERM become a callback on a thread of its own, so long commands
// (materialize, schedule) stop cleanly: the run in progress is cancelled and recorded, locks and
// stores are released. A second signal ends the process at once (exit 128 + signal).
//
// Start it before any other thread: threads inherit the blocked signal mask. One per process.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <thread>

namespace granary::cli {

class SignalWatcher {
 public:
  // `on_signal` runs on the watcher's thread with the signal number.
  static std::unique_ptr<SignalWatcher> Start(std::function<void(int signal)> on_signal);
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

  // The first signal received, or 0.
  int received() const { return received_.load(); }

 private:
  SignalWatcher() = default;
  std::function<void(int)> on_signal_;
  std::atomic<int> received_{0};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace granary::cli
