#include "granary/types/value_type.h"

#include <gtest/gtest.h>

#include "granary/types/feature_ref.h"
#include "granary/types/value.h"

namespace granary {
namespace {

TEST(ValueType, ParsesCanonicalNamesAndRoundTrips) {
  for (const char* name : {"bool", "int32", "int64", "float32", "float64", "string", "bytes",
                           "timestamp", "list<float32>", "list<string>", "list<timestamp>"}) {
    auto t = ValueType::Parse(name);
    ASSERT_TRUE(t.ok()) << name;
    EXPECT_EQ(t->ToString(), name);
  }
}

TEST(ValueType, AcceptsFeastNames) {
  EXPECT_EQ(ValueType::Parse("Int64").ValueOrDie(), ValueType::Scalar(ScalarType::kInt64));
  EXPECT_EQ(ValueType::Parse("UnixTimestamp").ValueOrDie(),
            ValueType::Scalar(ScalarType::kTimestamp));
  EXPECT_EQ(ValueType::Parse("Array(Float32)").ValueOrDie(), ValueType::List(ScalarType::kFloat32));
}

TEST(ValueType, RejectsUnknownNamesListingTheKnownOnes) {
  auto t = ValueType::Parse("int128");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("list<float32>"), std::string::npos);
  EXPECT_FALSE(ValueType::Parse("list<list<int64>>").ok());
  EXPECT_FALSE(ValueType::Parse("list<>").ok());
}

TEST(Value, ReportsItsType) {
  EXPECT_TRUE(Value().is_null());
  EXPECT_EQ(Value(int64_t{3}).type(), ValueType::Scalar(ScalarType::kInt64));
  EXPECT_EQ(Value(std::vector<float>{1.f, 2.f}).type(), ValueType::List(ScalarType::kFloat32));
  EXPECT_EQ(Value(Bytes{"ab"}).type(), ValueType::Scalar(ScalarType::kBytes));
  EXPECT_EQ(Value("x").type(), ValueType::Scalar(ScalarType::kString));
  EXPECT_EQ(Value(std::vector<int64_t>{1, 2}).ToString(), "[1, 2]");
}

TEST(FeatureRef, ParsesViewAndFeature) {
  auto r = FeatureRef::Parse("customer_risk:tenure_days").ValueOrDie();
  EXPECT_EQ(r.view, "customer_risk");
  EXPECT_EQ(r.feature, "tenure_days");
  EXPECT_EQ(r.OutputName(true), "customer_risk__tenure_days");
  EXPECT_EQ(r.OutputName(false), "tenure_days");
  for (const char* bad : {"", "x", ":x", "x:", "a:b:c"}) EXPECT_FALSE(FeatureRef::Parse(bad).ok());
}

}  // namespace
}  // namespace granary
