#include "granary/common/status.h"

#include <gtest/gtest.h>

#include "granary/common/result.h"
#include "granary/common/strings.h"

namespace granary {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return Status::InvalidArgument("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  GRANARY_ASSIGN_OR_RAISE(int h, Half(x));
  GRANARY_ASSIGN_OR_RAISE(int q, Half(h));
  return q;
}

Status CheckEven(int x) {
  GRANARY_RETURN_NOT_OK(Half(x));
  return Status::OK();
}

TEST(Status, OkHasNoMessage) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "OK");
  EXPECT_EQ(s.message(), "");
}

TEST(Status, CopiesKeepCodeAndMessage) {
  Status s = Status::NotFound("no view 'x'");
  Status copy = s;
  EXPECT_EQ(copy.code(), StatusCode::kNotFound);
  EXPECT_EQ(copy.ToString(), "not found: no view 'x'");
  EXPECT_EQ(s.WithContext("apply").message(), "apply: no view 'x'");
}

TEST(Result, MacrosPropagateErrors) {
  EXPECT_EQ(Quarter(8).ValueOrDie(), 2);
  EXPECT_EQ(Quarter(6).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(CheckEven(2).ok());
  EXPECT_FALSE(CheckEven(3).ok());
}

TEST(Result, OkStatusWithoutValueBecomesInternalError) {
  Result<int> r(Status::OK());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
}

TEST(Strings, SuggestsCloseNames) {
  EXPECT_EQ(ClosestMatch("custmer", {"customer", "parking_bay"}), "customer");
  EXPECT_EQ(ClosestMatch("zzz", {"customer", "parking_bay"}), "");
  EXPECT_EQ(ClosestMatch("event_ts", {"driver_id", "event_timestamp", "created"}),
            "event_timestamp");
  EXPECT_EQ(DidYouMean("feature_view", {"feature_views", "entities"}),
            ", did you mean 'feature_views'?");
}

}  // namespace
}  // namespace granary
