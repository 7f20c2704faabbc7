// PlanWindowSlices: one read when the events fit, time slices that follow the budget when a
// slice of four lead-ins fits, one spilled read otherwise; every timed row in exactly one slice,
// and each slice's events range within what its rows' windows reach.
#include "granary/offline/window_slices.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "granary/aggregation/window_kernel.h"
#include "granary/testing/test_seed.h"

namespace granary {
namespace {

constexpr int64_t kHour = 3'600'000'000;
constexpr int64_t kDay = 24 * kHour;

std::shared_ptr<arrow::Array> Times(const std::vector<std::optional<int64_t>>& times) {
  arrow::TimestampBuilder builder(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                                  arrow::default_memory_pool());
  for (const auto& t : times) {
    EXPECT_TRUE((t ? builder.Append(*t) : builder.AppendNull()).ok());
  }
  return builder.Finish().ValueOrDie();
}

// 100 days of events, 1 MiB a day; a 7-day window at 1-hour granularity (lead-in 7d 1h).
WindowSliceInputs HundredDays(int64_t hold_budget) {
  WindowSliceInputs inputs;
  inputs.start = Timestamp{0};
  inputs.end = Timestamp{100 * kDay - 1};
  inputs.events_bytes = int64_t{100} << 20;
  inputs.longest = Duration::Days(7);
  inputs.granularity = Duration::Hours(1);
  inputs.hold_budget = hold_budget;
  return inputs;
}

TEST(PlanWindowSlices, EventsThatFitAreHeldInOneRead) {
  auto times = Times({5 * kDay, 50 * kDay, std::nullopt});
  auto plan = PlanWindowSlices(*times, HundredDays(int64_t{200} << 20));
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_TRUE(plan->slices.empty());
  EXPECT_EQ(plan->hold_bytes, int64_t{200} << 20);
  EXPECT_NE(plan->reason.find("held in one read"), std::string::npos) << plan->reason;
}

TEST(PlanWindowSlices, ALeadInTooLargeForTheBudgetIsOneSpilledRead) {
  // A slice of 4 lead-ins beyond its own: 5 x 7d 1h of events, about 35 MiB; 30 MiB is too little.
  auto times = Times({5 * kDay, 50 * kDay, 99 * kDay});
  auto plan = PlanWindowSlices(*times, HundredDays(int64_t{30} << 20));
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_TRUE(plan->slices.empty());
  EXPECT_EQ(plan->hold_bytes, 0);
  EXPECT_NE(plan->reason.find("spilled"), std::string::npos) << plan->reason;
  // Rows without a time read nothing: one read too.
  plan = PlanWindowSlices(*Times({std::nullopt, std::nullopt}), HundredDays(int64_t{60} << 20));
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_TRUE(plan->slices.empty());
  // An unbounded range has no rate to plan from: one read too.
  WindowSliceInputs unbounded = HundredDays(int64_t{60} << 20);
  unbounded.end = Timestamp{-1};
  plan = PlanWindowSlices(*times, unbounded);
  ASSERT_TRUE(plan.ok());
  EXPECT_TRUE(plan->slices.empty());
}

TEST(PlanWindowSlices, RowsWhoseWindowsReachOneSliceAreReadOnceOverTheirRange) {
  auto times = Times({60 * kDay, 61 * kDay, std::nullopt, 60 * kDay});
  auto plan = PlanWindowSlices(*times, HundredDays(int64_t{40} << 20));
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->slices.size(), 1u);
  EXPECT_EQ(plan->slices[0].rows, (std::vector<int64_t>{0, 3, 1, 2}));
  EXPECT_EQ(plan->slices[0].start.micros,
            aggregation::WindowStart(60 * kDay, Duration::Days(7), Duration::Hours(1)));
  EXPECT_EQ(plan->slices[0].end.micros, 61 * kDay);
}

// Random rows over the range (some at equal times, some without one): the slices cover every
// timed row once, in time order; each reads from its first row's window start to its last row,
// within the range, and holds at most the budget at the planned rate; a larger budget makes
// fewer slices.
TEST(PlanWindowSlices, SlicesFollowTheBudgetAndCoverEveryRowOnce) {
  const uint64_t seed = testing::TestSeed();
  SCOPED_TRACE(testing::SeedTrace(seed));
  std::mt19937_64 rng(seed);
  std::vector<std::optional<int64_t>> raw;
  for (int i = 0; i < 5000; ++i) {
    if (rng() % 50 == 0) {
      raw.push_back(std::nullopt);
    } else if (rng() % 4 == 0 && !raw.empty() && raw.back()) {
      raw.push_back(raw.back());  // a tie
    } else {
      raw.push_back(static_cast<int64_t>(rng() % (100 * kDay)));
    }
  }
  auto times = Times(raw);
  const double rate = 100.0 * (1 << 20) / (100.0 * kDay);  // bytes a microsecond
  size_t previous = 0;
  for (int64_t mib : {36, 48, 64, 99}) {
    SCOPED_TRACE(::testing::Message() << mib << " MiB");
    const WindowSliceInputs inputs = HundredDays(mib << 20);
    auto plan = PlanWindowSlices(*times, inputs);
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    ASSERT_GT(plan->slices.size(), 1u) << plan->reason;
    EXPECT_EQ(plan->hold_bytes, mib << 20);
    EXPECT_NE(plan->reason.find(std::to_string(plan->slices.size()) + " time slices"),
              std::string::npos)
        << plan->reason;
    if (previous != 0) {
      EXPECT_LE(plan->slices.size(), previous);
    }
    previous = plan->slices.size();
    std::vector<int> seen(raw.size(), 0);
    int64_t last_end = -1;
    for (size_t s = 0; s < plan->slices.size(); ++s) {
      const WindowSlice& slice = plan->slices[s];
      ASSERT_FALSE(slice.rows.empty());
      int64_t lo = INT64_MAX, hi = INT64_MIN;
      for (int64_t r : slice.rows) {
        ++seen[r];
        if (!raw[r]) {
          EXPECT_EQ(s, 0u) << "a row without a time goes with the first slice";
          continue;
        }
        lo = std::min(lo, *raw[r]);
        hi = std::max(hi, *raw[r]);
      }
      EXPECT_GT(lo, last_end) << "slices in time order, none sharing a time";
      last_end = hi;
      EXPECT_EQ(slice.start.micros,
                std::max(inputs.start.micros,
                         aggregation::WindowStart(lo, inputs.longest, inputs.granularity)));
      EXPECT_EQ(slice.end.micros, hi);
      const double bytes = rate * static_cast<double>(slice.end.micros - slice.start.micros + 1);
      EXPECT_LE(bytes, static_cast<double>(mib << 20) * 1.0001);
    }
    for (size_t r = 0; r < raw.size(); ++r) EXPECT_EQ(seen[r], 1) << "row " << r;
  }
}

}  // namespace
}  // namespace granary
