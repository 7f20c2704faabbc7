#include "granary/materialize/view_status.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "granary/materialize/materialize_metrics.h"
#include "granary/materialize/repository_lock.h"
#include "granary/testing/materialize_repository.h"

namespace granary {
namespace {

using testing::At;
using testing::TestRepo;

MaterializationRun RunOf(const std::string& view, const char* end, int64_t pid = getpid()) {
  MaterializationRun run;
  run.view = view;
  run.interval_start = At("2026-11-20T00:00:00Z");
  run.interval_end = At(end);
  run.trigger = "schedule";
  run.started_at = At(end);
  run.pid = pid;
  run.host = ThisHost();
  return run;
}

void Finish(RegistryStore& registry, int64_t id, bool ok, const char* end,
            const std::string& layout) {
  RunOutcome outcome;
  outcome.status = ok ? RunStatus::kSucceeded : RunStatus::kFailed;
  outcome.finished_at = At(end) + Duration::Minutes(5);
  if (ok) {
    outcome.advance_watermark_to = At(end);
    outcome.watermark_layout = layout;
  } else {
    outcome.error = "redis 127.0.0.1:6379: connection refused";
  }
  ASSERT_TRUE(registry.FinishRun(id, outcome).ok());
}

pid_t GoneProcess() {
  pid_t child = fork();
  if (child == 0) _exit(0);
  int status = 0;
  waitpid(child, &status, 0);
  return child;
}

TEST(ViewStatus, WatermarkStalenessLastRunAndSuccessRate) {
  auto dir = TempDir::Make("granary_status_").ValueOrDie();
  auto registry =
      OpenSqliteRegistry(dir.path() / "registry.db", OpenMode::kCreateIfMissing).ValueOrDie();
  Finish(*registry, registry->StartRun(RunOf("risk", "2026-11-23T02:00:00Z")).ValueOrDie(), true,
         "2026-11-23T02:00:00Z", "aaaa");
  Finish(*registry, registry->StartRun(RunOf("risk", "2026-11-24T02:00:00Z")).ValueOrDie(), true,
         "2026-11-24T02:00:00Z", "aaaa");
  Finish(*registry, registry->StartRun(RunOf("risk", "2026-11-25T02:00:00Z")).ValueOrDie(), false,
         "2026-11-25T02:00:00Z", "aaaa");
  // A run cut off by kill -9: still marked running, its process gone.
  registry->StartRun(RunOf("bays", "2026-11-25T02:00:00Z", GoneProcess())).ValueOrDie();
  // A view whose schema changed after its last run.
  Finish(*registry, registry->StartRun(RunOf("trips", "2026-11-25T02:00:00Z")).ValueOrDie(), true,
         "2026-11-25T02:00:00Z", "old-layout");

  auto statuses = CollectViewStatus(*registry, {"risk", "bays", "trips", "never"},
                                    {"aaaa", "bbbb", "cccc", "dddd"}, At("2026-11-25T12:00:00Z"), 2)
                      .ValueOrDie();
  ASSERT_EQ(statuses.size(), 4u);
  const ViewStatus& risk = statuses[0];
  EXPECT_EQ(risk.watermark, At("2026-11-24T02:00:00Z"));
  EXPECT_EQ(risk.staleness, Duration::Hours(34));
  ASSERT_TRUE(risk.last_run.has_value());
  EXPECT_EQ(risk.last_run->status, RunStatus::kFailed);
  EXPECT_EQ(risk.last_run->error, "redis 127.0.0.1:6379: connection refused");
  EXPECT_EQ(risk.last_success->interval_end, At("2026-11-24T02:00:00Z"));
  EXPECT_EQ(risk.recent_runs, 2);  // the last 2 of 3
  EXPECT_EQ(risk.recent_succeeded, 1);
  EXPECT_FALSE(risk.running);
  EXPECT_TRUE(IsStale(risk, Duration::Hours(26)));
  EXPECT_FALSE(IsStale(risk, Duration::Hours(34)));

  const ViewStatus& bays = statuses[1];
  EXPECT_FALSE(bays.watermark.has_value());
  EXPECT_EQ(bays.last_run->status, RunStatus::kFailed);
  EXPECT_NE(bays.last_run->error.find("interrupted"), std::string::npos);
  EXPECT_FALSE(bays.running);
  EXPECT_EQ(bays.recent_runs, 1);
  EXPECT_EQ(bays.recent_succeeded, 0);

  const ViewStatus& trips = statuses[2];
  EXPECT_TRUE(trips.layout_changed);
  EXPECT_FALSE(trips.watermark.has_value());
  EXPECT_EQ(trips.stale_watermark, At("2026-11-25T02:00:00Z"));
  EXPECT_TRUE(IsStale(trips, Duration::Days(365)));

  const ViewStatus& never = statuses[3];
  EXPECT_FALSE(never.last_run.has_value());
  EXPECT_TRUE(IsStale(never, Duration::Days(365)));
}

TEST(ViewStatus, ARunOfALiveProcessIsRunning) {
  auto dir = TempDir::Make("granary_status_").ValueOrDie();
  auto registry =
      OpenSqliteRegistry(dir.path() / "registry.db", OpenMode::kCreateIfMissing).ValueOrDie();
  registry->StartRun(RunOf("risk", "2026-11-25T02:00:00Z")).ValueOrDie();
  auto statuses =
      CollectViewStatus(*registry, {"risk"}, {"aaaa"}, At("2026-11-25T12:00:00Z"), 10).ValueOrDie();
  EXPECT_TRUE(statuses[0].running);
  EXPECT_EQ(statuses[0].last_run->status, RunStatus::kRunning);
  EXPECT_EQ(statuses[0].recent_runs, 0);
}

TEST(MaterializationStateMetrics, StalenessAndLastSuccessComeFromTheRegistryAtScrapeTime) {
  auto repo = TestRepo::Make("rocksdb");
  MetricsRegistry metrics;
  auto collector = MaterializationStateMetrics::Register(&metrics, repo->config, &repo->clock);
  std::string text = metrics.Render();
  EXPECT_NE(text.find("granary_materialize_staleness_seconds{view=\"risk\"} +Inf"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("granary_materialize_state_up 1"), std::string::npos);

  repo->WriteRows("rows", {{1, At("2026-11-25T08:00:00Z"), {}, 1}});
  repo->clock.Set(At("2026-11-25T10:00:00Z"));
  ASSERT_TRUE(repo->Incremental(At("2026-11-25T10:00:00Z"))->status.ok());
  repo->clock.Set(At("2026-11-25T12:00:00Z"));
  text = metrics.Render();
  EXPECT_NE(text.find("granary_materialize_staleness_seconds{view=\"risk\"} 7200"),
            std::string::npos)
      << text;
  // 2026-11-25T10:00:00Z in Unix seconds.
  EXPECT_NE(text.find("granary_materialize_watermark_timestamp_seconds{view=\"risk\"} 1795600800"),
            std::string::npos);
  EXPECT_NE(text.find("granary_materialize_last_success_timestamp_seconds{view=\"risk\"} "
                      "1795600800"),
            std::string::npos);
  EXPECT_NE(text.find("granary_materialize_last_run_succeeded{view=\"risk\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("granary_materialize_running{view=\"risk\"} 0"), std::string::npos);

  collector.reset();
  EXPECT_EQ(metrics.Render().find("granary_materialize_staleness_seconds"), std::string::npos);
}

TEST(MaterializationStateMetrics, AnUnreadableRegistryIsReportedNotFatal) {
  auto dir = TempDir::Make("granary_status_").ValueOrDie();
  RepoConfig config;
  config.root = dir.path();
  config.project = "p";
  MetricsRegistry metrics;
  ManualClock clock(At("2026-11-25T00:00:00Z"));
  auto collector = MaterializationStateMetrics::Register(&metrics, config, &clock);
  EXPECT_NE(metrics.Render().find("granary_materialize_state_up 0"), std::string::npos);
}

}  // namespace
}  // namespace granary
