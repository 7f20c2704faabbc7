#include "granary/common/fork_join.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace granary {
namespace {

// A one-shot gate: Open() releases every Wait(). WaitAtMost() guards the tests against a hang
// (the deadline is a safety net, never a measurement).
class Gate {
 public:
  void Open() {
    MutexLock lock(&mu_);
    open_ = true;
    changed_.SignalAll();
  }
  bool WaitAtMost(std::chrono::seconds timeout) {
    MutexLock lock(&mu_);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!open_) {
      if (!changed_.WaitUntil(&mu_, deadline)) return open_;
    }
    return true;
  }

 private:
  Mutex mu_;
  CondVar changed_;
  bool open_ GUARDED_BY(mu_) = false;
};

TEST(ForkJoinPool, RunsEveryTaskExactlyOnce) {
  for (int helpers : {0, 1, 3}) {
    ForkJoinPool pool(helpers);
    EXPECT_EQ(pool.parallelism(), helpers + 1);
    for (size_t count : {0, 1, 2, 7, 1000}) {
      std::vector<std::atomic<int>> runs(count);
      pool.Run(count, [&](size_t i) { runs[i].fetch_add(1); });
      for (size_t i = 0; i < count; ++i) {
        ASSERT_EQ(runs[i].load(), 1) << "helpers " << helpers << ", task " << i << " of " << count;
      }
    }
  }
}

TEST(ForkJoinPool, WithoutHelpersTheCallerRunsEverything) {
  ForkJoinPool pool(0);
  const auto caller = std::this_thread::get_id();
  std::vector<std::thread::id> ran(10);
  pool.Run(ran.size(), [&](size_t i) { ran[i] = std::this_thread::get_id(); });
  for (const auto& id : ran) EXPECT_EQ(id, caller);
  EXPECT_EQ(pool.tasks_run_by_helpers(), 0u);
  EXPECT_EQ(pool.jobs_offered(), 0u);
}

TEST(ForkJoinPool, AnIdleHelperRunsTasksBesideTheCaller) {
  // Two tasks, each waiting for the other to start: they can only finish when they run at once,
  // so one of them ran on the helper.
  ForkJoinPool pool(1);
  Gate started[2];
  std::atomic<bool> both{true};
  pool.Run(2, [&](size_t i) {
    started[i].Open();
    if (!started[1 - i].WaitAtMost(std::chrono::seconds(60))) both = false;
  });
  EXPECT_TRUE(both.load());
  EXPECT_EQ(pool.tasks_run_by_helpers(), 1u);
  EXPECT_EQ(pool.jobs_offered(), 1u);
}

TEST(ForkJoinPool, BusyHelpersLeaveTheWorkToTheCaller) {
  // A first job's two tasks both block until released: one on its caller, the other on the
  // only helper. A second Run() meanwhile must not wait for that helper.
  ForkJoinPool pool(1);
  Gate both_started, release;
  std::atomic<int> started{0};
  std::thread first([&] {
    pool.Run(2, [&](size_t) {
      if (started.fetch_add(1) + 1 == 2) both_started.Open();
      release.WaitAtMost(std::chrono::seconds(60));
    });
  });
  ASSERT_TRUE(both_started.WaitAtMost(std::chrono::seconds(60)));
  const auto caller = std::this_thread::get_id();
  std::atomic<size_t> on_caller{0};
  pool.Run(100, [&](size_t) {
    if (std::this_thread::get_id() == caller) on_caller.fetch_add(1);
  });
  EXPECT_EQ(on_caller.load(), 100u);
  release.Open();
  first.join();
  EXPECT_EQ(pool.tasks_run_by_helpers(), 1u);
}

TEST(ForkJoinPool, ConcurrentCallersEachGetTheirOwnTasks) {
  ForkJoinPool pool(2);
  constexpr int kCallers = 4;
  constexpr size_t kTasks = 200;
  std::vector<std::vector<std::atomic<int>>> runs(kCallers);
  for (auto& r : runs) r = std::vector<std::atomic<int>>(kTasks);
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      for (int round = 0; round < 20; ++round) {
        pool.Run(kTasks, [&](size_t i) { runs[c][i].fetch_add(1); });
      }
    });
  }
  for (auto& t : callers) t.join();
  for (int c = 0; c < kCallers; ++c) {
    for (size_t i = 0; i < kTasks; ++i) ASSERT_EQ(runs[c][i].load(), 20) << c << " " << i;
  }
}

}  // namespace
}  // namespace granary
