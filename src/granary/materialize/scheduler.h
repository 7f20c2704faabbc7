// Scheduler: `granary schedule`, materialize-incremental on a cron schedule, in the foreground.
//
// At each time the cron expression names, it runs materialize-incremental with END = now (from
// the Clock). A run with failed views is retried for those views with the same END, after
// `retry_delay`, doubling each time up to `max_retry_delay`, at most `retries` times; then it
// waits for the next scheduled time (whose run starts from the watermark, so it covers what
// failed). Times the schedule named while a run was still going are skipped, with a log line.
// Stop() (from a signal handler's thread) ends the wait at once and cancels a run in progress:
// the view being written is recorded failed ("cancelled") with its watermark unchanged.
//
// Time comes from a Clock and waits go through a Waiter, so tests run a day of schedule in
// microseconds. Thread-safe: Run() on one thread; Stop() and state() from any.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>

#include "granary/common/clock.h"
#include "granary/common/mutex.h"
#include "granary/materialize/cron.h"
#include "granary/materialize/materializer.h"

namespace granary {

// Waits until the Clock reaches a time. Thread-safe.
class Waiter {
 public:
  virtual ~Waiter() = default;
  // Returns true when `deadline` is reached, false when Wake() ended the wait (and every later
  // wait, at once).
  virtual bool WaitUntil(Timestamp deadline) = 0;
  virtual void Wake() = 0;
};

// Sleeps on a condition variable, re-reading the clock at least every second (so a wall clock
// that jumps, or a machine that was suspended, does not oversleep).
class ClockWaiter final : public Waiter {
 public:
  explicit ClockWaiter(const Clock* clock) : clock_(clock) {}
  bool WaitUntil(Timestamp deadline) override;
  void Wake() override;

 private:
  const Clock* clock_;
  Mutex mu_;
  CondVar cv_;
  bool woken_ GUARDED_BY(mu_) = false;
};

struct ScheduleOptions {
  int retries = 3;  // after a failed run, this many more attempts (0: none)
  Duration retry_delay = Duration::Minutes(1);
  Duration max_retry_delay = Duration::Hours(1);
  bool run_at_start = false;  // one run as soon as Run() starts, then the schedule
  // Views to run (empty: every online view) and how; END and the trigger are set per run.
  std::vector<std::string> views;
  MaterializeOptions materialize;
  // One line per event (next run, run start, per-view results, retries); may be null.
  std::function<void(const std::string& line)> log;
};

class Scheduler {
 public:
  // `clock` and `waiter` must outlive the scheduler.
  Scheduler(RepoConfig config, CronSchedule cron, ScheduleOptions options, const Clock* clock,
            Waiter* waiter);

  // Runs until Stop(); returns OK then.
  Status Run();
  // Ends Run(): wakes the wait, cancels a run in progress.
  void Stop();

  // What /health reports.
  struct State {
    std::optional<Timestamp> next_run;
    bool running = false;
    std::optional<Timestamp> last_run_started;
    std::optional<Timestamp> last_run_finished;
    bool last_run_ok = true;
    std::string last_error;
    int64_t runs = 0;      // scheduled runs started (retries not counted)
    int64_t failures = 0;  // scheduled runs that failed after every retry
  };
  State state() const;

 private:
  void Log(const std::string& line) const;
  // One scheduled run with its retries.
  void RunOnce();

  RepoConfig config_;
  CronSchedule cron_;
  ScheduleOptions options_;
  const Clock* clock_;
  Waiter* waiter_;
  std::atomic<bool> stopped_{false};
  std::atomic<bool> cancelled_{false};
  mutable Mutex mu_;
  State state_ GUARDED_BY(mu_);
};

}  // namespace granary
