#include "granary/registry/validator.h"

#include <gtest/gtest.h>

#include "granary/registry/test_util.h"

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

}  // namespace
}  // namespace granary
