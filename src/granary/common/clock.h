// Clock: where Granary reads the current time, so tests can set it (TTL, staleness, cron).
#pragma once

#include <atomic>
#include <chrono>

#include "granary/common/time.h"

namespace granary {

// Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual Timestamp Now() const = 0;
};

// The wall clock (system_clock). Thread-safe.
class SystemClock final : public Clock {
 public:
  Timestamp Now() const override {
    auto now = std::chrono::system_clock::now().time_since_epoch();
    return Timestamp::FromMicros(
        std::chrono::duration_cast<std::chrono::microseconds>(now).count());
  }
  // A process-wide instance.
  static const SystemClock& Default() {
    static const SystemClock clock;
    return clock;
  }
};

// A clock that only moves when told to; for tests. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Timestamp start) : micros_(start.micros) {}
  Timestamp Now() const override { return Timestamp::FromMicros(micros_.load()); }
  void Set(Timestamp t) { micros_.store(t.micros); }
  void Advance(Duration d) { micros_.fetch_add(d.micros); }

 private:
  std::atomic<int64_t> micros_;
};

}  // namespace granary
