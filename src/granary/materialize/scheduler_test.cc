// The scheduler on a manual clock: every wait jumps the clock to its deadline, so days of
// schedule run in milliseconds, against a real repository.
#include "granary/materialize/scheduler.h"

#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "granary/testing/materialize_repository.h"

namespace granary {
namespace {

using testing::At;
using testing::RiskRow;
using testing::TestRepo;

// Jumps the clock to each deadline; records them; runs `on_wait` first (which may Stop the
// scheduler or change the repository).
class JumpingWaiter final : public Waiter {
 public:
  explicit JumpingWaiter(ManualClock* clock) : clock_(clock) {}
  bool WaitUntil(Timestamp deadline) override {
    if (woken_) return false;
    deadlines.push_back(deadline);
    if (on_wait) on_wait(deadlines.size() - 1);
    if (woken_) return false;
    if (clock_->Now() < deadline) clock_->Set(deadline);
    return true;
  }
  void Wake() override { woken_ = true; }

  std::vector<Timestamp> deadlines;
  std::function<void(size_t index)> on_wait;

 private:
  ManualClock* clock_;
  bool woken_ = false;
};

std::vector<std::string> Formatted(const std::vector<Timestamp>& times) {
  std::vector<std::string> out;
  for (Timestamp t : times) out.push_back(FormatTimestamp(t));
  return out;
}

bool Contains(const std::vector<std::string>& lines, const std::string& part) {
  for (const auto& l : lines) {
    if (l.find(part) != std::string::npos) return true;
  }
  return false;
}

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = TestRepo::Make("rocksdb");
    repo_->clock.Set(At("2026-11-25T01:00:00Z"));
    repo_->WriteRows("rows", {{1, At("2026-11-24T08:00:00Z"), {}, 1}});
    options_.materialize = repo_->Options();
    options_.log = [this](const std::string& line) { log_.push_back(line); };
  }
  // A file that is not Parquet makes every run fail while it is there.
  void BreakSource() {
    std::ofstream(repo_->config.root / "data/payments/broken.parquet") << "not parquet";
  }
  void FixSource() { std::filesystem::remove(repo_->config.root / "data/payments/broken.parquet"); }

  std::unique_ptr<TestRepo> repo_;
  CronSchedule cron_ = CronSchedule::Parse("0 2 * * *").ValueOrDie();
  ScheduleOptions options_;
  std::vector<std::string> log_;
};

TEST_F(SchedulerTest, RunsAtEachScheduledTimeAndRetriesFailedRunsWithBackoff) {
  options_.retries = 3;
  options_.retry_delay = Duration::Minutes(1);
  JumpingWaiter waiter(&repo_->clock);
  Scheduler* scheduler_ptr = nullptr;
  waiter.on_wait = [&](size_t i) {
    if (i == 1) BreakSource();  // before the second night's run
    if (i == 3) FixSource();    // before its second retry
    if (i == 5) scheduler_ptr->Stop();
  };
  Scheduler scheduler(repo_->config, cron_, options_, &repo_->clock, &waiter);
  scheduler_ptr = &scheduler;
  ASSERT_TRUE(scheduler.Run().ok());
  EXPECT_EQ(Formatted(waiter.deadlines),
            (std::vector<std::string>{"2026-11-25T02:00:00Z", "2026-11-26T02:00:00Z",
                                      "2026-11-26T02:01:00Z", "2026-11-26T02:03:00Z",
                                      "2026-11-27T02:00:00Z", "2026-11-28T02:00:00Z"}));
  auto runs = repo_->Registry()->Runs("risk", 10).ValueOrDie();
  ASSERT_EQ(runs.size(), 5u);
  const std::vector<RunStatus> statuses = {RunStatus::kSucceeded, RunStatus::kSucceeded,
                                           RunStatus::kFailed, RunStatus::kFailed,
                                           RunStatus::kSucceeded};
  for (size_t i = 0; i < runs.size(); ++i) {
    EXPECT_EQ(runs[i].status, statuses[i]) << i;
    EXPECT_EQ(runs[i].trigger, "schedule");
  }
  // Retries keep the END of their scheduled run.
  EXPECT_EQ(runs[1].interval_end, At("2026-11-26T02:00:00Z"));
  EXPECT_EQ(runs[2].interval_end, At("2026-11-26T02:00:00Z"));
  EXPECT_EQ(runs[0].interval_end, At("2026-11-27T02:00:00Z"));
  EXPECT_NE(runs[3].error.find("broken.parquet"), std::string::npos) << runs[3].error;
  EXPECT_EQ(repo_->Watermark(), At("2026-11-27T02:00:00Z"));
  EXPECT_TRUE(Contains(log_, "retrying in 1m")) << ::testing::PrintToString(log_);
  EXPECT_TRUE(Contains(log_, "retrying in 2m"));
  EXPECT_TRUE(Contains(log_, "(retry 2 of 3)"));
  EXPECT_TRUE(Contains(log_, "schedule: stopped"));
  auto state = scheduler.state();
  EXPECT_EQ(state.runs, 3);
  EXPECT_EQ(state.failures, 0);
  EXPECT_TRUE(state.last_run_ok);
}

TEST_F(SchedulerTest, ARunThatFailsEveryRetryIsCountedAndTheScheduleGoesOn) {
  options_.retries = 2;
  options_.retry_delay = Duration::Minutes(10);
  options_.max_retry_delay = Duration::Minutes(15);
  BreakSource();
  JumpingWaiter waiter(&repo_->clock);
  Scheduler* scheduler_ptr = nullptr;
  waiter.on_wait = [&](size_t i) {
    if (i == 3) scheduler_ptr->Stop();
  };
  Scheduler scheduler(repo_->config, cron_, options_, &repo_->clock, &waiter);
  scheduler_ptr = &scheduler;
  ASSERT_TRUE(scheduler.Run().ok());
  // 02:00, then 10 and min(20, 15) minutes later, then the next night.
  EXPECT_EQ(Formatted(waiter.deadlines),
            (std::vector<std::string>{"2026-11-25T02:00:00Z", "2026-11-25T02:10:00Z",
                                      "2026-11-25T02:25:00Z", "2026-11-26T02:00:00Z"}));
  EXPECT_TRUE(Contains(log_, "giving up after 3 attempts"));
  auto state = scheduler.state();
  EXPECT_EQ(state.failures, 1);
  EXPECT_FALSE(state.last_run_ok);
  EXPECT_NE(state.last_error.find("broken.parquet"), std::string::npos);
  EXPECT_FALSE(repo_->Watermark().has_value());
}

TEST_F(SchedulerTest, StopCancelsARunInProgressAndLeavesTheWatermark) {
  std::vector<RiskRow> rows;
  for (int64_t id = 1; id <= 300; ++id) rows.push_back({id, At("2026-11-24T09:00:00Z"), {}, 1});
  repo_->WriteRows("more", rows);
  options_.materialize.write_batch_rows = 10;
  options_.materialize.write_threads = 1;
  JumpingWaiter waiter(&repo_->clock);
  Scheduler* scheduler_ptr = nullptr;
  options_.materialize.after_write = [&](const std::string&, const WriteStats&) {
    scheduler_ptr->Stop();  // SIGTERM arrives while the view is being written
  };
  Scheduler scheduler(repo_->config, cron_, options_, &repo_->clock, &waiter);
  scheduler_ptr = &scheduler;
  ASSERT_TRUE(scheduler.Run().ok());
  EXPECT_EQ(waiter.deadlines.size(), 1u);
  auto runs = repo_->Registry()->Runs("risk", 10).ValueOrDie();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].status, RunStatus::kFailed);
  EXPECT_NE(runs[0].error.find("cancelled"), std::string::npos);
  EXPECT_FALSE(repo_->Watermark().has_value());
  EXPECT_FALSE(Contains(log_, "retrying"));
}

TEST_F(SchedulerTest, RunAtStartRunsAtOnceThenFollowsTheSchedule) {
  options_.run_at_start = true;
  JumpingWaiter waiter(&repo_->clock);
  Scheduler* scheduler_ptr = nullptr;
  waiter.on_wait = [&](size_t i) {
    if (i == 1) scheduler_ptr->Stop();
  };
  Scheduler scheduler(repo_->config, cron_, options_, &repo_->clock, &waiter);
  scheduler_ptr = &scheduler;
  ASSERT_TRUE(scheduler.Run().ok());
  EXPECT_EQ(Formatted(waiter.deadlines),
            (std::vector<std::string>{"2026-11-25T01:00:00Z", "2026-11-25T02:00:00Z"}));
  EXPECT_EQ(repo_->Watermark(), At("2026-11-25T01:00:00Z"));
}

TEST(ClockWaiter, WakeEndsAWaitAndEveryLaterOne) {
  ManualClock clock(At("2026-11-25T00:00:00Z"));
  ClockWaiter waiter(&clock);
  EXPECT_TRUE(waiter.WaitUntil(At("2026-11-24T00:00:00Z")));  // already past
  std::thread waker([&] { waiter.Wake(); });
  EXPECT_FALSE(waiter.WaitUntil(At("2027-01-01T00:00:00Z")));
  waker.join();
  EXPECT_FALSE(waiter.WaitUntil(At("2026-11-24T00:00:00Z")));
}

TEST(ClockWaiter, ReturnsWhenTheClockReachesTheDeadline) {
  ManualClock clock(At("2026-11-25T00:00:00Z"));
  ClockWaiter waiter(&clock);
  std::thread mover([&] { clock.Set(At("2026-11-25T00:00:05Z")); });
  EXPECT_TRUE(waiter.WaitUntil(At("2026-11-25T00:00:05Z")));
  mover.join();
}

}  // namespace
}  // namespace granary
