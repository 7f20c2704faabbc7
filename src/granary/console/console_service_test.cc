// The console's JSON API over a real repository (Parquet files, SQLite registry, RocksDB): what
// each page reads is what the registry and the data hold.
#include "granary/console/console_service.h"

#include <gtest/gtest.h>

#include "granary/common/json.h"
#include "granary/testing/materialize_repository.h"

namespace granary {
namespace {

using testing::At;
using testing::RiskRow;
using testing::TestRepo;

boost::json::value Parse(const Result<std::string>& text) {
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  if (!text.ok()) return {};
  auto v = ParseJson(*text);
  EXPECT_TRUE(v.ok()) << v.status().ToString() << "\n" << *text;
  return v.ok() ? *v : boost::json::value();
}

class ConsoleServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = TestRepo::Make("rocksdb");
    std::vector<RiskRow> rows;
    for (int64_t c = 1; c <= 6; ++c) {
      rows.push_back({c, At("2026-11-24T10:00:00Z"), std::nullopt, 0.1 * c, c});
      rows.push_back(
          {c, At("2026-11-25T10:00:00Z") + Duration::Minutes(c), std::nullopt, 0.2 * c, 2 * c});
    }
    repo_->WriteRows("part-0", rows);
    ASSERT_TRUE(repo_->Incremental(At("2026-11-25T11:00:00Z")).ok());
    repo_->CloseStore();
    ConsoleOptions options;
    options.repository = repo_->config;
    options.clock = &repo_->clock;
    options.max_staleness = Duration::Hours(6);
    console_ = ConsoleService::Make(options).ValueOrDie();
  }

  std::unique_ptr<TestRepo> repo_;
  std::unique_ptr<ConsoleService> console_;
};

TEST_F(ConsoleServiceTest, RegistryHasTheDefinitionsAndTheirLineage) {
  auto json = Parse(console_->RegistryJson());
  EXPECT_EQ(json.at("registry").at("feature_views").at(0).at("name").as_string(), "risk");
  const auto& edges = json.at("lineage").at("edges").as_array();
  auto has = [&](const char* from, const char* to) {
    for (const auto& e : edges) {
      if (e.at("from").as_string() == from && e.at("to").as_string() == to) return true;
    }
    return false;
  };
  EXPECT_TRUE(has("data_source:payments", "feature_view:risk"));
  EXPECT_TRUE(has("entity:customer", "feature_view:risk"));
  EXPECT_EQ(json.at("lineage").at("nodes").as_array().size(), 3u);
}

TEST_F(ConsoleServiceTest, HistorySaysWhatEachApplyChanged) {
  std::string changed = testing::kRiskDefinitions;
  changed.replace(changed.find("ttl: 2d"), 7, "ttl: 3d");
  repo_->Apply(changed);
  auto json = Parse(console_->HistoryJson(10));
  const auto& versions = json.at("versions").as_array();
  ASSERT_EQ(versions.size(), 2u);
  EXPECT_EQ(versions[0].at("version").as_int64(), 2);
  const auto& change = versions[0].at("changes").at(0);
  EXPECT_EQ(change.at("action").as_string(), "update");
  EXPECT_EQ(change.at("kind").as_string(), "feature view");
  EXPECT_EQ(change.at("name").as_string(), "risk");
  EXPECT_EQ(change.at("changed_keys").at(0).as_string(), "ttl");
  // Version 1 added everything.
  EXPECT_EQ(versions[1].at("changes").as_array().size(), 3u);
  EXPECT_EQ(versions[1].at("changes").at(0).at("action").as_string(), "add");
}

TEST_F(ConsoleServiceTest, FreshnessFlagsAViewPastTheThresholdWithItsRuns) {
  auto fresh = Parse(console_->FreshnessJson());
  const auto& view = fresh.at("views").at(0);
  EXPECT_EQ(view.at("view").as_string(), "risk");
  EXPECT_FALSE(view.at("stale").as_bool());
  EXPECT_EQ(view.at("watermark").as_string(), "2026-11-25T11:00:00Z");
  EXPECT_DOUBLE_EQ(view.at("staleness_seconds").to_number<double>(), 3600.0);
  ASSERT_EQ(view.at("runs").as_array().size(), 1u);
  EXPECT_EQ(view.at("runs").at(0).at("status").as_string(), "succeeded");
  EXPECT_EQ(view.at("runs").at(0).at("entities_written").as_int64(), 6);
  EXPECT_EQ(view.at("runs").at(0).at("rows_read").as_int64(), 12);
  // The age series ends now, at the staleness.
  const auto& series = view.at("age_series").as_array();
  ASSERT_FALSE(series.empty());
  EXPECT_DOUBLE_EQ(series.back().at(1).to_number<double>(), 3600.0);
  EXPECT_EQ(fresh.at("max_staleness_seconds").to_number<double>(), 6 * 3600.0);

  repo_->clock.Advance(Duration::Hours(7));
  auto stale = Parse(console_->FreshnessJson());
  EXPECT_TRUE(stale.at("views").at(0).at("stale").as_bool());
  EXPECT_DOUBLE_EQ(stale.at("views").at(0).at("staleness_seconds").to_number<double>(), 8 * 3600.0);
}

TEST_F(ConsoleServiceTest, StatsDescribeTheDataAndSampleTheOnlineValuesThenComeFromTheCache) {
  auto json = Parse(console_->StatsJson("view=risk&bins=4"));
  EXPECT_FALSE(json.at("cached").as_bool());
  const auto& stats = json.at("stats");
  EXPECT_EQ(stats.at("rows").as_int64(), 12);
  const auto& score = stats.at("features").at(0);
  EXPECT_EQ(score.at("name").as_string(), "score");
  EXPECT_NEAR(score.at("min").to_number<double>(), 0.1, 1e-12);
  EXPECT_NEAR(score.at("max").to_number<double>(), 1.2, 1e-12);
  int64_t binned = 0;
  for (const auto& b : score.at("histogram").as_array()) binned += b.at("count").as_int64();
  EXPECT_EQ(binned, 12);
  EXPECT_EQ(score.at("histogram").as_array().size(), 4u);
  // The newest rows are customer 6's, then 5's...; all of them are online.
  EXPECT_EQ(stats.at("sample_keys").at(0).at(0).as_string(), "6");
  const auto& sample = stats.at("online_sample");
  ASSERT_TRUE(sample.is_object()) << stats.at("online_note");
  EXPECT_EQ(sample.at("results").at(1).at("statuses").at(0).as_string(), "PRESENT");

  auto again = Parse(console_->StatsJson("view=risk&bins=4"));
  EXPECT_TRUE(again.at("cached").as_bool());
  auto refreshed = Parse(console_->StatsJson("view=risk&bins=4&refresh=1"));
  EXPECT_FALSE(refreshed.at("cached").as_bool());

  auto ranged = Parse(console_->StatsJson("view=risk&start=2026-11-25T00%3A00%3A00Z"));
  EXPECT_EQ(ranged.at("stats").at("rows").as_int64(), 6);
}

TEST_F(ConsoleServiceTest, BadStatsRequestsSayWhatToFix) {
  auto missing = console_->StatsJson("");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
  auto unknown = console_->StatsJson("view=nope");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  auto bad_time = console_->StatsJson("view=risk&start=yesterday");
  ASSERT_FALSE(bad_time.ok());
  EXPECT_NE(bad_time.status().message().find("?start="), std::string::npos);
  // A count of bins is the whole value, not its leading digits.
  for (const char* bins : {"5abc", "abc", "4.5", "99999999999"}) {
    auto bad_bins = console_->StatsJson(std::string("view=risk&bins=") + bins);
    ASSERT_FALSE(bad_bins.ok()) << bins;
    EXPECT_EQ(bad_bins.status().code(), StatusCode::kInvalidArgument) << bins;
    EXPECT_NE(bad_bins.status().message().find("is not a number of bins"), std::string::npos)
        << bad_bins.status().message();
  }
}

TEST_F(ConsoleServiceTest, ServingWithoutAServerSaysHowToGiveOne) {
  auto json = Parse(console_->ServingJson());
  EXPECT_TRUE(json.at("server").is_null());
  EXPECT_NE(std::string(json.at("note").as_string()).find("--server"), std::string::npos);
}

TEST_F(ConsoleServiceTest, ServingNamesAServerThatCannotBeReached) {
  ConsoleOptions options;
  options.repository = repo_->config;
  options.server_url = "http://127.0.0.1:1";  // nothing listens on port 1
  auto console = ConsoleService::Make(options).ValueOrDie();
  auto json = Parse(console->ServingJson());
  EXPECT_FALSE(json.at("reachable").as_bool());
  EXPECT_NE(std::string(json.at("error").as_string()).find("127.0.0.1:1"), std::string::npos);
}

TEST(ParseQueryString, DecodesPairsAndRefusesBadEscapes) {
  auto q = ParseQueryString("view=risk&start=2026-01-01T00%3A00%3A00Z&x=a+b&flag").ValueOrDie();
  EXPECT_EQ(q["view"], "risk");
  EXPECT_EQ(q["start"], "2026-01-01T00:00:00Z");
  EXPECT_EQ(q["x"], "a b");
  EXPECT_TRUE(q.contains("flag"));
  EXPECT_FALSE(ParseQueryString("a=%4").ok());
  EXPECT_FALSE(ParseQueryString("a=%zz").ok());
}

TEST(ConsoleService, RefusesARepositoryWithoutARegistry) {
  auto dir = TempDir::Make("granary-console-").ValueOrDie();
  ConsoleOptions options;
  options.repository.root = dir.path();
  options.repository.project = "p";
  auto console = ConsoleService::Make(options);
  ASSERT_FALSE(console.ok());
  EXPECT_NE(console.status().message().find("granary apply"), std::string::npos);
}

}  // namespace
}  // namespace granary
