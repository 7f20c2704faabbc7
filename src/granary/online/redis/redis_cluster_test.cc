// Redis Cluster specifics, against real 3+3 clusters: a live slot migration (ASK, then MOVED),
// a master killed during reads, replica reads, dead seed nodes.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <future>
#include <thread>

#include "granary/online/online_store.h"
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

// AsyncRead on an io_context of the test's own (one router for every read, as a server worker
// has), waiting at most `limit`: far less than the store's timeouts, so a read that waited for
// them (or the old retry rounds, ~9 s) fails the test instead of passing slowly.
class OneWorker {
 public:
  OneWorker() : work_(io_.get_executor()), thread_([this] { io_.run(); }) {}
  ~OneWorker() { Stop(); }
  // Stops the thread; call it before the store that read on it goes (OnlineStore's contract: the
  // io_context is idle when the store is destroyed, and outlives it).
  void Stop() {
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }
  Result<OnlineFeatures> Read(OnlineStore& store, OnlineReadRequest request,
                              std::chrono::seconds limit = std::chrono::seconds(5)) {
    auto promise = std::make_shared<std::promise<Result<OnlineFeatures>>>();
    auto future = promise->get_future();
    store.AsyncRead(io_.get_executor(), std::move(request),
                    [promise](Result<OnlineFeatures> r) { promise->set_value(std::move(r)); });
    if (future.wait_for(limit) != std::future_status::ready) {
      ADD_FAILURE() << "the read took longer than " << limit.count()
                    << " s: it waited for a node that is down";
    }
    return future.get();
  }

 private:
  boost::asio::io_context io_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
};

TEST_F(RedisClusterTest, AMasterDownFailsItsRequestsAtOnceAndPartialReadsServeTheOtherSlots) {
  // No replicas, so master 0's slots stay down; the other masters go on serving theirs.
  testing::RedisServerOptions node_options;
  node_options.extra_args = {"--cluster-require-full-coverage", "no"};
  auto cluster = RedisCluster::Start(3, 0, node_options).ValueOrDie();
  RedisOnlineStore::Options options;
  options.cluster = true;
  options.nodes = cluster->SeedNodes();
  options.project = "partial";
  options.clock = &clock_;
  // Far beyond the reads' limit: before a down node failed fast, its requests waited a whole
  // retry budget (request_timeout) for it.
  options.connect_timeout = Duration::Seconds(120);
  options.request_timeout = Duration::Seconds(120);
  OneWorker worker;  // declared before the store: it outlives it
  auto store = RedisOnlineStore::Open(options).ValueOrDie();
  struct StopWorkerFirst {
    OneWorker* worker;
    ~StopWorkerFirst() { worker->Stop(); }
  } stop_worker_first{&worker};
  std::vector<int64_t> ids;
  for (int64_t id = 0; id < 40; ++id) ids.push_back(id);
  ASSERT_TRUE(Write(*store, ids, kT0, 0.0).ok());
  std::vector<bool> on_dead;
  std::vector<int64_t> dead_ids;
  for (int64_t id : ids) {
    auto master = cluster->MasterOf(redis::KeySlot(KeyOf(*store, id)));
    ASSERT_TRUE(master.ok()) << master.status().ToString();
    on_dead.push_back(*master == 0);
    if (*master == 0) dead_ids.push_back(id);
  }
  ASSERT_FALSE(dead_ids.empty());
  ASSERT_LT(dead_ids.size(), ids.size());
  const std::string dead_address = cluster->node(0).address();
  cluster->node(0).Kill();

  auto request_for = [&](const std::vector<int64_t>& which, bool partial) {
    std::vector<std::vector<Value>> keys;
    for (int64_t id : which) keys.push_back({Value(id)});
    OnlineReadRequest request;
    request.views.push_back(MakeViewRead(risk_, keys));
    request.allow_partial = partial;
    return request;
  };
  // All or nothing: Unavailable naming the node, at once, the first time and every time after.
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto whole = worker.Read(*store, request_for(ids, false));
    ASSERT_FALSE(whole.ok());
    EXPECT_EQ(whole.status().code(), StatusCode::kUnavailable);
    EXPECT_NE(whole.status().message().find(dead_address), std::string::npos)
        << whole.status().ToString();
  }
  // Partial: the rows on the dead master read INVALID, every other row is served.
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto partial = worker.Read(*store, request_for(ids, true));
    ASSERT_TRUE(partial.ok()) << partial.status().ToString();
    for (size_t r = 0; r < ids.size(); ++r) {
      if (on_dead[r]) {
        EXPECT_EQ(partial->status(0, 0, r), FeatureStatus::kInvalid) << "id " << ids[r];
        EXPECT_TRUE(partial->value(0, 0, r).is_null());
      } else {
        ASSERT_EQ(partial->status(0, 0, r), FeatureStatus::kPresent) << "id " << ids[r];
        EXPECT_EQ(partial->value(0, 0, r).AsFloat64(), static_cast<double>(ids[r]));
      }
    }
  }
  // Nothing readable is no answer, partial or not.
  auto none = worker.Read(*store, request_for(dead_ids, true));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kUnavailable);
  // The blocking path fails fast as well (a thread of its own: a router of its own).
  auto blocking =
      std::async(std::launch::async, [&] { return store->Read(request_for(ids, true)); });
  ASSERT_EQ(blocking.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_TRUE(blocking.get().ok());
}

TEST_F(RedisClusterTest, AFrozenMasterFailsAfterGranaryYamlsRequestTimeoutNamingIt) {
  // A frozen master (SIGSTOP: its port accepts connections, nothing answers) is not "down": its
  // commands are retried on new connections until the retry budget (request_timeout) is spent,
  // and the error names the setting that bounds that wait.
  testing::RedisServerOptions node_options;
  node_options.extra_args = {"--cluster-require-full-coverage", "no"};
  auto cluster = RedisCluster::Start(3, 0, node_options).ValueOrDie();
  auto yaml = testing::GranaryYamlRedisStore("redis_cluster", cluster->SeedNodes(), &clock_);
  yaml.config.online_store.request_timeout = Duration::Microseconds(300'000);
  auto store = OpenOnlineStore(yaml.config, yaml.options).ValueOrDie();
  std::vector<int64_t> ids;
  for (int64_t id = 0; id < 40; ++id) ids.push_back(id);
  ASSERT_TRUE(Write(*store, ids, kT0, 0.0).ok());
  const std::string frozen = cluster->node(0).address();
  cluster->node(0).Pause();
  std::vector<std::vector<Value>> keys;
  for (int64_t id : ids) keys.push_back({Value(id)});
  OnlineReadRequest request;
  request.views.push_back(MakeViewRead(risk_, keys));
  auto read = store->Read(request);
  cluster->node(0).Resume();
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(read.status().message().find("redis at " + frozen + " sent no reply within 300 ms"),
            std::string::npos)
      << read.status().ToString();
  EXPECT_NE(read.status().message().find("raise online_store.request_timeout in granary.yaml"),
            std::string::npos)
      << read.status().ToString();
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
