#include "granary/materialize/scheduler.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "granary/common/progress.h"
#include "granary/materialize/interval.h"

namespace granary {

bool ClockWaiter::WaitUntil(Timestamp deadline) {
  MutexLock lock(&mu_);
  while (!woken_) {
    const Timestamp now = clock_->Now();
    if (now >= deadline) return true;
    const int64_t micros = std::min<int64_t>((deadline - now).micros, 1'000'000);
    cv_.WaitFor(&mu_, std::chrono::microseconds(micros));
  }
  return false;
}

void ClockWaiter::Wake() {
  MutexLock lock(&mu_);
  woken_ = true;
  cv_.SignalAll();
}

Scheduler::Scheduler(RepoConfig config, CronSchedule cron, ScheduleOptions options,
                     const Clock* clock, Waiter* waiter)
    : config_(std::move(config)),
      cron_(std::move(cron)),
      options_(std::move(options)),
      clock_(clock),
      waiter_(waiter) {}

void Scheduler::Log(const std::string& line) const {
  if (options_.log) options_.log(fmt::format("{} {}", FormatTimestamp(clock_->Now()), line));
}

Scheduler::State Scheduler::state() const {
  MutexLock lock(&mu_);
  return state_;
}

void Scheduler::Stop() {
  stopped_.store(true);
  cancelled_.store(true);
  waiter_->Wake();
}

Status Scheduler::Run() {
  Log(fmt::format(
      "schedule: materialize-incremental on '{}'{}", cron_.expression(),
      options_.views.empty() ? "" : " for " + fmt::format("{}", fmt::join(options_.views, ", "))));
  bool first = true;
  while (!stopped_.load()) {
    const Timestamp now = clock_->Now();
    const Timestamp next = first && options_.run_at_start ? now : cron_.Next(now);
    first = false;
    {
      MutexLock lock(&mu_);
      state_.next_run = next;
    }
    if (next > now) Log(fmt::format("schedule: next run at {}", FormatTimestamp(next)));
    if (!waiter_->WaitUntil(next)) break;
    RunOnce();
    // Scheduled times that passed during the run are skipped (the next run starts from the
    // watermark, so nothing is lost).
    const Timestamp after = clock_->Now();
    int missed = 0;
    for (Timestamp t = cron_.Next(next); t < after && missed < 1000; t = cron_.Next(t)) {
      ++missed;
    }
    if (missed > 0 && !stopped_.load()) {
      Log(fmt::format("schedule: the run took until {}; skipped {} scheduled time{}",
                      FormatTimestamp(after), missed, missed == 1 ? "" : "s"));
    }
  }
  {
    MutexLock lock(&mu_);
    state_.next_run.reset();
  }
  Log("schedule: stopped");
  return Status::OK();
}

void Scheduler::RunOnce() {
  MaterializeRequest request;
  request.kind = MaterializeRequest::Kind::kIncremental;
  request.end = clock_->Now();
  request.trigger = "schedule";
  request.views = options_.views;
  {
    MutexLock lock(&mu_);
    state_.running = true;
    state_.last_run_started = clock_->Now();
    ++state_.runs;
  }
  Status outcome;
  for (int attempt = 0; !stopped_.load(); ++attempt) {
    Log(fmt::format(
        "schedule: materialize-incremental {}{}", FormatTimestamp(request.end),
        attempt == 0 ? "" : fmt::format(" (retry {} of {})", attempt, options_.retries)));
    auto report = Materialize(config_, request, options_.materialize, nullptr, &cancelled_);
    std::vector<std::string> failed;
    if (!report.ok()) {
      outcome = report.status();
      Log(fmt::format("schedule: run failed: {}", outcome.message()));
    } else {
      outcome = report->status;
      for (const ViewMaterialization& v : report->views) {
        if (v.up_to_date) {
          Log(fmt::format("schedule: {}: up to date ({})", v.view, v.watermark_note));
        } else if (v.status.ok()) {
          Log(fmt::format(
              "schedule: {}: {} .. {}: {} rows read, {} entities written, {} skipped in {:.1f}s",
              v.view, FormatIntervalStart(v.start), FormatTimestamp(v.end),
              Progress::HumanCount(static_cast<double>(v.scan.rows_scanned)),
              Progress::HumanCount(static_cast<double>(v.entities_written)),
              Progress::HumanCount(static_cast<double>(v.entities_skipped)), v.seconds));
        } else {
          failed.push_back(v.view);
          Log(fmt::format("schedule: {}: failed: {}", v.view, v.status.message()));
        }
      }
    }
    if (outcome.ok() || outcome.code() == StatusCode::kCancelled || stopped_.load()) break;
    if (attempt >= options_.retries) {
      Log(
          fmt::format("schedule: giving up after {} attempt{}; the next scheduled run starts from "
                      "the watermark",
                      attempt + 1, attempt == 0 ? "" : "s"));
      break;
    }
    if (!failed.empty()) request.views = failed;  // the views that succeeded are done
    Duration delay = options_.retry_delay;
    for (int i = 0; i < attempt && delay < options_.max_retry_delay; ++i) delay.micros *= 2;
    delay = std::min(delay, options_.max_retry_delay);
    Log(fmt::format("schedule: retrying in {}", FormatDuration(delay)));
    if (!waiter_->WaitUntil(clock_->Now() + delay)) break;
  }
  MutexLock lock(&mu_);
  state_.running = false;
  state_.last_run_finished = clock_->Now();
  state_.last_run_ok = outcome.ok();
  state_.last_error = outcome.ok() ? "" : outcome.message();
  if (!outcome.ok()) ++state_.failures;
}

}  // namespace granary
