// ForkJoinPool: one large piece of work split into tasks that the calling thread runs together
// with a few helper threads, when they are idle (docs/PERFORMANCE.md, "Splitting one large
// answer").
//
// Made for the feature server: its worker threads (one per core) answer requests, and a rare
// large answer (100 entities x 250 features: milliseconds of CPU) would otherwise keep one core
// busy while the other is idle. Run() hands the tasks out one at a time through a shared counter:
// the caller claims tasks too, so when every helper is busy the caller simply runs them all
// itself (no queueing behind other work, no worse than not splitting), and it waits only for the
// tasks a helper has already claimed. Helpers sleep on a condition variable between jobs.
//
// Thread-safe: Run() may be called from any number of threads at once (their jobs are served in
// order). Run() must not be called from inside a task. The destructor waits for the helpers,
// which finish the task they run; no Run() may be in progress then.
#pragma once

#include <atomic>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "granary/common/mutex.h"

namespace granary {

class ForkJoinPool {
 public:
  // `helpers` threads beside the callers (0: Run() runs every task on the caller).
  explicit ForkJoinPool(int helpers);
  ~ForkJoinPool();
  ForkJoinPool(const ForkJoinPool&) = delete;
  ForkJoinPool& operator=(const ForkJoinPool&) = delete;

  // Runs task(0) ... task(count - 1), each exactly once, on this thread and on idle helpers, and
  // returns when every one has returned. Tasks must not throw.
  void Run(size_t count, const std::function<void(size_t)>& task);

  // The threads that can run one job's tasks at once: the caller and the helpers.
  int parallelism() const { return static_cast<int>(threads_.size()) + 1; }

  // Since the pool was made: Run() calls whose tasks were offered to helpers (more than one task
  // and at least one helper), and tasks that helpers (not callers) ran. For tests and metrics.
  size_t jobs_offered() const { return jobs_offered_.load(std::memory_order_relaxed); }
  size_t tasks_run_by_helpers() const { return helper_tasks_.load(std::memory_order_relaxed); }

 private:
  struct Job;
  void HelperLoop();

  mutable Mutex mu_;
  CondVar work_;                                           // a job was queued, or stopping_
  std::deque<std::shared_ptr<Job>> jobs_ GUARDED_BY(mu_);  // with tasks left to claim
  bool stopping_ GUARDED_BY(mu_) = false;
  std::atomic<size_t> jobs_offered_{0};
  std::atomic<size_t> helper_tasks_{0};
  std::vector<std::thread> threads_;
};

}  // namespace granary
