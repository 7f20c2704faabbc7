#include "granary/registry/validator.h"

#include <gtest/gtest.h>

#include "granary/testing/registry_definitions.h"

namespace granary {
namespace {

using testing::kValidDefinitions;
using testing::LoadAndValidate;
using testing::OnlyError;

std::string With(const std::string& extra) { return std::string(kValidDefinitions) + extra; }

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  size_t pos = text.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  return text.replace(pos, from.size(), to);
}

TEST(Validator, AcceptsAConsistentRepository) {
  Diagnostics diag = LoadAndValidate(kValidDefinitions);
  EXPECT_FALSE(diag.has_errors()) << diag.ToStatus().ToString();
}

TEST(Validator, UnknownEntityNamesTheViewAndSuggests) {
  Diagnostics diag =
      LoadAndValidate(Replace(kValidDefinitions, "entities: [customer]", "entities: [custmer]"));
  EXPECT_EQ(OnlyError(diag),
            "defs.yaml:13: feature view 'customer_risk': unknown entity 'custmer', did you mean "
            "'customer'?; define it under entities: or fix the name (entities: customer, "
            "parking_bay)");
}

TEST(Validator, DuplicateNamePointsAtBothDefinitions) {
  Diagnostics diag =
      LoadAndValidate(Replace(kValidDefinitions, "{name: parking_bay,", "{name: customer,"));
  EXPECT_EQ(OnlyError(diag),
            "defs.yaml:4: entity 'customer' is defined twice: here and at defs.yaml:3; rename or "
            "remove one");
}

TEST(Validator, FeatureServiceWithUnknownView) {
  Diagnostics diag =
      LoadAndValidate(With("  - name: broken\n    features:\n      - customer_rsk\n"));
  EXPECT_NE(OnlyError(diag).find("feature service 'broken': unknown feature view 'customer_rsk', "
                                 "did you mean 'customer_risk'?"),
            std::string::npos)
      << OnlyError(diag);
}

TEST(Validator, FeatureServiceWithUnknownFeature) {
  Diagnostics diag =
      LoadAndValidate(With("  - name: broken\n    features:\n      - {view: customer_risk, "
                           "features: [failure_rate_9d]}\n"));
  EXPECT_NE(OnlyError(diag).find("feature view 'customer_risk' has no feature 'failure_rate_9d', "
                                 "did you mean 'failure_rate_90d'?"),
            std::string::npos)
      << OnlyError(diag);
  EXPECT_EQ(OnlyError(diag).substr(0, 12), "defs.yaml:32");
}

TEST(Validator, FeatureServiceAcceptsViewColonFeatureShorthand) {
  Diagnostics diag =
      LoadAndValidate(With("  - name: short\n    features: [\"customer_risk:embedding\"]\n"));
  EXPECT_FALSE(diag.has_errors()) << diag.ToStatus().ToString();
}

TEST(Validator, UnknownSourceAndJoinKeyAsFeatureAreErrors) {
  Diagnostics diag = LoadAndValidate(
      Replace(Replace(kValidDefinitions, "source: customer_payments", "source: payments"),
              "{name: failure_rate_90d, type: float64}", "{name: customer_id, type: int64}"));
  // The third: service 'risk_subset' still asks for the renamed feature failure_rate_90d.
  EXPECT_EQ(diag.error_count(), 3);
  EXPECT_NE(diag.ToStatus().message().find("unknown data source 'payments'"), std::string::npos);
  EXPECT_NE(diag.ToStatus().message().find("has no feature 'failure_rate_90d'"), std::string::npos);
  EXPECT_NE(diag.ToStatus().message().find("'customer_id' is a join key"), std::string::npos);
}

TEST(Validator, ReportsEveryProblemAtOnce) {
  Diagnostics diag = LoadAndValidate(
      With("  - name: a\n    features: [nope]\n  - name: b\n    features: [nada]\n"));
  EXPECT_EQ(diag.error_count(), 2);
  EXPECT_NE(diag.ToStatus().message().find("2 errors in the definitions:"), std::string::npos);
}

TEST(Validator, NamesMustNotHoldDoubleUnderscores) {
  Diagnostics diag = LoadAndValidate(
      Replace(kValidDefinitions, "name: customer_risk\n", "name: customer__risk\n"));
  EXPECT_NE(diag.ToStatus().message().find("feature view 'customer__risk': the name must be"),
            std::string::npos)
      << diag.ToStatus().message();
}

// A push source over the valid repository's file source, and a view reading it.
constexpr const char* kPushSource = R"yaml(
  - name: payments_push
    type: push
    batch_source: customer_payments
)yaml";

std::string WithPushSource(const std::string& batch, const std::string& view_extra = "") {
  std::string text = Replace(kValidDefinitions, "feature_views:\n",
                             Replace(kPushSource, "customer_payments", batch) + "feature_views:\n");
  return text + view_extra;
}

TEST(Validator, PushSourceNamesItsBatchSourceAndViewsReadThroughIt) {
  Definitions defs;
  Diagnostics diag = LoadAndValidate(
      Replace(WithPushSource("customer_payments"), "source: customer_payments\n    ttl",
              "source: payments_push\n    ttl"),
      &defs);
  ASSERT_FALSE(diag.has_errors()) << diag.ToStatus().ToString();
  const DataSource* push = defs.FindDataSource("payments_push");
  ASSERT_NE(push, nullptr);
  EXPECT_TRUE(push->is_push());
  EXPECT_EQ(defs.FindOfflineSource("payments_push"), defs.FindDataSource("customer_payments"));
  EXPECT_EQ(defs.FindOfflineSource("customer_payments"), defs.FindDataSource("customer_payments"));
}

TEST(Validator, PushSourceWithUnknownBatchSourceSuggests) {
  Diagnostics diag = LoadAndValidate(WithPushSource("customer_paymnts"));
  EXPECT_NE(OnlyError(diag).find("data source 'payments_push': unknown batch_source "
                                 "'customer_paymnts', did you mean 'customer_payments'?"),
            std::string::npos)
      << OnlyError(diag);
}

TEST(Validator, PushSourceCannotBeTheBatchSourceOfAnother) {
  Diagnostics diag =
      LoadAndValidate(Replace(WithPushSource("customer_payments"), "feature_views:\n",
                              "  - {name: push2, type: push, batch_source: payments_push}\n"
                              "feature_views:\n"));
  EXPECT_NE(OnlyError(diag).find("batch_source 'payments_push' is a push source itself"),
            std::string::npos)
      << OnlyError(diag);
}

TEST(Validator, PushSourceTakesNoPathOrColumns) {
  Diagnostics diag = LoadAndValidate(Replace(WithPushSource("customer_payments"),
                                             "batch_source: customer_payments\n",
                                             "batch_source: customer_payments\n"
                                             "    path: data/x.parquet\n"));
  EXPECT_NE(OnlyError(diag).find(
                "data source 'payments_push': 'path' is not allowed here: a push source takes it "
                "from its batch_source"),
            std::string::npos)
      << OnlyError(diag);
  diag = LoadAndValidate(
      Replace(kValidDefinitions, "    type: file\n", "    type: file\n    batch_source: other\n"));
  EXPECT_NE(OnlyError(diag).find("'batch_source' is only for push sources (type: push)"),
            std::string::npos)
      << OnlyError(diag);
}

TEST(Validator, ViewsOfOnePushSourceGiveASharedColumnOneType) {
  const std::string second_view = R"yaml(
  - name: customer_risk_fast
    entities: [customer]
    source: payments_push
    schema:
      - {name: failure_rate_90d, type: float32}
)yaml";
  std::string text =
      Replace(WithPushSource("customer_payments"), "source: customer_payments\n    ttl",
              "source: payments_push\n    ttl");
  text = Replace(text, "feature_services:\n", second_view.substr(1) + "feature_services:\n");
  Diagnostics diag = LoadAndValidate(text);
  EXPECT_NE(OnlyError(diag).find("feature view 'customer_risk_fast': 'failure_rate_90d' is "
                                 "float32 here but float64 in feature view 'customer_risk', which "
                                 "reads the same push source 'payments_push'"),
            std::string::npos)
      << OnlyError(diag);
}

}  // namespace
}  // namespace granary
