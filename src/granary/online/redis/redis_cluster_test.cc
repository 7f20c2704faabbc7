// Redis Cluster specifics, against real 3+3 clusters: a live slot migration (ASK, then MOVED),
// a master killed during reads, replica reads, dead seed nodes.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "granary/online/redis/redis_store.h"
#include "granary/online/redis/slot_map.h"
#include "granary/testing/online_definitions.h"
#include "granary/testing/online_store_fixture.h"
#include "granary/testing/redis_server.h"

namespace granary {
namespace {

using testing::MakeRows;
using testing::MakeViewRead;
using testing::RedisCluster;
using testing::Row;

const Timestamp kT0 = Timestamp::FromSeconds(1'800'000'000);

class RedisClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    defs_ = testing::OnlineDefinitions();
    layouts_ = MakeViewLayouts(defs_, Duration::Days(90)).ValueOrDie();
    risk_ = layouts_.at("risk");
  }
  Status Write(OnlineStore& store, const std::vector<int64_t>& ids, Timestamp event, double score,
               WriteStats* stats = nullptr) {
    std::vector<Row> rows;
    for (int64_t id : ids)
      rows.push_back(Row{{Value(id)}, event, {}, {Value(score + id), Value(id)}});
    auto result = store.WriteBatch(*risk_, *MakeRows(*risk_, rows));
    if (result.ok() && stats) *stats = *result;
    return result.status();
  }
  // Checks every id reads back as score + id.
  void ExpectScores(OnlineStore& store, const std::vector<int64_t>& ids, double score) {
    std::vector<std::vector<Value>> keys;
    for (int64_t id : ids) keys.push_back({Value(id)});
    OnlineReadRequest request;
    request.views.push_back(MakeViewRead(risk_, keys));
    auto got = store.Read(request);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    for (size_t i = 0; i < ids.size(); ++i) {
      ASSERT_EQ(got->status(0, 0, i), FeatureStatus::kPresent) << "id " << ids[i];
      EXPECT_EQ(got->value(0, 0, i).AsFloat64(), score + ids[i]) << "id " << ids[i];
    }
  }
  static std::string KeyOf(const RedisOnlineStore& store, int64_t id) {
    std::string k;
    entity_key::AppendInteger(&k, id);
    return store.KeyOf(k);
  }

  Definitions defs_;
  ViewLayouts layouts_;
  std::shared_ptr<const ViewLayout> risk_;
  ManualClock clock_{kT0};
};

TEST_F(RedisClusterTest, ReadsAndWritesFollowAskAndMovedDuringALiveSlotMigration) {
  RedisCluster* cluster = testing::SharedRedisCluster().ValueOrDie();
  auto options = testing::SharedRedisOptions(true, &clock_).ValueOrDie();
  auto store = RedisOnlineStore::Open(options).ValueOrDie();
  // Seven entities whose keys share one slot.
  const uint16_t slot = redis::KeySlot(KeyOf(*store, 0));
  std::vector<int64_t> ids = {0};
  for (int64_t id = 1; ids.size() < 7; ++id) {
    if (redis::KeySlot(KeyOf(*store, id)) == slot) ids.push_back(id);
  }
  ASSERT_EQ(*cluster->KeySlot(KeyOf(*store, ids[3])), slot);  // the server agrees
  std::vector<int64_t> first(ids.begin(), ids.begin() + 6);
  ASSERT_TRUE(Write(*store, first, kT0, 0.0).ok());
  ExpectScores(*store, first, 0.0);

  const int from = cluster->MasterOf(slot).ValueOrDie();
  const int to = (from + 1) % 3;
  ASSERT_TRUE(cluster->BeginSlotMigration(slot, from, to).ok());
  ASSERT_TRUE(
      cluster
          ->MigrateKeys(slot, from, to,
                        {KeyOf(*store, ids[0]), KeyOf(*store, ids[1]), KeyOf(*store, ids[2])})
          .ok());
  // Half the slot's keys moved: the source answers ASK for them.
  ExpectScores(*store, first, 0.0);
  EXPECT_GT(store->stats().ask.load(), 0);
  WriteStats stats;
  ASSERT_TRUE(Write(*store, ids, kT0 + Duration::Seconds(1), 100.0, &stats).ok());
  EXPECT_EQ(stats.written, 7);  // the new entity lands on the importing node
  ExpectScores(*store, ids, 100.0);

  // Move the rest and hand the slot over: now the old owner answers MOVED.
  std::vector<std::string> rest;
  for (int64_t id : {ids[3], ids[4], ids[5]}) rest.push_back(KeyOf(*store, id));
  ASSERT_TRUE(cluster->MigrateKeys(slot, from, to, rest).ok());
  ASSERT_TRUE(cluster->FinishSlotMigration(slot, to).ok());
  const int64_t moved_before = store->stats().moved.load();
  ExpectScores(*store, ids, 100.0);
  EXPECT_GT(store->stats().moved.load(), moved_before);
  ASSERT_TRUE(Write(*store, ids, kT0 + Duration::Seconds(2), 200.0).ok());
  ExpectScores(*store, ids, 200.0);
  // The slot map was refreshed: reading again needs no redirect.
  const int64_t moved_after = store->stats().moved.load();
  ExpectScores(*store, ids, 200.0);
  EXPECT_EQ(store->stats().moved.load(), moved_after);
}

TEST_F(RedisClusterTest, ReadsResumeAfterAMasterIsKilledAndItsReplicaTakesOver) {
  auto cluster = RedisCluster::Start().ValueOrDie();
  RedisOnlineStore::Options options;
  options.cluster = true;
  options.nodes = cluster->SeedNodes();
  options.project = "failover";
  options.clock = &clock_;
  options.request_timeout = Duration::Seconds(1);
  auto store = RedisOnlineStore::Open(options).ValueOrDie();
  std::vector<int64_t> ids;
  for (int64_t id = 0; id < 300; ++id) ids.push_back(id);
  ASSERT_TRUE(Write(*store, ids, kT0, 0.0).ok());
  ASSERT_TRUE(cluster->WaitForReplication().ok());

  std::atomic<bool> stop{false};
  std::atomic<int> ok_reads{0}, failed_reads{0}, other_errors{0};
  std::thread reader([&] {
    std::vector<std::vector<Value>> keys;
    for (int64_t id : ids) keys.push_back({Value(id)});
    OnlineReadRequest request;
    request.views.push_back(MakeViewRead(risk_, keys));
    while (!stop) {
      auto got = store->Read(request);
      if (got.ok()) {
        ++ok_reads;
      } else if (got.status().code() == StatusCode::kUnavailable) {
        ++failed_reads;  // the master's slots during the failover: a clear, bounded error
      } else {
        ++other_errors;
        ADD_FAILURE() << got.status().ToString();
      }
    }
  });
  while (ok_reads == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(cluster->KillMasterAndWaitForFailover(0).ok());
  // Reads succeed again, with every value, once the replica serves the slots.
  const int before = ok_reads.load();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (ok_reads.load() < before + 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop = true;
  reader.join();
  EXPECT_GE(ok_reads.load(), before + 3);
  EXPECT_EQ(other_errors.load(), 0);
  ExpectScores(*store, ids, 0.0);
  ASSERT_TRUE(Write(*store, ids, kT0 + Duration::Seconds(1), 10.0).ok());
  ExpectScores(*store, ids, 10.0);
  EXPECT_GT(store->stats().topology_refreshes.load(), 1);
}

TEST_F(RedisClusterTest, ReplicaReadsGoToReplicas) {
  RedisCluster* cluster = testing::SharedRedisCluster().ValueOrDie();
  auto options = testing::SharedRedisOptions(true, &clock_).ValueOrDie();
  options.read_from_replicas = true;
  auto store = RedisOnlineStore::Open(options).ValueOrDie();
  std::vector<int64_t> ids;
  for (int64_t id = 0; id < 100; ++id) ids.push_back(id);
  ASSERT_TRUE(Write(*store, ids, kT0, 5.0).ok());
  ASSERT_TRUE(cluster->WaitForReplication().ok());
  int64_t replica_gets_before = 0;
  auto gets_on = [&](int node) {
    auto stats = cluster->node(node).Info("commandstats", "cmdstat_get");
    if (!stats.ok() || stats->empty()) return int64_t{0};
    return static_cast<int64_t>(std::stoll(stats->substr(stats->find('=') + 1)));
  };
  for (int n = 3; n < 6; ++n) replica_gets_before += gets_on(n);
  ExpectScores(*store, ids, 5.0);
  int64_t replica_gets_after = 0;
  for (int n = 3; n < 6; ++n) replica_gets_after += gets_on(n);
  EXPECT_GE(replica_gets_after - replica_gets_before, 100);
}

TEST_F(RedisClusterTest, DeadSeedNodesAreSkippedAndAllDeadIsAClearError) {
  auto options = testing::SharedRedisOptions(true, &clock_).ValueOrDie();
  auto dead = testing::RedisServer::Start().ValueOrDie();
  const std::string dead_address = dead->address();
  dead->Stop();
  options.nodes.insert(options.nodes.begin(), dead_address);
  auto store = RedisOnlineStore::Open(options);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_TRUE(Write(**store, {1, 2, 3}, kT0, 1.0).ok());
  ExpectScores(**store, {1, 2, 3}, 1.0);

  options.nodes = {dead_address};
  auto none = RedisOnlineStore::Open(options);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(none.status().message().find("no Redis Cluster node answered CLUSTER SLOTS"),
            std::string::npos)
      << none.status().ToString();
  EXPECT_NE(none.status().message().find(dead_address), std::string::npos);
}

}  // namespace
}  // namespace granary
