// PlanOrApply: a repository folder on disk, its registry in a temp dir.
#include "granary/registry/apply.h"

#include <gtest/gtest.h>

#include <fstream>

#include "granary/common/temp_dir.h"
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
