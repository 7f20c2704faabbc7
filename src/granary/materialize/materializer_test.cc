// Materialization end to end on real stores: Parquet files in a temporary repository, the SQLite
// registry, and RocksDB, a redis-server or a 3+3 Redis Cluster.
#include "granary/materialize/materializer.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <future>
#include <tuple>

#include "granary/materialize/interval.h"
#include "granary/materialize/online_check.h"
#include "granary/materialize/repository_lock.h"
#include "granary/materialize/view_status.h"
#include "granary/online/view_layout.h"
#include "granary/registry/loader.h"
#include "granary/testing/materialize_repository.h"

namespace granary {
namespace {

using testing::At;
using testing::OnlineRisk;
using testing::RiskRow;
using testing::TestRepo;

std::vector<int64_t> Ids(int64_t from, int64_t to) {
  std::vector<int64_t> out;
  for (int64_t i = from; i <= to; ++i) out.push_back(i);
  return out;
}

OnlineRisk Present(const char* event, double score, int64_t failures = 0) {
  return OnlineRisk{FeatureStatus::kPresent, At(event), score, failures};
}

// A copy: callers pass a temporary report.
ViewMaterialization OnlyView(const Result<MaterializeReport>& report) {
  EXPECT_TRUE(report.ok()) << report.status().ToString();
  if (!report.ok() || report->views.size() != 1) {
    ADD_FAILURE() << "expected one view";
    return {};
  }
  return report->views[0];
}

class MaterializeOnEveryStore : public ::testing::TestWithParam<std::string> {};

TEST_P(MaterializeOnEveryStore, IncrementalRunsPickUpOnlyNewRows) {
  auto repo = TestRepo::Make(GetParam());
  std::vector<RiskRow> rows;
  for (int64_t id = 1; id <= 50; ++id)
    rows.push_back({id, At("2026-11-25T08:00:00Z"), {}, 1.0 * id});
  rows.push_back({1, At("2026-11-24T08:00:00Z"), {}, -1});   // older history
  rows.push_back({2, At("2026-11-22T00:00:00Z"), {}, -2});   // before END - ttl: not read
  rows.push_back({60, At("2026-11-25T10:00:00Z"), {}, 60});  // exactly at the first END
  repo->WriteRows("day1", rows);

  const auto first = OnlyView(repo->Incremental(At("2026-11-25T10:00:00Z")));
  ASSERT_TRUE(first.status.ok()) << first.status.ToString();
  EXPECT_EQ(FormatIntervalStart(first.start), "2026-11-23T10:00:00Z");  // END - ttl
  EXPECT_EQ(first.rows_in_range, 52);
  EXPECT_EQ(first.entities, 51);
  EXPECT_EQ(first.entities_written, 51);
  EXPECT_EQ(first.entities_skipped, 0);
  EXPECT_EQ(repo->Watermark(), At("2026-11-25T10:00:00Z"));

  // New rows after the watermark, and a late row before it (an incremental run never reads it).
  repo->WriteRows(
      "day2", {{3, At("2026-11-25T11:00:00Z"), {}, 300}, {4, At("2026-11-25T09:00:00Z"), {}, 400}});
  repo->clock.Set(At("2026-11-25T12:00:00Z"));
  const auto second = OnlyView(repo->Incremental(At("2026-11-25T11:30:00Z")));
  ASSERT_TRUE(second.status.ok()) << second.status.ToString();
  EXPECT_EQ(FormatIntervalStart(second.start), "2026-11-25T10:00:00.000001Z");
  EXPECT_EQ(second.rows_in_range, 1);  // customer 60's row at the old watermark is not re-read
  EXPECT_EQ(second.entities_written, 1);
  EXPECT_EQ(repo->Watermark(), At("2026-11-25T11:30:00Z"));

  auto online = repo->ReadRisk({1, 2, 3, 4, 60, 99});
  EXPECT_EQ(online[1], Present("2026-11-25T08:00:00Z", 1));
  EXPECT_EQ(online[2], Present("2026-11-25T08:00:00Z", 2));
  EXPECT_EQ(online[3], Present("2026-11-25T11:00:00Z", 300));
  EXPECT_EQ(online[4], Present("2026-11-25T08:00:00Z", 4));
  EXPECT_EQ(online[60], Present("2026-11-25T10:00:00Z", 60));
  EXPECT_EQ(online[99].status, FeatureStatus::kNotFound);

  auto runs = repo->Registry()->Runs("risk", 10).ValueOrDie();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].status, RunStatus::kSucceeded);
  EXPECT_EQ(runs[0].entities_written, 1);
  EXPECT_EQ(runs[0].trigger, "materialize-incremental");
  EXPECT_EQ(runs[1].interval_end, At("2026-11-25T10:00:00Z"));
}

// What the store holds now against the registry's watermarks (online_check.h), by view.
std::map<std::string, ViewDataCheck> CheckNow(TestRepo& repo) {
  auto checks = CheckOnlineData(*repo.Registry(), repo.definitions(), repo.config, *repo.store());
  EXPECT_TRUE(checks.ok()) << checks.status().ToString();
  std::map<std::string, ViewDataCheck> out;
  if (checks.ok()) {
    for (ViewDataCheck& c : *checks) out[c.view] = std::move(c);
  }
  return out;
}

// The data loss an operator meets: FLUSHALL on Redis, one master of the cluster flushed (a
// restarted empty master is RedisClusterMasterRestartedEmpty below), the RocksDB folder deleted.
void LoseOnlineData(TestRepo& repo, const std::string& kind) {
  if (kind == "rocksdb") {
    repo.CloseStore();
    std::filesystem::remove_all(repo.config.Resolve(repo.config.online_store.path));
  } else if (kind == "redis") {
    ASSERT_TRUE(testing::SharedRedisServer().ValueOrDie()->Check({"FLUSHALL"}).ok());
  } else {
    auto* cluster = testing::SharedRedisCluster().ValueOrDie();
    const int master = cluster->MasterOf(0).ValueOrDie();
    ASSERT_TRUE(cluster->node(master).Check({"FLUSHALL"}).ok());
  }
}

// Checks that the loss shows, that the next incremental run reloads the view over its ttl window
// and says why, and that the store holds every entity again.
void ExpectReloadAfterLoss(TestRepo& repo, const std::vector<std::string>& expected_lost_shards,
                           size_t shards) {
  auto lost = CheckNow(repo).at("risk");
  ASSERT_EQ(lost.state, ViewDataCheck::State::kLost) << lost.reason;
  EXPECT_EQ(lost.lost_shards, expected_lost_shards);
  EXPECT_EQ(lost.shards, static_cast<int>(shards));
  EXPECT_NE(lost.reason.find("no marker on " + expected_lost_shards[0]), std::string::npos)
      << lost.reason;
  auto before = repo.ReadRisk(Ids(1, 300));
  int missing = 0;
  for (const auto& [id, row] : before) missing += row.status == FeatureStatus::kNotFound ? 1 : 0;
  EXPECT_GT(missing, 0);

  repo.clock.Set(At("2026-11-25T12:00:00Z"));
  const auto reload = OnlyView(repo.Incremental(At("2026-11-25T11:00:00Z")));
  ASSERT_TRUE(reload.status.ok()) << reload.status.ToString();
  EXPECT_NE(reload.reload_reason.find("online data lost"), std::string::npos)
      << reload.reload_reason;
  EXPECT_EQ(FormatIntervalStart(reload.start), "2026-11-23T11:00:00Z");  // END - ttl
  EXPECT_EQ(reload.entities, 300);
  EXPECT_EQ(reload.entities_written + reload.entities_skipped, 300);
  EXPECT_GE(reload.entities_written, missing);
  auto run = repo.Registry()->Runs("risk", 1).ValueOrDie().at(0);
  EXPECT_EQ(run.status, RunStatus::kSucceeded);
  EXPECT_EQ(run.note.rfind("reload over the ttl window: online data lost: no marker on ", 0), 0u)
      << run.note;
  EXPECT_EQ(repo.Watermark(), At("2026-11-25T11:00:00Z"));
  auto online = repo.ReadRisk(Ids(1, 300));
  for (int64_t id = 1; id <= 300; ++id) {
    ASSERT_EQ(online[id], Present("2026-11-25T08:00:00Z", 1.0 * id)) << id;
  }
  EXPECT_EQ(CheckNow(repo).at("risk").state, ViewDataCheck::State::kIntact);
  // Nothing lost now: the next run is incremental again.
  const auto next = OnlyView(repo.Incremental(At("2026-11-25T11:30:00Z")));
  EXPECT_TRUE(next.reload_reason.empty()) << next.reload_reason;
  EXPECT_EQ(next.entities, 0);
}

std::vector<RiskRow> ThreeHundredCustomers() {
  std::vector<RiskRow> rows;
  for (int64_t id = 1; id <= 300; ++id) {
    rows.push_back({id, At("2026-11-25T08:00:00Z"), {}, 1.0 * id});
  }
  return rows;
}

TEST_P(MaterializeOnEveryStore, LostOnlineDataIsDetectedAndReloadedByTheNextIncrementalRun) {
  auto repo = TestRepo::Make(GetParam());
  repo->WriteRows("rows", ThreeHundredCustomers());
  EXPECT_EQ(CheckNow(*repo).at("risk").state, ViewDataCheck::State::kNotChecked);  // nothing yet
  ASSERT_TRUE(OnlyView(repo->Incremental(At("2026-11-25T10:00:00Z"))).status.ok());
  auto intact = CheckNow(*repo).at("risk");
  EXPECT_EQ(intact.state, ViewDataCheck::State::kIntact) << intact.reason;
  EXPECT_TRUE(repo->Registry()->WatermarkStates().ValueOrDie().at("risk").online_marker);

  std::vector<std::string> lost_shards = {repo->store()->Describe()};
  size_t shards = 1;
  if (GetParam() == "redis_cluster") {
    auto* cluster = testing::SharedRedisCluster().ValueOrDie();
    lost_shards = {cluster->node(cluster->MasterOf(0).ValueOrDie()).address()};
    shards = 3;
  }
  LoseOnlineData(*repo, GetParam());
  if (GetParam() == "rocksdb") lost_shards = {repo->store()->Describe()};  // reopened, empty
  ExpectReloadAfterLoss(*repo, lost_shards, shards);
}

TEST(Materialize, RedisClusterMasterRestartedEmptyIsDetectedAndReloaded) {
  // A cluster of its own, without replicas: the restarted master keeps its slots, empty.
  auto cluster = testing::RedisCluster::Start(3, 0);
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  auto repo = TestRepo::Make("rocksdb");
  repo->config.online_store.type = "redis_cluster";
  repo->config.online_store.nodes = (*cluster)->SeedNodes();
  repo->WriteRows("rows", ThreeHundredCustomers());
  ASSERT_TRUE(OnlyView(repo->Incremental(At("2026-11-25T10:00:00Z"))).status.ok());
  EXPECT_EQ(CheckNow(*repo).at("risk").state, ViewDataCheck::State::kIntact);
  ASSERT_TRUE((*cluster)->RestartMasterEmpty(1).ok());
  ASSERT_EQ((*cluster)->node(1).Check({"DBSIZE"}).ValueOrDie().integer, 0);
  ExpectReloadAfterLoss(*repo, {(*cluster)->node(1).address()}, 3);
}

TEST_P(MaterializeOnEveryStore, ARerunChangesNothing) {
  auto repo = TestRepo::Make(GetParam());
  std::vector<RiskRow> rows;
  for (int64_t id = 1; id <= 200; ++id) {
    rows.push_back({id, At("2026-11-25T06:00:00Z"), At("2026-11-25T06:30:00Z"), 0.5 * id, id});
    rows.push_back({id, At("2026-11-25T07:00:00Z"), {}, 2.0 * id, id + 1});
  }
  repo->WriteRows("rows", rows);
  ASSERT_TRUE(OnlyView(repo->Incremental(At("2026-11-25T10:00:00Z"))).status.ok());
  const auto before = repo->ReadRisk(Ids(1, 200));
  EXPECT_EQ(before.at(7), Present("2026-11-25T07:00:00Z", 14, 8));

  // The same END again: nothing to read, no run recorded.
  const auto again = OnlyView(repo->Incremental(At("2026-11-25T10:00:00Z")));
  EXPECT_TRUE(again.status.ok());
  EXPECT_TRUE(again.up_to_date);
  EXPECT_EQ(again.run_id, 0);
  EXPECT_EQ(again.scan.rows_scanned, 0);
  EXPECT_EQ(repo->Registry()->Runs("risk", 10).ValueOrDie().size(), 1u);

  // The same interval explicitly: the same rows again, the same online state and watermark.
  const auto rerun =
      OnlyView(repo->Interval(At("2026-11-23T10:00:00Z"), At("2026-11-25T10:00:00Z")));
  ASSERT_TRUE(rerun.status.ok()) << rerun.status.ToString();
  EXPECT_EQ(rerun.entities, 200);
  EXPECT_EQ(rerun.entities_skipped, 0);
  EXPECT_EQ(repo->ReadRisk(Ids(1, 200)), before);
  EXPECT_EQ(repo->Watermark(), At("2026-11-25T10:00:00Z"));
}

TEST_P(MaterializeOnEveryStore, LateOlderRowsNeverOverwriteNewerOnlineValues) {
  auto repo = TestRepo::Make(GetParam());
  repo->WriteRows("current", {{1, At("2026-11-25T08:00:00Z"), {}, 1},
                              {2, At("2026-11-25T08:00:00Z"), At("2026-11-25T09:00:00Z"), 2}});
  ASSERT_TRUE(OnlyView(repo->Incremental(At("2026-11-25T10:00:00Z"))).status.ok());
  // The files that held the newer rows are gone (retention), and late, older rows arrive: one
  // with an earlier event time, one with the same event time but an earlier created time.
  std::filesystem::remove(repo->config.root / "data/payments/current.parquet");
  repo->WriteRows("late", {{1, At("2026-11-25T07:00:00Z"), {}, 99},
                           {2, At("2026-11-25T08:00:00Z"), At("2026-11-25T08:30:00Z"), 98}});
  const auto backfill =
      OnlyView(repo->Interval(At("2026-11-25T00:00:00Z"), At("2026-11-25T10:00:00Z")));
  ASSERT_TRUE(backfill.status.ok()) << backfill.status.ToString();
  EXPECT_EQ(backfill.entities, 2);
  EXPECT_EQ(backfill.entities_written, 0);
  EXPECT_EQ(backfill.entities_skipped, 2);
  auto online = repo->ReadRisk({1, 2});
  EXPECT_EQ(online[1], Present("2026-11-25T08:00:00Z", 1));
  EXPECT_EQ(online[2], Present("2026-11-25T08:00:00Z", 2));
  EXPECT_EQ(repo->Registry()->Runs("risk", 1).ValueOrDie()[0].entities_skipped, 2);
}

TEST_P(MaterializeOnEveryStore, ASchemaChangeMakesTheNextIncrementalRunStartOver) {
  auto repo = TestRepo::Make(GetParam());
  std::vector<RiskRow> rows;
  for (int64_t id = 1; id <= 10; ++id)
    rows.push_back({id, At("2026-11-25T08:00:00Z"), {}, 1.0 * id});
  repo->WriteRows("rows", rows);
  ASSERT_TRUE(OnlyView(repo->Incremental(At("2026-11-25T10:00:00Z"))).status.ok());

  // A later apply adds a feature: the values stored under the old schema read as NOT_FOUND.
  std::string changed = testing::kRiskDefinitions;
  changed += "      - {name: note, type: string}\n";
  repo->Apply(changed);
  EXPECT_EQ(repo->ReadRisk({1})[1].status, FeatureStatus::kNotFound);

  // No new rows, yet the next incremental run reads one ttl back and fills the store again.
  const auto next = OnlyView(repo->Incremental(At("2026-11-25T11:00:00Z")));
  ASSERT_TRUE(next.status.ok()) << next.status.ToString();
  EXPECT_TRUE(next.started_over);
  EXPECT_EQ(FormatIntervalStart(next.start), "2026-11-23T11:00:00Z");
  EXPECT_EQ(next.entities_written, 10);
  EXPECT_EQ(repo->ReadRisk({1})[1], Present("2026-11-25T08:00:00Z", 1));
  auto states = repo->Registry()->WatermarkStates().ValueOrDie();
  EXPECT_EQ(states.at("risk").watermark, At("2026-11-25T11:00:00Z"));
}

INSTANTIATE_TEST_SUITE_P(Stores, MaterializeOnEveryStore,
                         ::testing::ValuesIn(testing::StoreKinds()),
                         [](const auto& info) { return info.param; });

TEST(Materialize, AnotherOnlineStoreMakesTheNextIncrementalRunStartOver) {
  // granary.yaml pointed at a new, empty store: the watermark reached in the old one must not
  // make the new one look up to date.
  auto repo = TestRepo::Make("rocksdb");
  std::vector<RiskRow> rows;
  for (int64_t id = 1; id <= 50; ++id)
    rows.push_back({id, At("2026-11-25T06:00:00Z"), {}, 1.0, id});
  repo->WriteRows("rows", rows);
  ASSERT_TRUE(OnlyView(repo->Incremental(At("2026-11-25T10:00:00Z"))).status.ok());
  repo->CloseStore();
  repo->config.online_store.path = "data/online-moved";
  const auto moved = OnlyView(repo->Incremental(At("2026-11-25T10:00:00Z")));
  ASSERT_TRUE(moved.status.ok()) << moved.status.ToString();
  EXPECT_FALSE(moved.up_to_date);
  EXPECT_EQ(moved.entities, 50);
  EXPECT_EQ(repo->ReadRisk(Ids(1, 50)).at(7), Present("2026-11-25T06:00:00Z", 1.0, 7));
  // The password is not part of a store's identity; the address is.
  OnlineStoreConfig a;
  a.type = "redis";
  a.connection_string = "10.0.0.5:6379,password=old";
  OnlineStoreConfig b = a;
  b.connection_string = "10.0.0.5:6379,password=new";
  OnlineStoreConfig c = a;
  c.connection_string = "10.0.0.6:6379,password=old";
  auto layouts = MakeViewLayouts(repo->definitions(), Duration::Days(90)).ValueOrDie();
  const ViewLayout& layout = *layouts.at("risk");
  EXPECT_EQ(LayoutTag(layout, a), LayoutTag(layout, b));
  EXPECT_NE(LayoutTag(layout, a), LayoutTag(layout, c));
}

TEST(Materialize, ARedisKilledMidRunLeavesTheWatermarkAndARerunConverges) {
  auto redis = testing::RedisServer::Start().ValueOrDie();
  auto repo = TestRepo::Make("rocksdb");
  repo->config.online_store.type = "redis";
  repo->config.online_store.connection_string = redis->address();
  std::vector<RiskRow> rows;
  for (int64_t id = 1; id <= 400; ++id)
    rows.push_back({id, At("2026-11-25T08:00:00Z"), {}, 1.0 * id});
  repo->WriteRows("rows", rows);

  MaterializeOptions options = repo->Options();
  options.write_batch_rows = 16;
  options.write_threads = 1;
  std::atomic<int> batches{0};
  options.after_write = [&](const std::string&, const WriteStats&) {
    if (++batches == 2) redis->Kill();
  };
  auto report = repo->Incremental(At("2026-11-25T10:00:00Z"), options);
  const auto failed = OnlyView(report);
  ASSERT_FALSE(failed.status.ok());
  EXPECT_EQ(report->status.code(), failed.status.code());
  EXPECT_NE(failed.status.message().find("redis"), std::string::npos) << failed.status.ToString();
  EXPECT_GT(failed.entities_written, 0);
  EXPECT_LT(failed.entities_written, 400);
  EXPECT_FALSE(repo->Watermark().has_value());
  auto runs = repo->Registry()->Runs("risk", 10).ValueOrDie();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].status, RunStatus::kFailed);
  EXPECT_EQ(runs[0].error, failed.status.message());
  EXPECT_TRUE(runs[0].finished_at.has_value());

  // Redis comes back (empty: it kept nothing on disk); the re-run covers the same interval.
  auto again = testing::RedisServer::Start().ValueOrDie();
  repo->config.online_store.connection_string = again->address();
  repo->CloseStore();
  const auto rerun = OnlyView(repo->Incremental(At("2026-11-25T10:00:00Z")));
  ASSERT_TRUE(rerun.status.ok()) << rerun.status.ToString();
  EXPECT_EQ(FormatIntervalStart(rerun.start), "2026-11-23T10:00:00Z");
  EXPECT_EQ(rerun.entities_written, 400);
  auto online = repo->ReadRisk(Ids(1, 400));
  for (int64_t id = 1; id <= 400; ++id) {
    ASSERT_EQ(online[id], Present("2026-11-25T08:00:00Z", 1.0 * id)) << id;
  }
  EXPECT_EQ(repo->Watermark(), At("2026-11-25T10:00:00Z"));
}

TEST(Materialize, ACancelledRunIsRecordedFailedAndTheRerunConverges) {
  auto repo = TestRepo::Make("rocksdb");
  std::vector<RiskRow> rows;
  for (int64_t id = 1; id <= 400; ++id)
    rows.push_back({id, At("2026-11-25T08:00:00Z"), {}, 1.0 * id});
  repo->WriteRows("rows", rows);
  MaterializeOptions options = repo->Options();
  options.write_batch_rows = 16;
  options.write_threads = 1;
  std::atomic<bool> cancelled{false};
  options.after_write = [&](const std::string&, const WriteStats&) { cancelled = true; };
  auto report = repo->Incremental(At("2026-11-25T10:00:00Z"), options, &cancelled);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->status.code(), StatusCode::kCancelled);
  EXPECT_EQ(OnlyView(report).status.code(), StatusCode::kCancelled);
  EXPECT_LT(OnlyView(report).entities_written, 400);
  EXPECT_FALSE(repo->Watermark().has_value());
  auto runs = repo->Registry()->Runs("risk", 10).ValueOrDie();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].status, RunStatus::kFailed);
  EXPECT_NE(runs[0].error.find("cancelled"), std::string::npos);

  ASSERT_TRUE(OnlyView(repo->Incremental(At("2026-11-25T10:00:00Z"))).status.ok());
  auto online = repo->ReadRisk(Ids(1, 400));
  for (int64_t id = 1; id <= 400; ++id) {
    ASSERT_EQ(online[id], Present("2026-11-25T08:00:00Z", 1.0 * id)) << id;
  }
}

TEST(Materialize, ASecondRunOfTheRepositoryIsRefusedWhileOneRuns) {
  auto repo = TestRepo::Make("rocksdb");
  repo->WriteRows("rows", {{1, At("2026-11-25T08:00:00Z"), {}, 1}});
  {
    auto held = RepositoryLock::Acquire(repo->config.RegistryPath(), "a test", repo->clock.Now());
    ASSERT_TRUE(held.ok()) << held.status().ToString();
    auto refused = repo->Incremental(At("2026-11-25T10:00:00Z"));
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.status().code(), StatusCode::kAlreadyExists);
    EXPECT_NE(refused.status().message().find("another materialization of this repository is "
                                              "running (a test as pid " +
                                              std::to_string(getpid())),
              std::string::npos)
        << refused.status().message();
  }
  // In the background, as a server runs it: a second job is refused at once, not queued.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  MaterializeOptions options = repo->Options();
  options.after_write = [released](const std::string&, const WriteStats&) { released.wait(); };
  MaterializeRequest request;
  request.end = At("2026-11-25T10:00:00Z");
  request.trigger = "server";
  auto first = MaterializationJob::Start(repo->config, request, options, repo->store());
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = MaterializationJob::Start(repo->config, request, repo->Options(), repo->store());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kAlreadyExists);
  EXPECT_FALSE((*first)->done());
  release.set_value();
  const auto& done = (*first)->Wait();
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_TRUE(done->status.ok()) << done->status.ToString();
  EXPECT_TRUE((*first)->done());
  EXPECT_EQ(repo->Registry()->Runs("risk", 1).ValueOrDie()[0].trigger, "server");
  // Once it is done, the next run goes ahead (and is up to date).
  // on_done sees the result on the job's thread, after the lock is released.
  std::promise<bool> seen;
  auto third = MaterializationJob::Start(
      repo->config, request, repo->Options(), repo->store(),
      [&seen, &repo](const Result<MaterializeReport>& result) {
        auto next = RepositoryLock::Acquire(repo->config.RegistryPath(), "a test",
                                            At("2026-11-25T12:00:00Z"));
        seen.set_value(result.ok() && result->views[0].up_to_date && next.ok());
      });
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  EXPECT_TRUE(seen.get_future().get());
  EXPECT_TRUE((*third)->Wait()->views[0].up_to_date);
}

TEST(Materialize, AnExplicitIntervalAfterAGapLeavesTheWatermark) {
  auto repo = TestRepo::Make("rocksdb");
  repo->WriteRows("rows",
                  {{1, At("2026-11-20T08:00:00Z"), {}, 1}, {2, At("2026-11-24T08:00:00Z"), {}, 2}});
  // No watermark yet: the first explicit interval sets it.
  ASSERT_TRUE(
      OnlyView(repo->Interval(At("2026-11-20T00:00:00Z"), At("2026-11-21T00:00:00Z"))).status.ok());
  EXPECT_EQ(repo->Watermark(), At("2026-11-21T00:00:00Z"));
  const auto gap = OnlyView(repo->Interval(At("2026-11-24T00:00:00Z"), At("2026-11-25T00:00:00Z")));
  ASSERT_TRUE(gap.status.ok());
  EXPECT_EQ(gap.entities_written, 1);
  EXPECT_NE(gap.watermark_note.find("the watermark stays at 2026-11-21T00:00:00Z"),
            std::string::npos);
  EXPECT_EQ(repo->Watermark(), At("2026-11-21T00:00:00Z"));
  // Connected to it: the watermark moves.
  ASSERT_TRUE(
      OnlyView(repo->Interval(At("2026-11-21T00:00:00Z"), At("2026-11-25T00:00:00Z"))).status.ok());
  EXPECT_EQ(repo->Watermark(), At("2026-11-25T00:00:00Z"));
}

TEST(Materialize, ATtlZeroViewReadsEverythingOnItsFirstIncrementalRun) {
  std::string defs = testing::kRiskDefinitions;
  defs.replace(defs.find("ttl: 2d"), 7, "ttl: 0");
  auto repo = TestRepo::Make("rocksdb", defs);
  repo->WriteRows("rows", {{1, At("2001-01-01T00:00:00Z"), {}, 1}});
  const auto run = OnlyView(repo->Incremental(At("2026-11-25T10:00:00Z")));
  ASSERT_TRUE(run.status.ok());
  EXPECT_FALSE(run.start.has_value());
  EXPECT_EQ(run.entities_written, 1);
  EXPECT_EQ(repo->Registry()->Runs("risk", 1).ValueOrDie()[0].interval_start.micros,
            std::numeric_limits<int64_t>::min());
}

TEST(Materialize, BadRequestsAreRefusedBeforeAnythingIsRead) {
  std::string defs = testing::kRiskDefinitions;
  defs += R"yaml(  - name: risk_archive
    entities: [customer]
    source: payments
    online: false
    schema:
      - {name: score, type: float64}
)yaml";
  auto repo = TestRepo::Make("rocksdb", defs);
  auto future = repo->Incremental(At("2026-11-25T12:00:01Z"));
  ASSERT_FALSE(future.ok());
  EXPECT_NE(future.status().message().find("is in the future (now is 2026-11-25T12:00:00Z)"),
            std::string::npos);
  MaterializeRequest request;
  request.end = At("2026-11-25T10:00:00Z");
  request.views = {"rsik"};
  auto unknown = Materialize(repo->config, request, repo->Options(), repo->store(), nullptr);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("no feature view 'rsik', did you mean 'risk'?"),
            std::string::npos)
      << unknown.status().message();
  request.views = {"risk_archive"};
  auto offline = Materialize(repo->config, request, repo->Options(), repo->store(), nullptr);
  ASSERT_FALSE(offline.ok());
  EXPECT_NE(offline.status().message().find("is not online"), std::string::npos);
  auto backwards = repo->Interval(At("2026-11-25T10:00:00Z"), At("2026-11-24T10:00:00Z"));
  ASSERT_FALSE(backwards.ok());
  EXPECT_NE(backwards.status().message().find("is after END"), std::string::npos);
  EXPECT_TRUE(repo->Registry()->Runs("", 10).ValueOrDie().empty());
}

TEST(Materialize, AnEmbeddedStoreOpenElsewhereIsAClearError) {
  auto repo = TestRepo::Make("rocksdb");
  repo->WriteRows("rows", {{1, At("2026-11-25T08:00:00Z"), {}, 1}});
  repo->store();  // held open, as a running server would
  MaterializeRequest request;
  request.end = At("2026-11-25T10:00:00Z");
  auto report = Materialize(repo->config, request, repo->Options(), nullptr, nullptr);
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.status().message().find("open in another process (e.g. granary serve)"),
            std::string::npos)
      << report.status().message();
  repo->CloseStore();
  report = Materialize(repo->config, request, repo->Options(), nullptr, nullptr);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->status.ok()) << report->status.ToString();
}

TEST(Materialize, RunsAreCountedInMetrics) {
  auto repo = TestRepo::Make("rocksdb");
  repo->WriteRows("rows", {{1, At("2026-11-25T08:00:00Z"), {}, 1},
                           {1, At("2026-11-25T07:00:00Z"), {}, 0},
                           {2, At("2026-11-25T08:00:00Z"), {}, 2}});
  ASSERT_TRUE(OnlyView(repo->Incremental(At("2026-11-25T10:00:00Z"))).status.ok());
  const std::string text = repo->metrics.Render();
  EXPECT_NE(text.find("granary_materialize_runs_total{view=\"risk\",result=\"succeeded\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("granary_materialize_rows_read_total{view=\"risk\"} 3"), std::string::npos);
  EXPECT_NE(text.find("granary_materialize_entities_written_total{view=\"risk\"} 2"),
            std::string::npos);
  EXPECT_NE(text.find("granary_materialize_run_duration_seconds_count{view=\"risk\"} 1"),
            std::string::npos);
}

TEST(Materialize, AnAttemptThatFailsBeforeAnyViewStartsIsRecordedAndCounted) {
  auto repo = TestRepo::Make("rocksdb");
  repo->WriteRows("rows", {{1, At("2026-11-25T08:00:00Z"), {}, 1}});
  ASSERT_TRUE(OnlyView(repo->Incremental(At("2026-11-25T09:00:00Z"))).status.ok());
  // The store is down: nothing listens on port 1.
  RepoConfig down = repo->config;
  down.online_store.type = "redis";
  down.online_store.connection_string = "127.0.0.1:1";
  MaterializeRequest request;
  request.end = At("2026-11-25T10:00:00Z");
  request.trigger = "schedule";
  auto report = Materialize(down, request, repo->Options(), nullptr, nullptr);
  ASSERT_FALSE(report.ok());
  // And the lock is held by another run.
  {
    auto held = RepositoryLock::Acquire(repo->config.RegistryPath(), "a test", repo->clock.Now());
    ASSERT_TRUE(held.ok()) << held.status().ToString();
    ASSERT_EQ(repo->Incremental(At("2026-11-25T10:00:00Z")).status().code(),
              StatusCode::kAlreadyExists);
  }
  auto runs = repo->Registry()->Runs("risk", 10).ValueOrDie();
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[0].status, RunStatus::kFailed);
  EXPECT_NE(runs[0].error.find("another materialization of this repository is running"),
            std::string::npos)
      << runs[0].error;
  EXPECT_EQ(runs[1].status, RunStatus::kFailed);
  EXPECT_EQ(runs[1].trigger, "schedule");
  EXPECT_EQ(runs[1].error, report.status().message());
  EXPECT_NE(runs[1].error.find("127.0.0.1:1"), std::string::npos) << runs[1].error;
  EXPECT_EQ(runs[1].interval_start, At("2026-11-25T09:00:00Z"));  // from the watermark
  EXPECT_EQ(runs[1].interval_end, At("2026-11-25T10:00:00Z"));
  EXPECT_EQ(runs[2].status, RunStatus::kSucceeded);
  EXPECT_EQ(repo->Watermark(), At("2026-11-25T09:00:00Z"));

  auto statuses = CollectOnlineViewStatus(*repo->Registry(), repo->definitions(), repo->config,
                                          repo->clock.Now(), 10)
                      .ValueOrDie();
  EXPECT_EQ(statuses[0].recent_runs, 3);
  EXPECT_EQ(statuses[0].recent_succeeded, 1);
  EXPECT_EQ(statuses[0].consecutive_failures, 2);
  EXPECT_TRUE(IsFailing(statuses[0], 1));
  const std::string text = repo->metrics.Render();
  EXPECT_NE(text.find("granary_materialize_runs_total{view=\"risk\",result=\"failed\"} 2"),
            std::string::npos)
      << text;
}

TEST(Materialize, AFirstRunIntoAnEmptyRocksDbStoreIsBulkLoadedAndTheNextWritesIfNewer) {
  auto repo = TestRepo::Make("rocksdb");
  std::vector<RiskRow> rows;
  for (int64_t id = 1; id <= 500; ++id) {
    rows.push_back({id, At("2026-11-25T08:00:00Z"), {}, 1.0 * id});
    rows.push_back({id, At("2026-11-25T07:00:00Z"), {}, -1.0});  // older: not the latest
  }
  repo->WriteRows("rows", rows);
  MaterializeOptions options = repo->Options();
  options.bulk_load_min_rows = 0;  // any number of rows (the default starts at 20,000)
  const auto first = OnlyView(repo->Incremental(At("2026-11-25T10:00:00Z"), options));
  ASSERT_TRUE(first.status.ok()) << first.status.ToString();
  EXPECT_TRUE(first.bulk_loaded);
  EXPECT_EQ(first.entities_written, 500);
  auto online = repo->ReadRisk(Ids(1, 500));
  for (int64_t id = 1; id <= 500; ++id) {
    ASSERT_EQ(online[id], Present("2026-11-25T08:00:00Z", 1.0 * id)) << id;
  }
  EXPECT_EQ(repo->Watermark(), At("2026-11-25T10:00:00Z"));

  // The view holds rows now: the next run compares with them.
  repo->WriteRows("more", {{1, At("2026-11-25T11:00:00Z"), {}, 1000}});
  const auto next = OnlyView(repo->Incremental(At("2026-11-25T12:00:00Z"), options));
  ASSERT_TRUE(next.status.ok()) << next.status.ToString();
  EXPECT_FALSE(next.bulk_loaded);
  EXPECT_EQ(next.entities_written, 1);
  online = repo->ReadRisk({1, 2});
  EXPECT_EQ(online[1], Present("2026-11-25T11:00:00Z", 1000));
  EXPECT_EQ(online[2], Present("2026-11-25T08:00:00Z", 2));
}

TEST(Materialize, ARunRecordsItsCountsAsItGoes) {
  auto repo = TestRepo::Make("rocksdb");
  std::vector<RiskRow> rows;
  for (int64_t id = 1; id <= 300; ++id) rows.push_back({id, At("2026-11-25T08:00:00Z"), {}, 1.0});
  repo->WriteRows("rows", rows);
  MaterializeOptions options = repo->Options();
  options.write_threads = 1;
  options.write_batch_rows = 100;
  std::vector<MaterializationRun> seen;  // the run as the registry holds it at each batch
  options.after_write = [&](const std::string&, const WriteStats&) {
    seen.push_back(repo->Registry()->Runs("risk", 1).ValueOrDie().at(0));
  };
  ASSERT_TRUE(OnlyView(repo->Incremental(At("2026-11-25T10:00:00Z"), options)).status.ok());
  ASSERT_EQ(seen.size(), 3u);
  // A run cut off after its first batch would keep these counts (the registry's interrupted-run
  // rule keeps what was recorded).
  EXPECT_EQ(seen[0].status, RunStatus::kRunning);
  EXPECT_EQ(seen[0].rows_read, 300);
  EXPECT_EQ(seen[0].entities_written, 100);
  EXPECT_FALSE(seen[0].lock_token.empty());
  auto done = repo->Registry()->Runs("risk", 1).ValueOrDie().at(0);
  EXPECT_EQ(done.entities_written, 300);
  EXPECT_EQ(done.newest_event, At("2026-11-25T08:00:00Z"));
  auto state = repo->Registry()->WatermarkStates().ValueOrDie().at("risk");
  EXPECT_EQ(state.newest_event, At("2026-11-25T08:00:00Z"));
}

}  // namespace
}  // namespace granary

namespace granary {
namespace {

// A view of `floats` float64 features and one of `strings` string features, as granary.yaml.
ViewLayouts WideLayouts(int floats, int strings) {
  std::string yaml =
      "entities:\n"
      "  - {name: customer, join_keys: [customer_id], value_type: int64}\n"
      "data_sources:\n"
      "  - {name: wide, path: data/wide, timestamp_field: event_timestamp}\n"
      "feature_views:\n";
  for (auto [name, type, n] :
       {std::tuple{"floats", "float64", floats}, std::tuple{"strings", "string", strings}}) {
    yaml += fmt::format(
        "  - name: {}\n    entities: [customer]\n    source: wide\n    ttl: 90d\n    schema:\n",
        name);
    for (int k = 0; k < n; ++k) yaml += fmt::format("      - {{name: f{}, type: {}}}\n", k, type);
  }
  Definitions defs;
  Diagnostics diag;
  LoadDefinitionsText("wide.yaml", yaml, &defs, &diag);
  EXPECT_FALSE(diag.has_errors());
  auto layouts = MakeViewLayouts(defs, Duration::Days(90));
  EXPECT_TRUE(layouts.ok()) << layouts.status().ToString();
  return layouts.ok() ? *layouts : ViewLayouts();
}

TEST(LatestRowsBatchRows, ABatchStaysWithinFourMiBWhateverTheBudget) {
  auto layouts = WideLayouts(50, 50);
  const ViewLayout& floats = *layouts.at("floats");
  const ViewLayout& strings = *layouts.at("strings");
  // 50 float64 features: about 424 bytes a row. A 1 GiB budget (256 MiB of batch memory) used to
  // give batches of 52K rows (22 MB, a dozen in flight); now at most 4 MiB each.
  for (int64_t budget : {int64_t{1} << 30, int64_t{16} << 30}) {
    const int64_t rows = LatestRowsBatchRows(budget / 4, floats);
    EXPECT_LE(rows * 424, int64_t{4} << 20) << budget;
    EXPECT_GE(rows * 424, int64_t{3} << 20) << budget;  // not smaller than it needs to be
  }
  // A small budget: a twelfth of the batch memory, at least 1,024 rows.
  EXPECT_EQ(LatestRowsBatchRows(int64_t{32} << 20, floats), (int64_t{32} << 20) / 12 / 424);
  EXPECT_EQ(LatestRowsBatchRows(int64_t{32} << 20, strings), (int64_t{32} << 20) / 12 / 1624);
  EXPECT_EQ(LatestRowsBatchRows(1 << 20, floats), 1024);
  // A narrow view still reads in batches of at most 65,536 rows.
  auto narrow = WideLayouts(1, 1);
  EXPECT_EQ(LatestRowsBatchRows(int64_t{1} << 30, *narrow.at("floats")), 64 * 1024);
}

}  // namespace
}  // namespace granary
