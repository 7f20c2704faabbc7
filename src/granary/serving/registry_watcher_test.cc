#include "granary/serving/registry_watcher.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <thread>

#include "granary/online/rocksdb/rocksdb_store.h"
#include "granary/testing/serving_definitions.h"

namespace granary {
namespace {

using testing::kPushDefinitions;
using testing::TestRepo;

class RegistryWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = RocksDbOnlineStore::Open(repo_.root() / "online", {}).ValueOrDie();
  }
  RegistryWatcherOptions Options(std::chrono::milliseconds poll = std::chrono::milliseconds(0)) {
    RegistryWatcherOptions o;
    o.registry = RegistryLocation::Sqlite(repo_.registry_path());
    o.store = store_.get();
    o.default_key_ttl = Duration::Days(90);
    o.poll_interval = poll;
    o.metrics = &metrics_;
    return o;
  }
  // Appends a version whose stored definitions cannot be read, as a damaged registry would hold.
  void CommitUnreadableVersion(int64_t version) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(repo_.registry_path().c_str(), &db), SQLITE_OK);
    const std::string sql =
        "INSERT INTO registry_versions (version, applied_at, fingerprint, project, definitions) "
        "VALUES (" +
        std::to_string(version) + ", 0, 'x', 'shop', 'entities: [{name: ')";
    char* error = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK) << error;
    sqlite3_free(error);
    sqlite3_close(db);
  }
  double Reloads(const std::string& outcome) {
    return metrics_.GetCounter("granary_registry_reloads_total", "", {{"outcome", outcome}})
        .value();
  }

  TestRepo repo_{kPushDefinitions};
  MetricsRegistry metrics_;
  std::unique_ptr<RocksDbOnlineStore> store_;
};

const char* kExtraView = R"yaml(
  - name: fresh
    entities: [customer]
    source: payments
    schema:
      - {name: new_feature, type: int64}
)yaml";

std::string WithFreshView() {
  std::string text = kPushDefinitions;
  text.insert(text.find("feature_services:"), std::string(kExtraView).substr(1));
  return text;
}

TEST_F(RegistryWatcherTest, ServesTheNewestVersionAndPicksUpAnApply) {
  auto watcher = RegistryWatcher::Start(Options());
  ASSERT_TRUE(watcher.ok()) << watcher.status().ToString();
  std::shared_ptr<const ServingSnapshot> before = (*watcher)->Current();
  EXPECT_EQ(before->info.version, 1);
  EXPECT_EQ(before->online->layouts().count("fresh"), 0u);
  ASSERT_TRUE((*watcher)->Poll().ok());  // nothing new
  EXPECT_EQ((*watcher)->Current(), before);

  repo_.Apply(WithFreshView());
  ASSERT_TRUE((*watcher)->Poll().ok());
  auto after = (*watcher)->Current();
  EXPECT_EQ(after->info.version, 2);
  EXPECT_EQ(after->online->layouts().count("fresh"), 1u);
  EXPECT_NE(after->registry_json.find("\"new_feature\""), std::string::npos);
  // A request that took the old snapshot still has it, whole.
  EXPECT_EQ(before->info.version, 1);
  EXPECT_EQ(before->online->layouts().count("risk"), 1u);
  EXPECT_EQ(Reloads("success"), 1);
  EXPECT_EQ(metrics_.GetGauge("granary_registry_version", "").value(), 2);
}

TEST_F(RegistryWatcherTest, AVersionThatCannotBeLoadedKeepsTheOldOneAndIsCounted) {
  auto watcher = RegistryWatcher::Start(Options()).ValueOrDie();
  CommitUnreadableVersion(2);
  Status st = watcher->Poll();
  EXPECT_EQ(st.code(), StatusCode::kCorruption) << st.ToString();
  EXPECT_EQ(watcher->Current()->info.version, 1);
  EXPECT_EQ(Reloads("failure"), 1);
  // A later good apply is picked up.
  repo_.Apply(WithFreshView());
  ASSERT_TRUE(watcher->Poll().ok());
  EXPECT_EQ(watcher->Current()->info.version, 3);
}

TEST_F(RegistryWatcherTest, TheBackgroundThreadReloadsWhileReadersRead) {
  auto watcher = RegistryWatcher::Start(Options(std::chrono::milliseconds(10))).ValueOrDie();
  std::atomic<bool> stop{false};
  std::atomic<int64_t> reads{0};
  std::thread reader([&] {
    while (!stop.load()) {
      auto s = watcher->Current();
      ASSERT_NE(s->online, nullptr);
      ASSERT_EQ(s->online->layouts().count("risk"), 1u);
      reads.fetch_add(1);
    }
  });
  repo_.Apply(WithFreshView());
  for (int i = 0; i < 1000 && watcher->Current()->info.version != 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop.store(true);
  reader.join();
  EXPECT_EQ(watcher->Current()->info.version, 2);
  EXPECT_GT(reads.load(), 0);
}

TEST(RegistryWatcher, AnEmptyRegistrySaysToApplyFirst) {
  TempDir dir = TempDir::Make("granary_watch_").ValueOrDie();
  ASSERT_TRUE(OpenSqliteRegistry(dir.path() / "registry.db", OpenMode::kCreateIfMissing).ok());
  auto store = RocksDbOnlineStore::Open(dir.path() / "online", {}).ValueOrDie();
  RegistryWatcherOptions o;
  o.registry = RegistryLocation::Sqlite(dir.path() / "registry.db");
  o.store = store.get();
  auto watcher = RegistryWatcher::Start(o);
  ASSERT_EQ(watcher.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(watcher.status().message().find("holds no definitions yet: run 'granary apply'"),
            std::string::npos);
}

}  // namespace
}  // namespace granary
