// PlanOrApply: a repository folder on disk, its registry in a temp dir.
#include "granary/registry/apply.h"

#include <gtest/gtest.h>

#include <fstream>

#include "granary/common/temp_dir.h"
#include "granary/registry/registry_store.h"
#include "granary/registry/serialize.h"
#include "granary/testing/registry_definitions.h"

namespace granary {
namespace {

class ApplyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<TempDir>(TempDir::Make("granary-apply-").ValueOrDie());
    config_.root = dir_->path();
    config_.project = "shop";
    Write("granary.yaml", "project: shop\n");
    Write("defs.yaml", testing::kValidDefinitions);
  }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_->path() / name) << text;
  }
  Result<ApplyOutcome> Run(ApplyMode mode, std::vector<std::string>* warnings = nullptr) {
    return PlanOrApply(config_, nullptr, mode, Timestamp::FromMicros(1'000'000), warnings);
  }

  std::unique_ptr<TempDir> dir_;
  RepoConfig config_;
};

TEST_F(ApplyTest, PlanListsEverythingAndWritesNothing) {
  auto plan = Run(ApplyMode::kPlan);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_FALSE(plan->previous.has_value());
  EXPECT_FALSE(plan->applied.has_value());
  EXPECT_FALSE(plan->up_to_date);
  EXPECT_EQ(plan->changes.size(), 6u);  // 2 entities, 1 source, 1 view, 2 services
  EXPECT_EQ(plan->definitions.feature_views.size(), 1u);
  EXPECT_FALSE(std::filesystem::exists(config_.RegistryPath()));
}

TEST_F(ApplyTest, ApplyWritesAVersionOnceThenIsUpToDate) {
  auto first = Run(ApplyMode::kApply);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE(first->applied.has_value());
  EXPECT_EQ(first->applied->version, 1);
  EXPECT_EQ(first->applied->applied_at, Timestamp::FromMicros(1'000'000));

  auto again = Run(ApplyMode::kApply);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->up_to_date);
  EXPECT_FALSE(again->applied.has_value());
  EXPECT_EQ(again->previous->version, 1);

  std::string text = testing::kValidDefinitions;
  text.replace(text.find("ttl: 90d"), 8, "ttl: 30d");
  Write("defs.yaml", text);
  auto plan = Run(ApplyMode::kPlan);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->changes.size(), 1u);
  EXPECT_EQ(plan->changes[0].action, PlanChange::Action::kUpdate);
  EXPECT_EQ(plan->changes[0].name, "customer_risk");
  EXPECT_EQ(plan->changes[0].changed_keys, std::vector<std::string>{"ttl"});
  auto second = Run(ApplyMode::kApply);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->applied->version, 2);
}

TEST_F(ApplyTest, TheRegistryRemembersEarlierOnlineSchemasOutsideThePlanAndFingerprint) {
  ASSERT_TRUE(Run(ApplyMode::kApply).ok());
  auto first = OpenSqliteRegistry(config_.RegistryPath(), OpenMode::kOpenExisting)
                   .ValueOrDie()
                   ->Latest()
                   .ValueOrDie();
  const FeatureView& v1 = first->definitions.feature_views[0];
  EXPECT_TRUE(v1.online_history.empty());
  const std::string schema1 = OnlineSchemaText(first->definitions, v1);
  EXPECT_EQ(schema1,
            "granary.schema.v1|customer_risk|customer_id:integer,|payment_failures_30d:int64,"
            "failure_rate_90d:float64,embedding:list<float32>,");

  // Removing a feature: version 2 remembers version 1's schema.
  std::string text = testing::kValidDefinitions;
  const std::string embedding = "      - {name: embedding, type: \"list<float32>\"}\n";
  text.erase(text.find(embedding), embedding.size());
  Write("defs.yaml", text);
  auto second = Run(ApplyMode::kApply);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  ASSERT_EQ(second->changes.size(), 1u);  // the schema only, not the history
  EXPECT_EQ(second->definitions.feature_views[0].online_history, std::vector<std::string>{schema1});
  auto stored = OpenSqliteRegistry(config_.RegistryPath(), OpenMode::kOpenExisting)
                    .ValueOrDie()
                    ->Latest()
                    .ValueOrDie();
  EXPECT_EQ(stored->definitions.feature_views[0].online_history, std::vector<std::string>{schema1});
  const std::string schema2 =
      OnlineSchemaText(stored->definitions, stored->definitions.feature_views[0]);
  // The project is part of the definitions' fingerprint, the online history is not.
  Definitions other_project = stored->definitions;
  other_project.project = "other";
  EXPECT_NE(DefinitionsFingerprint(other_project), DefinitionsFingerprint(stored->definitions));
  Definitions no_history = stored->definitions;
  no_history.feature_views[0].online_history.clear();
  EXPECT_EQ(DefinitionsFingerprint(no_history), DefinitionsFingerprint(stored->definitions));
  EXPECT_EQ(DefinitionsFingerprint(stored->definitions), stored->info.fingerprint);

  // The same files again: up to date (the history is not part of the fingerprint).
  auto again = Run(ApplyMode::kApply);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->up_to_date);
  EXPECT_TRUE(again->changes.empty());

  // A change elsewhere keeps the history; going back to version 1's schema drops it from the
  // history (it is the current one) and remembers version 2's.
  std::string ttl = text;
  ttl.replace(ttl.find("ttl: 90d"), 8, "ttl: 30d");
  Write("defs.yaml", ttl);
  auto third = Run(ApplyMode::kApply);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->definitions.feature_views[0].online_history, std::vector<std::string>{schema1});
  Write("defs.yaml", testing::kValidDefinitions);
  auto fourth = Run(ApplyMode::kApply);
  ASSERT_TRUE(fourth.ok());
  EXPECT_EQ(fourth->definitions.feature_views[0].online_history, std::vector<std::string>{schema2});
}

TEST(CarryOnlineHistory, KeepsTheNewestSchemasWithTheSameJoinKeys) {
  Definitions before;
  before.entities.push_back(
      Entity{"customer", {"customer_id"}, {ValueType::Scalar(ScalarType::kInt64)}, "", {}, {}});
  before.entities.push_back(
      Entity{"bay", {"bay_id"}, {ValueType::Scalar(ScalarType::kString)}, "", {}, {}});
  FeatureView view;
  view.name = "v";
  view.entities = {"customer"};
  view.schema = {Field{"a", ValueType::Scalar(ScalarType::kInt64)}};
  before.feature_views.push_back(view);
  Definitions after = before;
  std::vector<std::string> expected;
  for (int i = 0; i < 6; ++i) {
    expected.insert(expected.begin(), OnlineSchemaText(after, after.feature_views[0]));
    before = after;
    after.feature_views[0].schema.push_back(
        Field{"f" + std::to_string(i), ValueType::Scalar(ScalarType::kFloat64)});
    CarryOnlineHistory(before, &after);
  }
  expected.resize(kOnlineHistoryLimit);
  EXPECT_EQ(after.feature_views[0].online_history, expected);

  // Other join keys: the values stored belong to other entities, nothing is carried.
  before = after;
  after.feature_views[0].entities = {"bay"};
  CarryOnlineHistory(before, &after);
  EXPECT_TRUE(after.feature_views[0].online_history.empty());
  // Nor for a view that is not online.
  after = before;
  after.feature_views[0].online = false;
  CarryOnlineHistory(before, &after);
  EXPECT_TRUE(after.feature_views[0].online_history.empty());
}

TEST_F(ApplyTest, InvalidDefinitionsListEveryErrorAndKeepWarnings) {
  Write("bad.yaml", R"yaml(
feature_views:
  - {name: a, entities: [nobody], source: customer_payments, schema: [{name: x, type: int64}]}
  - {name: b, entities: [customer], source: nowhere, schema: [{name: y, type: int64}]}
)yaml");
  std::vector<std::string> warnings;
  auto out = Run(ApplyMode::kApply, &warnings);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(out.status().message().find("bad.yaml:3"), std::string::npos) << out.status().message();
  EXPECT_NE(out.status().message().find("bad.yaml:4"), std::string::npos) << out.status().message();
  EXPECT_FALSE(std::filesystem::exists(config_.RegistryPath()));
}

}  // namespace
}  // namespace granary
