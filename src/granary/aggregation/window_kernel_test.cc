#include "granary/aggregation/window_kernel.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

#include <limits>
#include <optional>
#include <random>
#include <set>

#include "granary/testing/test_seed.h"

namespace granary::aggregation {
namespace {

constexpr int64_t kHour = 3'600'000'000;

std::shared_ptr<arrow::Array> Ints(const std::vector<std::optional<int64_t>>& values) {
  arrow::Int64Builder b;
  for (auto v : values) v ? (void)b.Append(*v) : (void)b.AppendNull();
  return b.Finish().ValueOrDie();
}
std::shared_ptr<arrow::Array> Bools(const std::vector<std::optional<bool>>& values) {
  arrow::BooleanBuilder b;
  for (auto v : values) v ? (void)b.Append(*v) : (void)b.AppendNull();
  return b.Finish().ValueOrDie();
}

struct Case {
  std::vector<int64_t> event_group, event_time, row_group, row_time;
  WindowInput Input() const {
    WindowInput in;
    in.event_group = event_group.data();
    in.event_time = event_time.data();
    in.num_events = static_cast<int64_t>(event_time.size());
    in.row_group = row_group.data();
    in.row_time = row_time.data();
    in.num_rows = static_cast<int64_t>(row_time.size());
    in.granularity = Duration::Hours(1);
    return in;
  }
};

std::vector<std::optional<int64_t>> IntValues(const arrow::Array& a) {
  std::vector<std::optional<int64_t>> out;
  const auto& ints = static_cast<const arrow::Int64Array&>(a);
  for (int64_t i = 0; i < a.length(); ++i) {
    out.push_back(a.IsNull(i) ? std::nullopt : std::optional<int64_t>(ints.Value(i)));
  }
  return out;
}

TEST(WindowStart, RoundsDownToTheGranularityAlsoBeforeTheEpoch) {
  EXPECT_EQ(WindowStart(10 * kHour + 5, Duration::Hours(2), Duration::Hours(1)), 8 * kHour);
  EXPECT_EQ(WindowStart(10 * kHour, Duration::Hours(2), Duration::Hours(1)), 8 * kHour);
  EXPECT_EQ(WindowStart(kHour / 2, Duration::Hours(1), Duration::Hours(1)), -kHour);
}

// Found by fuzz/tile_body_fuzz.cc (fuzz/corpus/tile_body/crash_window_start_underflow): a time
// within a window of the earliest int64 microsecond made t - window overflow (UBSan); the start
// is now that earliest microsecond, and the window takes everything before t.
TEST(WindowStart, TimesNearTheEarliestMicrosecondStartThere) {
  constexpr int64_t kEarliest = std::numeric_limits<int64_t>::min();
  EXPECT_EQ(WindowStart(-9'223'372'001'676'859'402, Duration::Days(1), Duration::Hours(1)),
            kEarliest);
  EXPECT_EQ(WindowStart(kEarliest + 5, Duration::Hours(1), Duration::Hours(1)), kEarliest);
  const int64_t t = kEarliest + 3 * kHour + 5;  // rounding down passes the earliest microsecond
  EXPECT_EQ(WindowStart(t, Duration::Hours(3), Duration::Hours(7)), kEarliest);
}

TEST(WindowKernel, HeadIsExactAndTailIsWholeTiles) {
  // Events at 7:59:59.999999 (out: before the tile), 8:00 (in: the tile start), 10:00 (in: at
  // t), 10:00 + 1us (out: after t). Row at 10:00:00 with a 2h window: start 8:00.
  Case c{{0, 0, 0, 0}, {8 * kHour - 1, 8 * kHour, 10 * kHour, 10 * kHour + 1}, {0}, {10 * kHour}};
  WindowSpec count{AggregationFunction::kCount, Duration::Hours(2),
                   ValueType::Scalar(ScalarType::kInt64)};
  auto out = ComputeWindows(c.Input(), {count});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(IntValues(*(*out)[0]), (std::vector<std::optional<int64_t>>{2}));
  // At 10:30 the start is still 8:00 (10:30 - 2h = 8:30, rounded down): the window is 2.5h.
  c.row_time = {10 * kHour + kHour / 2};
  out = ComputeWindows(c.Input(), {count});
  EXPECT_EQ(IntValues(*(*out)[0]), (std::vector<std::optional<int64_t>>{3}));
}

TEST(WindowKernel, EmptyWindowsGiveCountZeroAndNullsElsewhere) {
  Case c{{1}, {5 * kHour}, {0, 1}, {6 * kHour, 4 * kHour}};  // group 0 has no events; 1 too early
  auto values = Ints({7});
  std::vector<WindowSpec> specs = {
      {AggregationFunction::kCount, Duration::Hours(1), ValueType::Scalar(ScalarType::kInt64)},
      {AggregationFunction::kSum, Duration::Hours(1), ValueType::Scalar(ScalarType::kInt64),
       values},
      {AggregationFunction::kLast, Duration::Hours(1), ValueType::Scalar(ScalarType::kInt64),
       values},
      {AggregationFunction::kCountDistinct, Duration::Hours(1),
       ValueType::Scalar(ScalarType::kInt64), values}};
  auto out = ComputeWindows(c.Input(), specs);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(IntValues(*(*out)[0]), (std::vector<std::optional<int64_t>>{0, 0}));
  EXPECT_EQ(IntValues(*(*out)[1]),
            (std::vector<std::optional<int64_t>>{std::nullopt, std::nullopt}));
  EXPECT_EQ(IntValues(*(*out)[2]),
            (std::vector<std::optional<int64_t>>{std::nullopt, std::nullopt}));
  EXPECT_EQ(IntValues(*(*out)[3]), (std::vector<std::optional<int64_t>>{0, 0}));
}

TEST(WindowKernel, WhereFalseOrNullAndNullValuesDoNotCount) {
  Case c{{0, 0, 0, 0}, {1, 2, 3, 4}, {0}, {5 * kHour}};
  auto values = Ints({10, std::nullopt, 30, 40});
  auto where = Bools({true, true, false, std::nullopt});
  std::vector<WindowSpec> specs = {{AggregationFunction::kCount, Duration::Days(1),
                                    ValueType::Scalar(ScalarType::kInt64), nullptr, where},
                                   {AggregationFunction::kCount, Duration::Days(1),
                                    ValueType::Scalar(ScalarType::kInt64), values},
                                   {AggregationFunction::kSum, Duration::Days(1),
                                    ValueType::Scalar(ScalarType::kInt64), values, where},
                                   {AggregationFunction::kMax, Duration::Days(1),
                                    ValueType::Scalar(ScalarType::kInt64), values}};
  auto out = ComputeWindows(c.Input(), specs);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(IntValues(*(*out)[0]), (std::vector<std::optional<int64_t>>{2}));
  EXPECT_EQ(IntValues(*(*out)[1]), (std::vector<std::optional<int64_t>>{3}));
  EXPECT_EQ(IntValues(*(*out)[2]), (std::vector<std::optional<int64_t>>{10}));
  EXPECT_EQ(IntValues(*(*out)[3]), (std::vector<std::optional<int64_t>>{40}));
}

TEST(WindowKernel, StddevOfEqualValuesIsExactlyZeroAfterOtherValuesLeft) {
  // 0.1, 1e6 and 7.7 leave the 1h window before the row at 5h; 20.3 three times stay.
  Case c{{0, 0, 0, 0, 0, 0},
         {0, 1, 2, 4 * kHour, 4 * kHour + 1, 5 * kHour},
         {0, 0},
         {kHour / 2, 5 * kHour}};
  arrow::DoubleBuilder b;
  ASSERT_TRUE(b.AppendValues({0.1, 1e6, 7.7, 20.3, 20.3, 20.3}).ok());
  auto values = b.Finish().ValueOrDie();
  auto out = ComputeWindows(c.Input(), {{AggregationFunction::kStddev, Duration::Hours(1),
                                         ValueType::Scalar(ScalarType::kFloat64), values}});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  const auto& stddev = static_cast<const arrow::DoubleArray&>(*(*out)[0]);
  EXPECT_NEAR(stddev.Value(0), 577348.0175, 0.001);
  EXPECT_EQ(stddev.Value(1), 0.0);
}

// The sweep against a brute-force rescan of every row's window on random data.
TEST(WindowKernel, SweepEqualsBruteForceOnRandomData) {
  const uint64_t seed = testing::TestSeed();
  SCOPED_TRACE(testing::SeedTrace(seed));
  std::mt19937_64 rng(seed);
  Case c;
  std::vector<std::optional<int64_t>> raw;
  std::vector<std::optional<bool>> flags;
  for (int64_t g = 0; g < 20; ++g) {
    int64_t t = 0;
    for (int i = 0, m = static_cast<int>(rng() % 40); i < m; ++i) {
      t += static_cast<int64_t>(rng() % 3) * kHour / 2;  // duplicates included
      c.event_group.push_back(g);
      c.event_time.push_back(t);
      raw.push_back(rng() % 7 == 0 ? std::nullopt : std::optional<int64_t>(rng() % 100 - 50));
      flags.push_back(rng() % 5 == 0 ? std::nullopt : std::optional<bool>(rng() % 2));
    }
    int64_t r = 0;
    for (int i = 0, k = static_cast<int>(rng() % 10); i < k; ++i) {
      r += static_cast<int64_t>(rng() % 4) * kHour / 3;
      c.row_group.push_back(g);
      c.row_time.push_back(r);
    }
  }
  auto values = Ints(raw);
  auto where = Bools(flags);
  const auto int64 = ValueType::Scalar(ScalarType::kInt64);
  const Duration window = Duration::Hours(3);
  std::vector<WindowSpec> specs = {{AggregationFunction::kCount, window, int64, nullptr, where},
                                   {AggregationFunction::kSum, window, int64, values, where},
                                   {AggregationFunction::kMin, window, int64, values, where},
                                   {AggregationFunction::kMax, window, int64, values},
                                   {AggregationFunction::kFirst, window, int64, values},
                                   {AggregationFunction::kLast, window, int64, values, where},
                                   {AggregationFunction::kCountDistinct, window, int64, values}};
  auto out = ComputeWindows(c.Input(), specs);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  for (size_t r = 0; r < c.row_time.size(); ++r) {
    const int64_t t = c.row_time[r];
    const int64_t start = WindowStart(t, window, Duration::Hours(1));
    int64_t count = 0, sum = 0, sum_n = 0;
    std::optional<int64_t> lo, hi, first, last;
    std::set<int64_t> distinct;
    for (size_t e = 0; e < c.event_time.size(); ++e) {
      if (c.event_group[e] != c.row_group[r] || c.event_time[e] < start || c.event_time[e] > t)
        continue;
      const bool pass = flags[e].value_or(false);
      if (pass) ++count;
      if (!raw[e]) continue;
      if (pass) {
        sum += *raw[e];
        ++sum_n;
        lo = std::min(lo.value_or(*raw[e]), *raw[e]);
        last = raw[e];
      }
      hi = std::max(hi.value_or(*raw[e]), *raw[e]);
      if (!first) first = raw[e];
      distinct.insert(*raw[e]);
    }
    auto at = [&](int k) { return IntValues(*(*out)[k])[r]; };
    EXPECT_EQ(at(0), count) << "row " << r;
    EXPECT_EQ(at(1), sum_n ? std::optional<int64_t>(sum) : std::nullopt) << "row " << r;
    EXPECT_EQ(at(2), lo) << "row " << r;
    EXPECT_EQ(at(3), hi) << "row " << r;
    EXPECT_EQ(at(4), first) << "row " << r;
    EXPECT_EQ(at(5), last) << "row " << r;
    EXPECT_EQ(at(6), static_cast<int64_t>(distinct.size())) << "row " << r;
  }
}

}  // namespace
}  // namespace granary::aggregation
