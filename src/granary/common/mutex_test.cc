#include "granary/common/mutex.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

namespace granary {
namespace {

// A counter shared by threads, its reads and writes checked by -Wthread-safety in clang builds.
class SharedCounter {
 public:
  void Add(int n) EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    value_ += n;
    changed_.SignalAll();
  }
  // Blocks until the counter reaches `target`.
  int WaitFor(int target) EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    while (value_ < target) changed_.Wait(&mu_);
    return value_;
  }
  // False when `timeout` passed with the counter below `target`.
  bool WaitAtMost(int target, std::chrono::milliseconds timeout) EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (value_ < target) {
      if (!changed_.WaitUntil(&mu_, deadline)) return value_ >= target;
    }
    return true;
  }
  int ReadReleasingInBetween() EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    const int before = value_;
    lock.Unlock();
    lock.Lock();  // held again: the destructor releases it
    return value_ - before;
  }

 private:
  Mutex mu_;
  CondVar changed_;
  int value_ GUARDED_BY(mu_) = 0;
};

TEST(Mutex, ThreadsAddingUnderTheLockLoseNoUpdate) {
  SharedCounter counter;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&counter] {
      for (int i = 0; i < 1000; ++i) counter.Add(1);
    });
  }
  EXPECT_EQ(counter.WaitFor(4000), 4000);
  for (auto& t : threads) t.join();
  EXPECT_GE(counter.ReadReleasingInBetween(), 0);
}

TEST(CondVar, AWaiterWakesOnSignalAndATimedWaitEndsAtItsDeadline) {
  SharedCounter counter;
  EXPECT_FALSE(counter.WaitAtMost(1, std::chrono::milliseconds(20)));
  std::thread adder([&counter] { counter.Add(1); });
  EXPECT_TRUE(counter.WaitAtMost(1, std::chrono::minutes(5)));
  adder.join();
}

TEST(Mutex, TryLockFailsWhileAnotherThreadHoldsIt) {
  Mutex mu;
  mu.Lock();
  bool acquired = true;
  std::thread other([&] {
    if (mu.TryLock()) {
      mu.Unlock();
    } else {
      acquired = false;
    }
  });
  other.join();
  mu.Unlock();
  EXPECT_FALSE(acquired);
  bool free_again = false;
  if (mu.TryLock()) {
    free_again = true;
    mu.Unlock();
  }
  EXPECT_TRUE(free_again);
}

}  // namespace
}  // namespace granary
