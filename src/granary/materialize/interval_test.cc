#include "granary/materialize/interval.h"

#include <gtest/gtest.h>

namespace granary {
namespace {

constexpr const char* kTag = "0badcafe";

Timestamp At(const char* text) { return ParseTimestamp(text).ValueOrDie(); }

std::optional<WatermarkState> Watermark(const char* text, std::string layout = kTag) {
  WatermarkState state;
  state.watermark = At(text);
  state.layout = std::move(layout);
  return state;
}

TEST(ViewInterval, FirstIncrementalRunReadsOneTtlBeforeTheEnd) {
  auto plan = PlanIncremental(std::nullopt, kTag, Duration::Days(2), At("2026-11-25T02:00:00Z"));
  ASSERT_TRUE(plan.start.has_value());
  EXPECT_EQ(*plan.start, At("2026-11-23T02:00:00Z"));
  EXPECT_EQ(plan.end, At("2026-11-25T02:00:00Z"));
  EXPECT_TRUE(plan.advances_watermark);
  EXPECT_FALSE(plan.up_to_date);
}

TEST(ViewInterval, FirstIncrementalRunOfATtlZeroViewReadsEverything) {
  auto plan = PlanIncremental(std::nullopt, kTag, Duration{}, At("2026-11-25T02:00:00Z"));
  EXPECT_FALSE(plan.start.has_value());
  EXPECT_EQ(FormatIntervalStart(plan.start), "the first row");
  EXPECT_TRUE(plan.advances_watermark);
}

TEST(ViewInterval, IncrementalRunStartsOneMicrosecondAfterTheWatermark) {
  // Rows exactly at the watermark were written by the run that set it: not read again.
  auto plan = PlanIncremental(Watermark("2026-11-24T02:00:00Z"), kTag, Duration::Days(2),
                              At("2026-11-25T02:00:00Z"));
  EXPECT_EQ(*plan.start, At("2026-11-24T02:00:00.000001Z"));
  EXPECT_EQ(*plan.watermark, At("2026-11-24T02:00:00Z"));
  EXPECT_TRUE(plan.advances_watermark);
}

TEST(ViewInterval, IncrementalRunAtOrBeforeTheWatermarkIsUpToDate) {
  auto same = PlanIncremental(Watermark("2026-11-25T02:00:00Z"), kTag, Duration::Days(2),
                              At("2026-11-25T02:00:00Z"));
  EXPECT_TRUE(same.up_to_date);
  EXPECT_FALSE(same.advances_watermark);
  auto earlier = PlanIncremental(Watermark("2026-11-25T02:00:00Z"), kTag, Duration::Days(2),
                                 At("2026-11-24T00:00:00Z"));
  EXPECT_TRUE(earlier.up_to_date);
  EXPECT_NE(earlier.watermark_note.find("already materialized up to 2026-11-25T02:00:00Z"),
            std::string::npos);
}

TEST(ViewInterval, AWatermarkOfAnotherLayoutMakesTheIncrementalRunStartOver) {
  auto plan = PlanIncremental(Watermark("2026-11-24T02:00:00Z", "11111111"), kTag,
                              Duration::Days(2), At("2026-11-25T02:00:00Z"));
  EXPECT_TRUE(plan.layout_changed);
  EXPECT_FALSE(plan.watermark.has_value());
  EXPECT_EQ(*plan.start, At("2026-11-23T02:00:00Z"));
  // Even when the old watermark is at or after END: the old values are unreadable.
  auto later = PlanIncremental(Watermark("2026-11-26T00:00:00Z", ""), kTag, Duration{},
                               At("2026-11-25T02:00:00Z"));
  EXPECT_FALSE(later.up_to_date);
  EXPECT_FALSE(later.start.has_value());
}

TEST(ViewInterval, AnExplicitIntervalAdvancesOnlyWhenItConnectsToTheWatermark) {
  const auto wm = Watermark("2026-11-24T00:00:00Z");
  EXPECT_TRUE(PlanInterval(wm, kTag, At("2026-11-20T00:00:00Z"), At("2026-11-25T00:00:00Z"))
                  .advances_watermark);
  EXPECT_TRUE(PlanInterval(wm, kTag, At("2026-11-24T00:00:00Z"), At("2026-11-25T00:00:00Z"))
                  .advances_watermark);
  EXPECT_TRUE(PlanInterval(wm, kTag, At("2026-11-24T00:00:00.000001Z"), At("2026-11-25T00:00:00Z"))
                  .advances_watermark);
  auto gap = PlanInterval(wm, kTag, At("2026-11-24T00:00:00.000002Z"), At("2026-11-25T00:00:00Z"));
  EXPECT_FALSE(gap.advances_watermark);
  EXPECT_NE(gap.watermark_note.find("the watermark stays at 2026-11-24T00:00:00Z"),
            std::string::npos);
  // No watermark yet (or one of another layout): the first interval sets it.
  EXPECT_TRUE(
      PlanInterval(std::nullopt, kTag, At("2026-11-24T12:00:00Z"), At("2026-11-25T00:00:00Z"))
          .advances_watermark);
  EXPECT_TRUE(PlanInterval(Watermark("2026-11-01T00:00:00Z", "22222222"), kTag,
                           At("2026-11-24T12:00:00Z"), At("2026-11-25T00:00:00Z"))
                  .advances_watermark);
}

}  // namespace
}  // namespace granary
