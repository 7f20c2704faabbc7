// The fixture of the online feature service's tests (online_features_test.cc, the answer
// writer's online_response_test.cc): the service over a real RocksDB store in a temporary
// folder, with two customers' risk rows written, a clock set to kT0, and helpers to ask it.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>

#include "granary/common/clock.h"
#include "granary/common/temp_dir.h"
#include "granary/online/rocksdb/rocksdb_store.h"
#include "granary/serving/json_format.h"
#include "granary/serving/online_features.h"
#include "granary/testing/online_definitions.h"

namespace granary::testing {

inline const Timestamp kT0 = Timestamp::FromSeconds(1'800'000'000);  // 2027-01-15T08:00:00Z

inline const std::string kOnlineFeaturesDefinitions = std::string(kOnlineDefinitions) + R"yaml(
feature_services:
  - name: risk_service
    features:
      - {view: risk, features: [failures]}
      - bay_stats
      - "risk:score"
)yaml";

class OnlineFeaturesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto defs = std::make_shared<Definitions>(OnlineDefinitions(kOnlineFeaturesDefinitions));
    layouts_ = MakeViewLayouts(*defs, Duration::Days(90)).ValueOrDie();
    RocksDbOnlineStore::Options options;
    options.clock = &clock_;
    store_ = RocksDbOnlineStore::Open(dir_.path() / "online", options).ValueOrDie();
    service_ = OnlineFeaturesService::Make(defs, store_.get(), Duration::Days(90)).ValueOrDie();
    auto risk = layouts_.at("risk");
    ASSERT_TRUE(store_
                    ->WriteBatch(*risk, *MakeRows(*risk,
                                                  {
                                                      Row{{Value(int64_t{1})},
                                                          kT0 - Duration::Minutes(30),
                                                          {},
                                                          {Value(0.25), Value::Null()}},
                                                      Row{{Value(int64_t{2})},
                                                          kT0 - Duration::Hours(2),
                                                          {},
                                                          {Value(0.5), Value(int64_t{4})}},
                                                  }))
                    .ok());
  }

  std::string Get(std::string_view request_json) {
    auto request = ParseOnlineFeaturesRequest(request_json);
    EXPECT_TRUE(request.ok()) << request.status().ToString();
    std::string json;
    Status st = service_->GetOnlineFeatures(*request, &json);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return json;
  }
  std::string Error(std::string_view request_json) {
    auto request = ParseOnlineFeaturesRequest(request_json);
    if (!request.ok()) return request.status().message();
    auto resolved = service_->Resolve(*request);
    EXPECT_FALSE(resolved.ok()) << "no error for " << request_json;
    EXPECT_EQ(resolved.status().code(), StatusCode::kInvalidArgument);
    return resolved.status().message();
  }

  TempDir dir_ = TempDir::Make("granary_serving_").ValueOrDie();
  ManualClock clock_{kT0};
  ViewLayouts layouts_;
  std::unique_ptr<RocksDbOnlineStore> store_;
  std::unique_ptr<OnlineFeaturesService> service_;
};

}  // namespace granary::testing
