#include "granary/common/fork_join.h"

#include <algorithm>

namespace granary {

// One Run(): tasks are claimed through `next`; the caller waits until `done` reaches `count`. A
// helper may still hold the job after Run() returned, but then every task is claimed and it
// never touches `task` again.
struct ForkJoinPool::Job {
  const std::function<void(size_t)>* task;
  size_t count;
  std::atomic<size_t> next{0};
  std::atomic<size_t> done{0};
  Mutex mu;
  CondVar finished;  // done reached count

  Job(const std::function<void(size_t)>* t, size_t n) : task(t), count(n) {}

  // Claims and runs tasks until none is left to claim; counts each in *ran (when given) before
  // the caller can see it done.
  void Work(std::atomic<size_t>* ran) {
    for (size_t i = next.fetch_add(1); i < count; i = next.fetch_add(1)) {
      (*task)(i);
      if (ran != nullptr) ran->fetch_add(1, std::memory_order_relaxed);
      if (done.fetch_add(1) + 1 == count) {
        MutexLock lock(&mu);  // taken after the increment: the waiter cannot miss the signal
        finished.SignalAll();
      }
    }
  }
};

ForkJoinPool::ForkJoinPool(int helpers) {
  for (int i = 0; i < helpers; ++i) threads_.emplace_back([this] { HelperLoop(); });
}

ForkJoinPool::~ForkJoinPool() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  work_.SignalAll();
  for (std::thread& t : threads_) t.join();
}

void ForkJoinPool::Run(size_t count, const std::function<void(size_t)>& task) {
  if (threads_.empty() || count <= 1) {
    for (size_t i = 0; i < count; ++i) task(i);
    return;
  }
  jobs_offered_.fetch_add(1, std::memory_order_relaxed);
  auto job = std::make_shared<Job>(&task, count);
  {
    MutexLock lock(&mu_);
    jobs_.push_back(job);
  }
  work_.SignalAll();
  job->Work(nullptr);
  {
    MutexLock lock(&job->mu);
    while (job->done.load() < count) job->finished.Wait(&job->mu);
  }
  // No helper came for it (all busy): take it off the queue so that none wakes for nothing.
  MutexLock lock(&mu_);
  auto it = std::find(jobs_.begin(), jobs_.end(), job);
  if (it != jobs_.end()) jobs_.erase(it);
}

void ForkJoinPool::HelperLoop() {
  for (;;) {
    std::shared_ptr<Job> job;
    {
      MutexLock lock(&mu_);
      while (!stopping_ && jobs_.empty()) work_.Wait(&mu_);
      if (stopping_) return;
      job = jobs_.front();
    }
    job->Work(&helper_tasks_);
    // Every task of the job is claimed now: no thread needs to see it again.
    MutexLock lock(&mu_);
    if (!jobs_.empty() && jobs_.front() == job) jobs_.pop_front();
  }
}

}  // namespace granary
