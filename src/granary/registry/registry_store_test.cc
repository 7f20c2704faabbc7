#include "granary/registry/registry_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "granary/common/temp_dir.h"
#include "granary/registry/test_util.h"

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
