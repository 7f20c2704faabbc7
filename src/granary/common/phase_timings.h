// PhaseTimings: where a long job's time went, phase by phase (`get-historical-features
// --timings`). Each phase records its wall time and the CPU time (user + system) the whole
// process spent meanwhile, on every thread; their ratio is the number of cores kept busy. On a
// shared machine wall time moves with the load, CPU time much less: a phase with about one core
// busy is a single-threaded step, and on a quiet machine each of its CPU seconds is a wall
// second.
//
// Phases are timed by the thread that runs the job, one after another; work that other threads
// do in the background is counted in whichever phase it overlaps (the report says so by its
// cores figure). A phase another thread times at the same time (a training set's next view's
// match pass, beside a view's gather pass) overlaps those: each counts the whole process's CPU
// meanwhile, so the CPU of overlapping phases is counted in each. Thread-safe: Start() and
// Add() may be called from any thread.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "granary/common/mutex.h"

namespace granary {

class PhaseTimings {
 public:
  struct Phase {
    std::string name;
    double wall_seconds = 0;
    double cpu_seconds = 0;     // the process's user + system time during the phase, all threads
    double system_seconds = 0;  // of which system (the kernel: page faults, reads, ...)
  };

  // Times one phase from its construction to End() or its destruction, whichever comes first.
  class Scope {
   public:
    Scope(Scope&& other) noexcept;
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
    Scope& operator=(Scope&&) = delete;
    ~Scope() { End(); }
    void End();

   private:
    friend class PhaseTimings;
    Scope(PhaseTimings* owner, std::string name);
    PhaseTimings* owner_;  // null once ended
    std::string name_;
    std::chrono::steady_clock::time_point wall_start_;
    double user_start_;
    double system_start_;
  };

  // Starts a phase named `name`; `timings` may be null (then nothing is recorded).
  static Scope Start(PhaseTimings* timings, std::string name);

  void Add(Phase phase);
  std::vector<Phase> phases() const;

  // One line a phase, names padded to line up:
  //   "  name  wall   1.230 s  CPU   2.100 s (system   0.300 s)  cores 1.71".
  std::string Report() const;

  // The CPU time (user + system) of this process so far, all threads, in seconds.
  static double ProcessCpuSeconds();
  // Of which system time.
  static double ProcessSystemSeconds();

 private:
  mutable Mutex mu_;
  std::vector<Phase> phases_ GUARDED_BY(mu_);
};

}  // namespace granary
