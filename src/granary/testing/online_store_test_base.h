// The fixture of the tests every online store runs (online_store_test.cc,
// online_store_tiles_test.cc): a store of each kind (testing::StoreKinds(): RocksDB, Redis
// standalone, Redis Cluster, real redis-server processes on 127.0.0.1) over
// testing::OnlineDefinitions(), on a manual clock starting at kOnlineT0.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "granary/testing/online_definitions.h"
#include "granary/testing/online_store_fixture.h"

namespace granary::testing {

inline const Timestamp kOnlineT0 = Timestamp::FromSeconds(1'800'000'000);

class OnlineStoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    defs_ = testing::OnlineDefinitions();
    layouts_ = MakeViewLayouts(defs_, Duration::Days(90)).ValueOrDie();
    auto env = testing::StartStoreFixture(GetParam(), &clock_);
    ASSERT_TRUE(env.ok()) << env.status().ToString();
    env_ = std::move(*env);
    store_ = env_->store();
  }

  std::shared_ptr<const ViewLayout> View(const std::string& name) { return layouts_.at(name); }

  WriteStats Write(const std::string& view, const std::vector<Row>& rows) {
    auto stats = store_->WriteBatch(*View(view), *MakeRows(*View(view), rows));
    EXPECT_TRUE(stats.ok()) << stats.status().ToString();
    return stats.ok() ? *stats : WriteStats{};
  }

  OnlineFeatures ReadOne(const std::string& view, const std::vector<std::vector<Value>>& keys,
                         std::vector<int> features = {}) {
    OnlineReadRequest request;
    request.views.push_back(MakeViewRead(View(view), keys, std::move(features)));
    auto result = store_->Read(request);
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    return result.ok() ? std::move(*result) : OnlineFeatures();
  }

  Definitions defs_;
  ViewLayouts layouts_;
  ManualClock clock_{kOnlineT0};
  std::unique_ptr<testing::StoreFixture> env_;
  OnlineStore* store_ = nullptr;
};

}  // namespace granary::testing
