#include "granary/cli/signals.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

namespace granary::cli {
namespace {

sigset_t WatchedSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

}  // namespace

std::unique_ptr<SignalWatcher> SignalWatcher::Start(std::function<void(int)> on_signal) {
  std::unique_ptr<SignalWatcher> watcher(new SignalWatcher());
  watcher->on_signal_ = std::move(on_signal);
  sigset_t set = WatchedSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  SignalWatcher* self = watcher.get();
  watcher->thread_ = std::thread([self, set] {
    while (true) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      if (self->stopping_.load()) return;
      int expected = 0;
      if (!self->received_.compare_exchange_strong(expected, sig)) _exit(128 + sig);
      self->on_signal_(sig);
    }
  });
  return watcher;
}

SignalWatcher::~SignalWatcher() {
  stopping_.store(true);
  pthread_kill(thread_.native_handle(), SIGTERM);  // wakes sigwait; ignored as stopping_
  thread_.join();
  sigset_t set = WatchedSignals();
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

}  // namespace granary::cli
