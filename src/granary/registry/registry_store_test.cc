#include "granary/registry/registry_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "granary/common/temp_dir.h"
#include "granary/testing/registry_definitions.h"

namespace granary {
namespace {

class RegistryStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(testing::LoadAndValidate(testing::kValidDefinitions, &defs_).has_errors());
    defs_.project = "parking";
  }
  TempDir tmp_ = TempDir::Make("granary_reg_").ValueOrDie();
  const std::filesystem::path dir_ = tmp_.path();
  Definitions defs_;
};

TEST_F(RegistryStoreTest, MissingRegistryTellsToApply) {
  auto store = OpenSqliteRegistry(dir_ / "registry.db", OpenMode::kOpenExisting);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("run 'granary apply'"), std::string::npos);
}

TEST_F(RegistryStoreTest, CommitsVersionsAndReadsTheLatestBack) {
  auto store =
      OpenSqliteRegistry(dir_ / "sub/registry.db", OpenMode::kCreateIfMissing).ValueOrDie();
  EXPECT_FALSE(store->Latest().ValueOrDie().has_value());
  auto v1 = store->Commit(defs_, Timestamp::FromSeconds(100)).ValueOrDie();
  defs_.entities[0].description = "changed";
  auto v2 = store->Commit(defs_, Timestamp::FromSeconds(200)).ValueOrDie();
  EXPECT_EQ(v1.version, 1);
  EXPECT_EQ(v2.version, 2);
  EXPECT_NE(v1.fingerprint, v2.fingerprint);

  store.reset();
  auto reopened =
      OpenSqliteRegistry(dir_ / "sub/registry.db", OpenMode::kOpenExisting).ValueOrDie();
  auto latest = reopened->Latest().ValueOrDie();
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(latest->info.version, 2);
  EXPECT_EQ(latest->info.applied_at, Timestamp::FromSeconds(200));
  EXPECT_EQ(latest->definitions.project, "parking");
  EXPECT_EQ(latest->definitions.FindEntity("customer")->description, "changed");
  EXPECT_EQ(latest->definitions.FindFeatureView("customer_risk")->ttl, Duration::Days(90));
  auto history = reopened->History(10).ValueOrDie();
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0].version, 2);
  // Any version reads back with its own definitions.
  auto first = reopened->Version(1).ValueOrDie();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->info.applied_at, Timestamp::FromSeconds(100));
  EXPECT_EQ(first->definitions.FindEntity("customer")->description, "A customer");
  EXPECT_EQ(first->definitions.project, "parking");
  EXPECT_FALSE(reopened->Version(3).ValueOrDie().has_value());
}

TEST_F(RegistryStoreTest, ConcurrentWritersGetDistinctVersions) {
  const auto path = dir_ / "registry.db";
  ASSERT_TRUE(OpenSqliteRegistry(path, OpenMode::kCreateIfMissing).ok());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto store = OpenSqliteRegistry(path, OpenMode::kOpenExisting);
      if (!store.ok()) {
        ++failures;
        return;
      }
      for (int i = 0; i < 10; ++i) {
        if (!(*store)->Commit(defs_, Timestamp::FromSeconds(t * 100 + i)).ok()) ++failures;
        if (!(*store)->Latest().ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto store = OpenSqliteRegistry(path, OpenMode::kOpenExisting).ValueOrDie();
  auto history = store->History(100).ValueOrDie();
  ASSERT_EQ(history.size(), 40u);
  EXPECT_EQ(history.front().version, 40);
}

MaterializationRun RunOf(const std::string& view, int64_t end_seconds, int64_t pid = getpid()) {
  MaterializationRun run;
  run.view = view;
  run.interval_start = Timestamp::FromSeconds(0);
  run.interval_end = Timestamp::FromSeconds(end_seconds);
  run.trigger = "materialize-incremental";
  run.started_at = Timestamp::FromSeconds(end_seconds + 1);
  run.pid = pid;
  run.host = "testhost";
  return run;
}

RunOutcome Outcome(RunStatus status, std::optional<int64_t> watermark_seconds) {
  RunOutcome outcome;
  outcome.status = status;
  outcome.finished_at = Timestamp::FromSeconds(5000);
  outcome.rows_read = 10;
  outcome.entities_written = 4;
  outcome.entities_skipped = 1;
  if (status == RunStatus::kFailed) outcome.error = "redis 127.0.0.1:7000: connection refused";
  if (watermark_seconds) outcome.advance_watermark_to = Timestamp::FromSeconds(*watermark_seconds);
  return outcome;
}

TEST_F(RegistryStoreTest, WatermarkAdvancesOnlyWithASucceededRunAndNeverBackwards) {
  auto store = OpenSqliteRegistry(dir_ / "registry.db", OpenMode::kCreateIfMissing).ValueOrDie();
  EXPECT_TRUE(store->Watermarks().ValueOrDie().empty());

  int64_t failed = store->StartRun(RunOf("customer_risk", 100)).ValueOrDie();
  ASSERT_TRUE(store->FinishRun(failed, Outcome(RunStatus::kFailed, 100)).ok());
  EXPECT_TRUE(store->Watermarks().ValueOrDie().empty()) << "a failed run moved the watermark";

  int64_t ok = store->StartRun(RunOf("customer_risk", 200)).ValueOrDie();
  ASSERT_TRUE(store->FinishRun(ok, Outcome(RunStatus::kSucceeded, 200)).ok());
  EXPECT_EQ(store->Watermarks().ValueOrDie().at("customer_risk"), Timestamp::FromSeconds(200));

  int64_t older = store->StartRun(RunOf("customer_risk", 150)).ValueOrDie();
  ASSERT_TRUE(store->FinishRun(older, Outcome(RunStatus::kSucceeded, 150)).ok());
  EXPECT_EQ(store->Watermarks().ValueOrDie().at("customer_risk"), Timestamp::FromSeconds(200));

  int64_t no_advance = store->StartRun(RunOf("customer_risk", 900)).ValueOrDie();
  ASSERT_TRUE(store->FinishRun(no_advance, Outcome(RunStatus::kSucceeded, std::nullopt)).ok());
  EXPECT_EQ(store->Watermarks().ValueOrDie().at("customer_risk"), Timestamp::FromSeconds(200));
}

TEST_F(RegistryStoreTest, RunHistoryKeepsCountsAndErrorsNewestFirst) {
  auto store = OpenSqliteRegistry(dir_ / "registry.db", OpenMode::kCreateIfMissing).ValueOrDie();
  int64_t a = store->StartRun(RunOf("bay_demand", 100)).ValueOrDie();
  int64_t b = store->StartRun(RunOf("customer_risk", 100)).ValueOrDie();
  ASSERT_TRUE(store->FinishRun(a, Outcome(RunStatus::kSucceeded, 100)).ok());
  ASSERT_TRUE(store->FinishRun(b, Outcome(RunStatus::kFailed, std::nullopt)).ok());
  int64_t c = store->StartRun(RunOf("customer_risk", 200)).ValueOrDie();

  auto all = store->Runs("", 10).ValueOrDie();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].id, c);
  EXPECT_EQ(all[0].status, RunStatus::kRunning);
  EXPECT_FALSE(all[0].finished_at.has_value());

  auto risk = store->Runs("customer_risk", 10).ValueOrDie();
  ASSERT_EQ(risk.size(), 2u);
  EXPECT_EQ(risk[1].id, b);
  EXPECT_EQ(risk[1].status, RunStatus::kFailed);
  EXPECT_EQ(risk[1].error, "redis 127.0.0.1:7000: connection refused");
  EXPECT_EQ(risk[1].rows_read, 10);
  EXPECT_EQ(risk[1].entities_written, 4);
  EXPECT_EQ(risk[1].entities_skipped, 1);
  EXPECT_EQ(risk[1].trigger, "materialize-incremental");
  EXPECT_EQ(risk[1].interval_end, Timestamp::FromSeconds(100));
  EXPECT_EQ(*risk[1].finished_at, Timestamp::FromSeconds(5000));

  EXPECT_EQ(store->FinishRun(a, Outcome(RunStatus::kSucceeded, 100)).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(store->FinishRun(999, Outcome(RunStatus::kSucceeded, 100)).code(),
            StatusCode::kNotFound);
}

TEST_F(RegistryStoreTest, ARunUnderAnotherLockTokenIsRecordedFailedByTheNextRunKeepingItsCounts) {
  auto store = OpenSqliteRegistry(dir_ / "registry.db", OpenMode::kCreateIfMissing).ValueOrDie();
  // Liveness is the lock's, not the pid's: the cut-off run's process may even still exist (a
  // zombie, or a reused pid: here it is this very process).
  MaterializationRun first = RunOf("customer_risk", 100);
  first.lock_token = "token-of-a-killed-run";
  int64_t crashed = store->StartRun(first).ValueOrDie();
  ASSERT_TRUE(store->UpdateRunProgress(crashed, 1000, 700, 5).ok());
  MaterializationRun second = RunOf("bay_demand", 100);
  second.lock_token = "token-held-now";
  int64_t alive = store->StartRun(second).ValueOrDie();
  auto runs = store->Runs("", 10).ValueOrDie();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[1].id, crashed);
  EXPECT_EQ(runs[1].status, RunStatus::kFailed);
  EXPECT_NE(runs[1].error.find("interrupted"), std::string::npos) << runs[1].error;
  EXPECT_NE(runs[1].error.find("watermark was not advanced"), std::string::npos);
  EXPECT_EQ(runs[1].rows_read, 1000);
  EXPECT_EQ(runs[1].entities_written, 700);
  EXPECT_EQ(runs[1].entities_skipped, 5);
  EXPECT_EQ(runs[1].lock_token, "token-of-a-killed-run");
  EXPECT_EQ(runs[0].id, alive);
  EXPECT_EQ(runs[0].status, RunStatus::kRunning);
  EXPECT_TRUE(store->Watermarks().ValueOrDie().empty());
  // A caller without a token marks nothing.
  int64_t third = store->StartRun(RunOf("customer_risk", 200)).ValueOrDie();
  EXPECT_EQ(store->Runs("bay_demand", 1).ValueOrDie()[0].status, RunStatus::kRunning);
  EXPECT_GT(third, alive);
}

TEST_F(RegistryStoreTest, AnAttemptThatFailedBeforeStartingIsRecordedWithItsError) {
  auto store = OpenSqliteRegistry(dir_ / "registry.db", OpenMode::kCreateIfMissing).ValueOrDie();
  MaterializationRun run = RunOf("customer_risk", 100);
  run.status = RunStatus::kFailed;
  run.finished_at = Timestamp::FromSeconds(102);
  run.error = "redis at 127.0.0.1:1: connection refused";
  int64_t id = store->RecordFailedRun(run).ValueOrDie();
  auto runs = store->Runs("customer_risk", 10).ValueOrDie();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].id, id);
  EXPECT_EQ(runs[0].status, RunStatus::kFailed);
  EXPECT_EQ(runs[0].error, run.error);
  EXPECT_EQ(runs[0].finished_at, Timestamp::FromSeconds(102));
  EXPECT_TRUE(store->Watermarks().ValueOrDie().empty());
}

TEST_F(RegistryStoreTest, TheNewestEventTimeOnlyMovesForwardUnderOneLayout) {
  auto store = OpenSqliteRegistry(dir_ / "registry.db", OpenMode::kCreateIfMissing).ValueOrDie();
  auto finish = [&](int64_t end, std::optional<int64_t> newest, const std::string& layout,
                    bool marker) {
    MaterializationRun run = RunOf("customer_risk", end);
    run.note = "a note";
    int64_t id = store->StartRun(run).ValueOrDie();
    RunOutcome outcome = Outcome(RunStatus::kSucceeded, end);
    if (newest) outcome.newest_event = Timestamp::FromSeconds(*newest);
    outcome.watermark_layout = layout;
    outcome.wrote_online_marker = marker;
    ASSERT_TRUE(store->FinishRun(id, outcome).ok());
  };
  finish(100, 90, "a", true);
  auto state = store->WatermarkStates().ValueOrDie().at("customer_risk");
  EXPECT_EQ(state.newest_event, Timestamp::FromSeconds(90));
  EXPECT_TRUE(state.online_marker);
  finish(200, std::nullopt, "a", true);  // wrote nothing: the data is as old as before
  state = store->WatermarkStates().ValueOrDie().at("customer_risk");
  EXPECT_EQ(state.newest_event, Timestamp::FromSeconds(90));
  finish(300, 80, "a", false);  // an older row: the newest stays
  state = store->WatermarkStates().ValueOrDie().at("customer_risk");
  EXPECT_EQ(state.newest_event, Timestamp::FromSeconds(90));
  EXPECT_FALSE(state.online_marker);
  finish(400, 70, "b", true);  // a new layout starts over
  state = store->WatermarkStates().ValueOrDie().at("customer_risk");
  EXPECT_EQ(state.newest_event, Timestamp::FromSeconds(70));
  EXPECT_EQ(state.watermark, Timestamp::FromSeconds(400));
  auto runs = store->Runs("customer_risk", 1).ValueOrDie();
  EXPECT_EQ(runs[0].newest_event, Timestamp::FromSeconds(70));
  EXPECT_EQ(runs[0].note, "a note");
}

TEST_F(RegistryStoreTest, PushesAreAddedUpPerView) {
  auto store = OpenSqliteRegistry(dir_ / "registry.db", OpenMode::kCreateIfMissing).ValueOrDie();
  EXPECT_TRUE(store->Pushes().ValueOrDie().empty());
  ASSERT_TRUE(store->RecordPush("risk", Timestamp::FromSeconds(100), 3).ok());
  ASSERT_TRUE(store->RecordPush("risk", Timestamp::FromSeconds(90), 2).ok());  // late batch
  ASSERT_TRUE(store->RecordPush("bays", Timestamp::FromSeconds(50), 1).ok());
  auto pushes = store->Pushes().ValueOrDie();
  ASSERT_EQ(pushes.size(), 2u);
  EXPECT_EQ(pushes.at("risk").last_push_at, Timestamp::FromSeconds(100));
  EXPECT_EQ(pushes.at("risk").rows, 5);
  EXPECT_EQ(pushes.at("bays").rows, 1);
}

TEST_F(RegistryStoreTest, AVersionOneRegistryIsMigratedOnOpen) {
  const auto path = dir_ / "registry.db";
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "CREATE TABLE registry_versions (version INTEGER PRIMARY KEY, "
                           "applied_at INTEGER NOT NULL, fingerprint TEXT NOT NULL, project TEXT "
                           "NOT NULL, definitions TEXT NOT NULL); PRAGMA user_version = 1;",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  auto store = OpenSqliteRegistry(path, OpenMode::kOpenExisting).ValueOrDie();
  int64_t id = store->StartRun(RunOf("customer_risk", 100)).ValueOrDie();
  ASSERT_TRUE(store->FinishRun(id, Outcome(RunStatus::kSucceeded, 100)).ok());
  EXPECT_EQ(store->Watermarks().ValueOrDie().size(), 1u);
}

TEST_F(RegistryStoreTest, OpeningAndReadingDoNotWaitForAnotherProcessesOpenWrite) {
  const auto path = dir_ / "registry.db";
  {
    auto store = OpenSqliteRegistry(path, OpenMode::kCreateIfMissing).ValueOrDie();
    ASSERT_TRUE(store->Commit(defs_, Timestamp::FromSeconds(100)).ok());
  }
  // A writer (a materialization) in the middle of a transaction, as when it is paused there.
  sqlite3* writer = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &writer), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(writer, "BEGIN IMMEDIATE; INSERT INTO view_pushes VALUES ('risk', 1, 1);",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  // Before, opening took a write transaction of its own: it waited out the 10 s busy timeout and
  // failed (Unavailable).
  auto reader = OpenSqliteRegistry(path, OpenMode::kOpenExisting);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  auto latest = (*reader)->Latest().ValueOrDie();
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(latest->info.version, 1);
  EXPECT_TRUE((*reader)->Pushes().ValueOrDie().empty());  // the uncommitted push is not seen
  ASSERT_EQ(sqlite3_exec(writer, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(writer);
  EXPECT_EQ((*reader)->Pushes().ValueOrDie().size(), 1u);
}

TEST_F(RegistryStoreTest, AWatermarkOfAnotherLayoutIsReplacedNotAdvanced) {
  auto store = OpenSqliteRegistry(dir_ / "registry.db", OpenMode::kCreateIfMissing).ValueOrDie();
  auto finish = [&](int64_t end, std::string layout) {
    int64_t id = store->StartRun(RunOf("customer_risk", end)).ValueOrDie();
    RunOutcome outcome = Outcome(RunStatus::kSucceeded, end);
    outcome.watermark_layout = std::move(layout);
    ASSERT_TRUE(store->FinishRun(id, outcome).ok());
  };
  finish(200, "aaaa0001");
  finish(150, "aaaa0001");  // same layout: never backwards
  auto states = store->WatermarkStates().ValueOrDie();
  EXPECT_EQ(states.at("customer_risk").watermark, Timestamp::FromSeconds(200));
  EXPECT_EQ(states.at("customer_risk").layout, "aaaa0001");
  EXPECT_EQ(states.at("customer_risk").updated_at, Timestamp::FromSeconds(5000));
  finish(120, "bbbb0002");  // the schema changed: the earlier end replaces it
  states = store->WatermarkStates().ValueOrDie();
  EXPECT_EQ(states.at("customer_risk").watermark, Timestamp::FromSeconds(120));
  EXPECT_EQ(states.at("customer_risk").layout, "bbbb0002");
  EXPECT_EQ(store->Watermarks().ValueOrDie().at("customer_risk"), Timestamp::FromSeconds(120));
}

TEST_F(RegistryStoreTest, AVersionTwoRegistryKeepsItsWatermarksWithAnUnknownLayout) {
  const auto path = dir_ / "registry.db";
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "CREATE TABLE registry_versions (version INTEGER PRIMARY KEY, "
                           "applied_at INTEGER NOT NULL, fingerprint TEXT NOT NULL, project TEXT "
                           "NOT NULL, definitions TEXT NOT NULL);"
                           "CREATE TABLE watermarks (view TEXT PRIMARY KEY, watermark INTEGER NOT "
                           "NULL, updated_at INTEGER NOT NULL);"
                           "CREATE TABLE materialization_runs (id INTEGER PRIMARY KEY "
                           "AUTOINCREMENT, view TEXT NOT NULL, interval_start INTEGER NOT NULL, "
                           "interval_end INTEGER NOT NULL, triggered_by TEXT NOT NULL, started_at "
                           "INTEGER NOT NULL, finished_at INTEGER, status TEXT NOT NULL, rows_read "
                           "INTEGER NOT NULL DEFAULT 0, entities_written INTEGER NOT NULL DEFAULT "
                           "0, entities_skipped INTEGER NOT NULL DEFAULT 0, error TEXT NOT NULL "
                           "DEFAULT '', pid INTEGER NOT NULL, host TEXT NOT NULL);"
                           "INSERT INTO watermarks VALUES ('customer_risk', 7000000, 8000000);"
                           "PRAGMA user_version = 2;",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  auto store = OpenSqliteRegistry(path, OpenMode::kOpenExisting).ValueOrDie();
  auto states = store->WatermarkStates().ValueOrDie();
  ASSERT_EQ(states.size(), 1u);
  EXPECT_EQ(states.at("customer_risk").watermark, Timestamp::FromSeconds(7));
  EXPECT_EQ(states.at("customer_risk").layout, "");
  store.reset();
  // Opening again does not migrate twice.
  store = OpenSqliteRegistry(path, OpenMode::kOpenExisting).ValueOrDie();
  EXPECT_EQ(store->WatermarkStates().ValueOrDie().size(), 1u);
}

TEST_F(RegistryStoreTest, AFileThatIsNotARegistryIsReportedAsCorrupt) {
  std::filesystem::create_directories(dir_);
  std::ofstream(dir_ / "registry.db") << "this is not sqlite, just some text that is long enough "
                                         "to look like a header of something else entirely";
  auto store = OpenSqliteRegistry(dir_ / "registry.db", OpenMode::kOpenExisting);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kCorruption) << store.status().ToString();
}

}  // namespace
}  // namespace granary
