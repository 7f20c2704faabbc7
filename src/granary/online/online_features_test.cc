// OnlineFeaturesBuilder: assembling a read's result from fetched bodies.
#include "granary/online/online_features.h"

#include <gtest/gtest.h>

#include "granary/testing/online_definitions.h"

namespace granary {
namespace {

using testing::MakeViewRead;
using testing::OnlineDefinitions;

// Builds the result of reading `rows` entities of view risk, each with a stored body, with an
// arena limit of `max_bytes` (0: the default).
Result<OnlineFeatures> ReadRisk(size_t rows, size_t max_bytes, size_t* arena_bytes) {
  const Definitions defs = OnlineDefinitions();
  std::shared_ptr<const ViewLayout> view =
      ViewLayout::Make(defs, *defs.FindFeatureView("risk"), Duration::Days(1)).ValueOrDie();
  std::vector<std::vector<Value>> keys;
  for (size_t r = 0; r < rows; ++r) keys.push_back({Value(static_cast<int64_t>(r))});
  OnlineReadRequest request;
  request.views.push_back(MakeViewRead(view, keys));
  OnlineFeaturesBuilder builder(request, max_bytes == 0 ? kMaxOnlineReadBytes : max_bytes);
  const Timestamp now = Timestamp::FromSeconds(1'800'000'000);
  for (size_t r = 0; r < rows; ++r) {
    std::string body;
    WriteOrder order;
    order.event_micros = now.micros;
    GRANARY_RETURN_NOT_OK(
        EncodeBody(*view, order,
                   {Value(0.5 + static_cast<double>(r)), Value(static_cast<int64_t>(r))}, &body));
    const size_t at = builder.arena()->size();
    builder.arena()->append(body);
    builder.SetBody(0, r, at, body.size());
  }
  *arena_bytes = builder.arena()->size();
  return builder.Finish(now);
}

TEST(OnlineFeaturesBuilder, AReadPastTheOffsetLimitIsAnErrorNotWrappedOffsets) {
  size_t bytes = 0;
  auto full = ReadRisk(100, 0, &bytes);
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  EXPECT_EQ(full->value(0, 0, 99).AsFloat64(), 99.5);
  EXPECT_EQ(full->value(0, 1, 99).AsInt64(), 99);
  // Every offset fits in 32 bits below the two markers (kMissingOffset, kNullOffset).
  EXPECT_EQ(kMaxOnlineReadBytes, size_t{0xfffffffe});

  // Exactly at the limit: fine, and the last value reads back.
  auto at_limit = ReadRisk(100, bytes, &bytes);
  ASSERT_TRUE(at_limit.ok()) << at_limit.status().ToString();
  EXPECT_EQ(at_limit->value(0, 1, 99).AsInt64(), 99);
  // One byte past it: a clear error naming the limit, not values at wrapped offsets.
  auto past = ReadRisk(100, bytes - 1, &bytes);
  ASSERT_FALSE(past.ok());
  EXPECT_EQ(past.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(past.status().message().find("more than the limit of " + std::to_string(bytes - 1) +
                                         " bytes per read"),
            std::string::npos)
      << past.status().message();
}

TEST(OnlineFeaturesBuilder, ATruncatedBodyIsCorruptionSayingHowToRepairIt) {
  const Definitions defs = OnlineDefinitions();
  std::shared_ptr<const ViewLayout> view =
      ViewLayout::Make(defs, *defs.FindFeatureView("risk"), Duration::Days(1)).ValueOrDie();
  OnlineReadRequest request;
  request.views.push_back(MakeViewRead(view, {{Value(int64_t{1})}, {Value(int64_t{2})}}));
  OnlineFeaturesBuilder builder(request);
  builder.arena()->append("abc");
  builder.SetBody(0, 1, 0, 3);
  auto got = builder.Finish(Timestamp::FromSeconds(0));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kCorruption);
  EXPECT_EQ(got.status().message(),
            "feature view 'risk': the stored value of entity row 1 is 3 bytes, too short for a "
            "value header; it is corrupt: materialize the view again to replace it");
}

}  // namespace
}  // namespace granary
