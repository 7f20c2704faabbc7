// One suite every registry store must pass (SQLite and PostgreSQL, the latter against a real
// server started by the fixture), then what only PostgreSQL does: schema versions, the advisory
// lock, the change feed, the database stopped and started under an open store.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "granary/common/temp_dir.h"
#include "granary/registry/postgres_registry.h"
#include "granary/registry/registry_factory.h"
#include "granary/registry/registry_location.h"
#include "granary/registry/registry_transfer.h"
#include "granary/registry/repo_config.h"
#include "granary/testing/postgres_server.h"
#include "granary/testing/registry_definitions.h"

namespace granary {
namespace {

// One server for the whole process; each test takes a schema of its own.
testing::PostgresServer* Postgres() {
  static std::unique_ptr<testing::PostgresServer> server = [] {
    auto started = testing::PostgresServer::Start();
    if (!started.ok()) {
      std::fprintf(stderr, "PostgreSQL not started: %s\n", started.status().ToString().c_str());
      return std::unique_ptr<testing::PostgresServer>();
    }
    return std::move(*started);
  }();
  return server.get();
}

#define REQUIRE_POSTGRES()                                                                    \
  if (Postgres() == nullptr) {                                                                \
    GTEST_SKIP() << "no PostgreSQL server binaries: run scripts/setup (installs postgresql)"; \
  }

int NextSchema() {
  static std::atomic<int> n{0};
  return ++n;
}

RegistryLocation PgLocation(const std::string& schema) {
  return ParseRegistryLocation(Postgres()->Url(schema), "/repo").ValueOrDie();
}

// Runs one SQL statement on the test server, outside Granary.
void Sql(const std::string& sql) {
  const std::string conninfo =
      "host=127.0.0.1 port=" + std::to_string(Postgres()->port()) + " user=granary dbname=postgres";
  PGconn* c = PQconnectdb(conninfo.c_str());
  ASSERT_EQ(PQstatus(c), CONNECTION_OK) << PQerrorMessage(c);
  PGresult* r = PQexec(c, sql.c_str());
  EXPECT_TRUE(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK)
      << PQresultErrorMessage(r);
  PQclear(r);
  PQfinish(c);
}

enum class Backend { kSqlite, kPostgresql };

class RegistryConformance : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::kPostgresql) {
      REQUIRE_POSTGRES();
      location_ = PgLocation("conf_" + std::to_string(NextSchema()));
    } else {
      location_ = RegistryLocation::Sqlite(tmp_.path() / "registry.db");
    }
    ASSERT_FALSE(testing::LoadAndValidate(testing::kValidDefinitions, &defs_).has_errors());
    defs_.project = "parking";
  }
  std::unique_ptr<RegistryStore> Open(OpenMode mode = OpenMode::kCreateIfMissing) {
    auto store = OpenRegistry(location_, mode);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(*store) : nullptr;
  }
  MaterializationRun Run(const std::string& view, const std::string& token) {
    MaterializationRun run;
    run.view = view;
    run.interval_start = Timestamp::FromSeconds(0);
    run.interval_end = Timestamp::FromSeconds(100);
    run.trigger = "materialize";
    run.started_at = Timestamp::FromSeconds(1000);
    run.pid = 42;
    run.host = "host-a";
    run.lock_token = token;
    return run;
  }

  TempDir tmp_ = TempDir::Make("granary_conf_").ValueOrDie();
  RegistryLocation location_;
  Definitions defs_;
};

TEST_P(RegistryConformance, OpeningARegistryNeverAppliedTellsToApply) {
  auto store = OpenRegistry(location_, OpenMode::kOpenExisting);
  ASSERT_FALSE(store.ok());
  EXPECT_TRUE(IsNoDefinitionsApplied(store.status())) << store.status().ToString();
  EXPECT_NE(store.status().message().find("run 'granary apply'"), std::string::npos);
  // Created but empty: the same wording from LatestApplied.
  auto created = Open();
  auto latest = LatestApplied(*created);
  EXPECT_TRUE(IsNoDefinitionsApplied(latest.status())) << latest.status().ToString();
}

TEST_P(RegistryConformance, CommitsVersionsAndReadsThemBackFromAnotherConnection) {
  auto store = Open();
  auto v1 = store->Commit(defs_, Timestamp::FromSeconds(100)).ValueOrDie();
  defs_.entities[0].description = "changed";
  auto v2 = store->Commit(defs_, Timestamp::FromSeconds(200)).ValueOrDie();
  EXPECT_EQ(v1.version, 1);
  EXPECT_EQ(v2.version, 2);
  auto other = Open(OpenMode::kOpenExisting);
  RegistryVersion latest = LatestApplied(*other).ValueOrDie();
  EXPECT_EQ(latest.info.version, 2);
  EXPECT_EQ(latest.info.applied_at, Timestamp::FromSeconds(200));
  EXPECT_EQ(latest.info.fingerprint, v2.fingerprint);
  EXPECT_EQ(latest.definitions.project, "parking");
  EXPECT_EQ(latest.definitions.FindEntity("customer")->description, "changed");
  auto history = other->History(10).ValueOrDie();
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[1].version, 1);
}

TEST_P(RegistryConformance, ACommitPlannedAgainstAnOlderVersionIsAConflictAndWritesNothing) {
  auto store = Open();
  ASSERT_TRUE(store->CommitVersion(defs_, Timestamp::FromSeconds(1), 0).ok());
  auto stale = store->CommitVersion(defs_, Timestamp::FromSeconds(2), 0);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.status().code(), StatusCode::kAlreadyExists);
  EXPECT_NE(stale.status().message().find("another apply stored version 1"), std::string::npos)
      << stale.status().ToString();
  EXPECT_EQ(store->History(10).ValueOrDie().size(), 1u);
}

TEST_P(RegistryConformance, ConcurrentAppliesAgainstOneVersionGiveOneNewVersion) {
  Open()->Commit(defs_, Timestamp::FromSeconds(1)).ValueOrDie();
  constexpr int kWriters = 4;
  std::atomic<int> won{0}, conflicts{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kWriters; ++t) {
    threads.emplace_back([&, t] {
      auto store = OpenRegistry(location_, OpenMode::kOpenExisting);
      if (!store.ok()) {
        ++other;
        return;
      }
      Definitions mine = defs_;
      mine.entities[0].description = "writer " + std::to_string(t);
      auto r = (*store)->CommitVersion(mine, Timestamp::FromSeconds(10 + t), 1);
      if (r.ok()) {
        ++won;
      } else if (r.status().code() == StatusCode::kAlreadyExists) {
        ++conflicts;
      } else {
        ++other;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(conflicts.load(), kWriters - 1);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(Open()->History(10).ValueOrDie().size(), 2u);
}

TEST_P(RegistryConformance, AWatermarkMovesWithItsRunInOneTransaction) {
  auto store = Open();
  const int64_t id = store->StartRun(Run("customer_risk", "t1")).ValueOrDie();
  EXPECT_TRUE(store->Watermarks().ValueOrDie().empty());
  RunOutcome outcome;
  outcome.finished_at = Timestamp::FromSeconds(1010);
  outcome.rows_read = 7;
  outcome.entities_written = 5;
  outcome.advance_watermark_to = Timestamp::FromSeconds(100);
  outcome.watermark_layout = "L1";
  outcome.newest_event = Timestamp::FromSeconds(90);
  outcome.wrote_online_marker = true;
  ASSERT_TRUE(store->FinishRun(id, outcome).ok());
  // Finishing twice is refused and moves nothing.
  outcome.advance_watermark_to = Timestamp::FromSeconds(500);
  EXPECT_EQ(store->FinishRun(id, outcome).code(), StatusCode::kFailedPrecondition);
  auto states = Open(OpenMode::kOpenExisting)->WatermarkStates().ValueOrDie();
  ASSERT_EQ(states.count("customer_risk"), 1u);
  EXPECT_EQ(states["customer_risk"].watermark, Timestamp::FromSeconds(100));
  EXPECT_EQ(states["customer_risk"].layout, "L1");
  EXPECT_EQ(states["customer_risk"].newest_event, Timestamp::FromSeconds(90));
  EXPECT_TRUE(states["customer_risk"].online_marker);
  // An earlier end under the same layout never moves it back.
  const int64_t id2 = store->StartRun(Run("customer_risk", "t1")).ValueOrDie();
  outcome.advance_watermark_to = Timestamp::FromSeconds(50);
  ASSERT_TRUE(store->FinishRun(id2, outcome).ok());
  EXPECT_EQ(store->Watermarks().ValueOrDie()["customer_risk"], Timestamp::FromSeconds(100));
  auto runs = store->Runs("customer_risk", 10).ValueOrDie();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].id, id2);
  EXPECT_EQ(runs[1].rows_read, 7);
  EXPECT_EQ(runs[1].status, RunStatus::kSucceeded);
  EXPECT_EQ(runs[1].host, "host-a");
}

TEST_P(RegistryConformance, ARunUnderAnotherLockTokenIsMarkedInterrupted) {
  auto store = Open();
  const int64_t dead = store->StartRun(Run("customer_risk", "old-token")).ValueOrDie();
  ASSERT_TRUE(store->UpdateRunProgress(dead, 30, 20, 1).ok());
  store->StartRun(Run("customer_risk", "new-token")).ValueOrDie();
  auto runs = store->Runs("", 10).ValueOrDie();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[1].status, RunStatus::kFailed);
  EXPECT_NE(runs[1].error.find("interrupted"), std::string::npos);
  EXPECT_EQ(runs[1].entities_written, 20);
  EXPECT_EQ(runs[0].status, RunStatus::kRunning);
}

TEST_P(RegistryConformance, PushesAddUpPerView) {
  auto store = Open();
  ASSERT_TRUE(store->RecordPush("driver_stats", Timestamp::FromSeconds(10), 3).ok());
  ASSERT_TRUE(store->RecordPush("driver_stats", Timestamp::FromSeconds(5), 4).ok());
  auto pushes = store->Pushes().ValueOrDie();
  EXPECT_EQ(pushes["driver_stats"].rows, 7);
  EXPECT_EQ(pushes["driver_stats"].last_push_at, Timestamp::FromSeconds(10));
}

// Fills a registry with a bit of everything.
void Fill(RegistryStore& store, Definitions defs) {
  store.Commit(defs, Timestamp::FromSeconds(100)).ValueOrDie();
  defs.entities[0].description = "v2";
  store.Commit(defs, Timestamp::FromSeconds(200)).ValueOrDie();
  MaterializationRun run;
  run.view = "customer_risk";
  run.interval_end = Timestamp::FromSeconds(300);
  run.trigger = "schedule";
  run.started_at = Timestamp::FromSeconds(300);
  run.lock_token = "tok";
  run.note = "a note";
  const int64_t id = store.StartRun(run).ValueOrDie();
  RunOutcome ok;
  ok.finished_at = Timestamp::FromSeconds(310);
  ok.advance_watermark_to = Timestamp::FromSeconds(300);
  ok.watermark_layout = "L";
  ok.newest_event = Timestamp::FromSeconds(299);
  ASSERT_TRUE(store.FinishRun(id, ok).ok());
  run.error = "source missing";
  run.finished_at = Timestamp::FromSeconds(320);
  run.status = RunStatus::kFailed;
  store.RecordFailedRun(run).ValueOrDie();
  store.StartRun(run).ValueOrDie();  // left running
  ASSERT_TRUE(store.RecordPush("driver_stats", Timestamp::FromSeconds(330), 12).ok());
}

TEST_P(RegistryConformance, ACopyToAndFromTheOtherBackendKeepsEverythingAndItsFingerprint) {
  REQUIRE_POSTGRES();
  auto source = Open();
  Fill(*source, defs_);
  // Into the other kind of store, then back into a third: the same fingerprint all along.
  const RegistryLocation other = GetParam() == Backend::kSqlite
                                     ? PgLocation("copy_" + std::to_string(NextSchema()))
                                     : RegistryLocation::Sqlite(tmp_.path() / "copy.db");
  auto middle = OpenRegistry(other, OpenMode::kCreateIfMissing).ValueOrDie();
  RegistryTransfer first = CopyRegistry(*source, *middle).ValueOrDie();
  EXPECT_EQ(first.versions, 2);
  EXPECT_EQ(first.runs, 3);
  EXPECT_EQ(first.watermarks, 1);
  EXPECT_EQ(first.pushes, 1);
  EXPECT_EQ(first.latest_version, 2);
  auto back =
      OpenRegistry(RegistryLocation::Sqlite(tmp_.path() / "back.db"), OpenMode::kCreateIfMissing)
          .ValueOrDie();
  RegistryTransfer second = CopyRegistry(*middle, *back).ValueOrDie();
  EXPECT_EQ(second.fingerprint, first.fingerprint);
  EXPECT_EQ(RegistryContentsFingerprint(source->Export().ValueOrDie()), first.fingerprint);
  // The copy is a working registry: runs continue after the copied ids, definitions read back.
  const int64_t next = middle->StartRun(Run("customer_risk", "")).ValueOrDie();
  EXPECT_EQ(next, 4);
  EXPECT_EQ(LatestApplied(*middle).ValueOrDie().definitions.FindEntity("customer")->description,
            "v2");
  // A target that holds anything is refused, and nothing is added to it.
  auto refused = CopyRegistry(*source, *middle);
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(middle->History(10).ValueOrDie().size(), 2u);
}

INSTANTIATE_TEST_SUITE_P(Stores, RegistryConformance,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgresql),
                         [](const auto& info) {
                           return info.param == Backend::kSqlite ? "Sqlite" : "Postgresql";
                         });

// --- PostgreSQL only ---

TEST(PostgresRegistry, ASchemaFromANewerGranaryIsRefused) {
  REQUIRE_POSTGRES();
  const std::string schema = "newer_" + std::to_string(NextSchema());
  ASSERT_TRUE(OpenRegistry(PgLocation(schema), OpenMode::kCreateIfMissing).ok());
  Sql("UPDATE " + schema + ".schema_version SET version = 99");
  auto store = OpenRegistry(PgLocation(schema), OpenMode::kOpenExisting);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("newer Granary (schema 99"), std::string::npos)
      << store.status().ToString();
}

TEST(PostgresRegistry, TwoHostsCreatingOneRegistryAtOnceBothSucceed) {
  REQUIRE_POSTGRES();
  const RegistryLocation loc = PgLocation("race_" + std::to_string(NextSchema()));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      if (!OpenRegistry(loc, OpenMode::kCreateIfMissing).ok()) ++failures;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(PostgresRegistry, TheAdvisoryLockExcludesASecondHolderUntilTheFirstsConnectionEnds) {
  REQUIRE_POSTGRES();
  const RegistryLocation loc = PgLocation("lock_" + std::to_string(NextSchema()));
  ASSERT_TRUE(OpenRegistry(loc, OpenMode::kCreateIfMissing).ok());
  EXPECT_EQ(PostgresAdvisoryLock::CurrentHolder(loc).ValueOrDie(), std::nullopt);
  auto first = PostgresAdvisoryLock::Acquire(loc, "schedule as pid 1 on host-a", "tok-a");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(PostgresAdvisoryLock::CurrentHolder(loc).ValueOrDie(), "tok-a");
  auto second = PostgresAdvisoryLock::Acquire(loc, "schedule as pid 2 on host-b", "tok-b");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kAlreadyExists);
  EXPECT_NE(second.status().message().find("schedule as pid 1 on host-a"), std::string::npos)
      << second.status().ToString();
  // A holder that dies: the database ends its session and the lock with it.
  Sql("SELECT pg_terminate_backend(backend_pid) FROM " + loc.schema + ".materialization_lock");
  for (int i = 0; i < 200 && PostgresAdvisoryLock::CurrentHolder(loc).ValueOrDie(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(PostgresAdvisoryLock::CurrentHolder(loc).ValueOrDie(), std::nullopt);
  auto third = PostgresAdvisoryLock::Acquire(loc, "schedule as pid 3 on host-b", "tok-c");
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  first->reset();  // its connection is gone: releasing must not disturb the new holder
  EXPECT_EQ(PostgresAdvisoryLock::CurrentHolder(loc).ValueOrDie(), "tok-c");
  third->reset();
  EXPECT_EQ(PostgresAdvisoryLock::CurrentHolder(loc).ValueOrDie(), std::nullopt);
}

TEST(PostgresRegistry, TheChangeFeedHearsACommitFromAnotherConnection) {
  REQUIRE_POSTGRES();
  const RegistryLocation loc = PgLocation("feed_" + std::to_string(NextSchema()));
  auto reader = OpenRegistry(loc, OpenMode::kCreateIfMissing).ValueOrDie();
  auto feed = reader->WatchChanges().ValueOrDie();
  ASSERT_NE(feed, nullptr);
  EXPECT_FALSE(feed->Wait(10).ValueOrDie());
  Definitions defs;
  ASSERT_FALSE(testing::LoadAndValidate(testing::kValidDefinitions, &defs).has_errors());
  OpenRegistry(loc, OpenMode::kOpenExisting)
      .ValueOrDie()
      ->Commit(defs, Timestamp::FromSeconds(1))
      .ValueOrDie();
  bool heard = false;
  for (int i = 0; i < 100 && !heard; ++i) heard = feed->Wait(100).ValueOrDie();
  EXPECT_TRUE(heard);
  // Another schema's commits are not this registry's news.
  const RegistryLocation other = PgLocation("feed_" + std::to_string(NextSchema()));
  OpenRegistry(other, OpenMode::kCreateIfMissing)
      .ValueOrDie()
      ->Commit(defs, Timestamp::FromSeconds(1))
      .ValueOrDie();
  EXPECT_FALSE(feed->Wait(300).ValueOrDie());
}

TEST(PostgresRegistry, AStoreOutlivesTheDatabaseGoingDownAndComingBack) {
  REQUIRE_POSTGRES();
  const RegistryLocation loc = PgLocation("restart_" + std::to_string(NextSchema()));
  auto store = OpenRegistry(loc, OpenMode::kCreateIfMissing).ValueOrDie();
  Definitions defs;
  ASSERT_FALSE(testing::LoadAndValidate(testing::kValidDefinitions, &defs).has_errors());
  store->Commit(defs, Timestamp::FromSeconds(1)).ValueOrDie();
  auto feed = store->WatchChanges().ValueOrDie();

  Postgres()->Stop();
  auto down = store->History(1);
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().code(), StatusCode::kUnavailable) << down.status().ToString();
  EXPECT_NE(down.status().message().find(loc.Describe()), std::string::npos);
  auto committed = store->Commit(defs, Timestamp::FromSeconds(2));
  EXPECT_EQ(committed.status().code(), StatusCode::kUnavailable);
  auto opened = OpenRegistry(loc, OpenMode::kOpenExisting);
  EXPECT_EQ(opened.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(opened.status().message().find("cannot connect"), std::string::npos);
  EXPECT_FALSE(feed->Wait(50).ok());  // the feed says it lost its connection

  ASSERT_TRUE(Postgres()->Restart().ok());
  auto history = store->History(10);
  ASSERT_TRUE(history.ok()) << history.status().ToString();
  EXPECT_EQ(history->size(), 1u);  // the failed commit wrote nothing
  EXPECT_EQ(store->Commit(defs, Timestamp::FromSeconds(3)).ValueOrDie().version, 2);
}

TEST(RegistryLocation, ParsesTheSupportedFormsAndRefusesOtherSchemes) {
  auto sqlite = ParseRegistryLocation("data/registry.db", "/repo").ValueOrDie();
  EXPECT_FALSE(sqlite.is_postgresql());
  EXPECT_EQ(sqlite.path, "/repo/data/registry.db");
  EXPECT_EQ(ParseRegistryLocation("sqlite:///var/granary/r.db", "/repo").ValueOrDie().path,
            "/var/granary/r.db");
  auto pg = ParseRegistryLocation(
                "postgresql://alice:p%40ss:w@db.internal:6432/features?schema=shop&sslmode=require",
                "/repo")
                .ValueOrDie();
  EXPECT_TRUE(pg.is_postgresql());
  EXPECT_EQ(pg.schema, "shop");
  EXPECT_EQ(pg.Describe(), "postgresql://alice@db.internal:6432/features?schema=shop");
  EXPECT_EQ(pg.Describe().find("p@ss"), std::string::npos);  // never the password
  EXPECT_NE(pg.conninfo.find("password='p@ss:w'"), std::string::npos) << pg.conninfo;
  EXPECT_NE(pg.conninfo.find("sslmode='require'"), std::string::npos);
  EXPECT_NE(pg.conninfo.find("connect_timeout=5"), std::string::npos);
  EXPECT_EQ(ParseRegistryLocation("postgres://h/db", "/repo").ValueOrDie().schema, "granary");
  auto v6 = ParseRegistryLocation("postgresql://u@[::1]:6543/db", "/repo").ValueOrDie();
  EXPECT_NE(v6.conninfo.find("host='::1'"), std::string::npos) << v6.conninfo;
  EXPECT_NE(v6.conninfo.find("port='6543'"), std::string::npos) << v6.conninfo;
  EXPECT_FALSE(ParseRegistryLocation("postgresql://u@[::1:6543/db", "/repo").ok());

  auto mysql = ParseRegistryLocation("mysql://u@h/db", "/repo");
  EXPECT_EQ(mysql.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(mysql.status().message().find("'mysql://' is not supported"), std::string::npos);
  EXPECT_NE(mysql.status().message().find("postgresql://"), std::string::npos);
  EXPECT_FALSE(ParseRegistryLocation("postgresql://h/db?schema=Bad-Name", "/repo").ok());
  EXPECT_FALSE(ParseRegistryLocation("postgresql://h:port/db", "/repo").ok());
}

TEST(RegistryLocation, GranaryYamlTakesAMappingAndSubstitutesThePassword) {
  TempDir dir = TempDir::Make("granary_loc_").ValueOrDie();
  std::ofstream(dir.path() / "granary.yaml")
      << "project: shop\nregistry:\n  type: postgresql\n  host: db\n  port: 5433\n"
         "  database: features\n  user: granary\n  password: ${PGPASSWORD}\n  schema: shop\n";
  auto lookup = [](const char* name) -> const char* {
    return std::string(name) == "PGPASSWORD" ? "s3cret" : nullptr;
  };
  RepoConfig config = LoadRepoConfig(dir.path(), lookup).ValueOrDie();
  EXPECT_TRUE(config.Registry().is_postgresql());
  EXPECT_EQ(config.Registry().schema, "shop");
  EXPECT_NE(config.Registry().conninfo.find("password='s3cret'"), std::string::npos);
  EXPECT_EQ(config.Registry().Describe(), "postgresql://granary@db:5433/features?schema=shop");

  std::ofstream(dir.path() / "granary.yaml") << "project: shop\nregistry: redis://h:6379\n";
  auto bad = LoadRepoConfig(dir.path(), lookup);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("granary.yaml:2"), std::string::npos)
      << bad.status().ToString();
  EXPECT_NE(bad.status().message().find("'redis://' is not supported"), std::string::npos);
}

}  // namespace
}  // namespace granary
