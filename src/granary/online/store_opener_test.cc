// OpenOnlineStoreOrRetry against a real redis-server: a store that cannot be reached at start
// answers Unavailable until it can, then serves; configuration errors stop the start unless the
// policy says otherwise.
#include "granary/online/store_opener.h"

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <thread>

#include "granary/testing/online_definitions.h"
#include "granary/testing/redis_server.h"

namespace granary {
namespace {

using testing::MakeViewRead;
using testing::RedisServer;
using testing::RedisServerOptions;

RepoConfig RedisConfig(const RedisServer& server, const std::string& password = "") {
  RepoConfig config;
  config.root = "/nonexistent";
  config.project = "opener";
  config.online_store.type = "redis";
  config.online_store.connection_string =
      server.address() + (password.empty() ? "" : ",password=" + password);
  return config;
}

// Short budgets: a paused server costs the open attempt this long.
OnlineStoreOptions ShortTimeouts() {
  OnlineStoreOptions options;
  options.connect_timeout = Duration::Microseconds(300'000);
  options.request_timeout = Duration::Microseconds(300'000);
  return options;
}

Result<OnlineFeatures> ReadOne(OnlineStore& store, const ViewLayouts& layouts) {
  OnlineReadRequest request;
  request.views.push_back(MakeViewRead(layouts.at("bay_stats"), {{Value(std::string("A"))}}));
  return store.Read(request);
}

class Lines {
 public:
  StoreLog Sink() {
    return [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(mu_);
      all_ += line + "\n";
    };
  }
  std::string all() {
    std::lock_guard<std::mutex> lock(mu_);
    return all_;
  }

 private:
  std::mutex mu_;
  std::string all_;
};

TEST(StoreOpener, AStoreUnreachableAtStartAnswersUnavailableUntilItOpensThenServes) {
  const ViewLayouts layouts =
      MakeViewLayouts(testing::OnlineDefinitions(), Duration::Days(90)).ValueOrDie();
  auto server = RedisServer::Start().ValueOrDie();
  server->Pause();  // accepts connections, answers nothing: unreachable
  Lines lines;
  auto store = OpenOnlineStoreOrRetry(RedisConfig(*server), ShortTimeouts(),
                                      StoreStartPolicy::kWhenUnreachable, lines.Sink());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ((*store)->Describe(), "redis at " + server->address());
  auto before = ReadOne(**store, layouts);
  ASSERT_FALSE(before.ok());
  EXPECT_EQ(before.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(before.status().message().find("redis at " + server->address() + " is not open yet"),
            std::string::npos)
      << before.status().ToString();
  EXPECT_NE(lines.all().find("starting without it"), std::string::npos) << lines.all();
  // Never: the same start fails.
  auto never =
      OpenOnlineStoreOrRetry(RedisConfig(*server), ShortTimeouts(), StoreStartPolicy::kNever);
  EXPECT_EQ(never.status().code(), StatusCode::kUnavailable);

  server->Resume();
  Result<OnlineFeatures> after = Status::Internal("not read");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!after.ok() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    after = ReadOne(**store, layouts);
  }
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->status(0, 0, 0), FeatureStatus::kNotFound);
  EXPECT_NE(lines.all().find("is open"), std::string::npos) << lines.all();
}

TEST(StoreOpener, RefusedCredentialsStopTheStartUnlessThePolicyIsAlways) {
  const ViewLayouts layouts =
      MakeViewLayouts(testing::OnlineDefinitions(), Duration::Days(90)).ValueOrDie();
  RedisServerOptions options;
  options.password = "right";
  auto server = RedisServer::Start(options).ValueOrDie();
  auto refused = OpenOnlineStoreOrRetry(RedisConfig(*server, "wrong"), ShortTimeouts(),
                                        StoreStartPolicy::kWhenUnreachable);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("refused the credentials"), std::string::npos)
      << refused.status().ToString();

  auto always = OpenOnlineStoreOrRetry(RedisConfig(*server, "wrong"), ShortTimeouts(),
                                       StoreStartPolicy::kAlways);
  ASSERT_TRUE(always.ok()) << always.status().ToString();
  auto read = ReadOne(**always, layouts);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(read.status().message().find("refused the credentials"), std::string::npos)
      << read.status().ToString();
  // The password set on the server meanwhile: it opens.
  ASSERT_TRUE(server->Check({"CONFIG", "SET", "requirepass", "wrong"}).ok());
  Result<OnlineFeatures> after = Status::Internal("not read");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!after.ok() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    after = ReadOne(**always, layouts);
  }
  ASSERT_TRUE(after.ok()) << after.status().ToString();
}

TEST(StoreOpener, PolicyNamesRoundTripAndABadOneSaysTheChoices) {
  for (auto p :
       {StoreStartPolicy::kWhenUnreachable, StoreStartPolicy::kAlways, StoreStartPolicy::kNever}) {
    EXPECT_EQ(*ParseStoreStartPolicy(StoreStartPolicyName(p)), p);
  }
  auto bad = ParseStoreStartPolicy("sometimes");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("use unreachable"), std::string::npos);
}

}  // namespace
}  // namespace granary
