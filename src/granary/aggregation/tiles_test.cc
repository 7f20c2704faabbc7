#include "granary/aggregation/tiles.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <random>

#include "granary/aggregation/window_kernel.h"
#include "granary/types/arrow_convert.h"

namespace granary::aggregation {
namespace {

constexpr int64_t kHour = 3'600'000'000;
constexpr int64_t kMinute = 60'000'000;

ValueType Scalar(ScalarType s) { return ValueType::Scalar(s); }

// Every function over an int64 column `v`, a float64 column `x` and a string column `s`, some
// with a where column.
TileSpec SpecOfEveryFunction() {
  TileSpec spec;
  spec.granularity = Duration::Hours(1);
  auto add = [&](const char* name, AggregationFunction f, int hours, ScalarType out) {
    spec.items.push_back({name, f, Duration::Hours(hours), Scalar(out)});
  };
  add("count_all", AggregationFunction::kCount, 3, ScalarType::kInt64);
  add("count_where", AggregationFunction::kCount, 5, ScalarType::kInt64);
  add("sum_v", AggregationFunction::kSum, 4, ScalarType::kInt64);
  add("sum_x", AggregationFunction::kSum, 2, ScalarType::kFloat64);
  add("mean_x", AggregationFunction::kMean, 6, ScalarType::kFloat64);
  add("stddev_x", AggregationFunction::kStddev, 6, ScalarType::kFloat64);
  add("min_v", AggregationFunction::kMin, 3, ScalarType::kInt64);
  add("max_s", AggregationFunction::kMax, 3, ScalarType::kString);
  add("first_s", AggregationFunction::kFirst, 8, ScalarType::kString);
  add("last_v", AggregationFunction::kLast, 1, ScalarType::kInt64);
  add("distinct_s", AggregationFunction::kCountDistinct, 8, ScalarType::kInt64);
  spec.longest_window = Duration::Hours(8);
  return spec;
}

struct Events {
  std::vector<int64_t> group, time;
  std::shared_ptr<arrow::Array> v, x, s, flag;

  std::vector<std::shared_ptr<arrow::Array>> Values() const {
    return {nullptr, nullptr, v, x, x, x, v, s, s, v, s};
  }
  std::vector<std::shared_ptr<arrow::Array>> Wheres() const {
    return {nullptr, flag, nullptr, flag, nullptr, nullptr, flag, nullptr, nullptr, nullptr, flag};
  }
  Events Slice(int64_t begin, int64_t end) const {
    Events e;
    e.group.assign(group.begin() + begin, group.begin() + end);
    e.time.assign(time.begin() + begin, time.begin() + end);
    e.v = v->Slice(begin, end - begin);
    e.x = x->Slice(begin, end - begin);
    e.s = s->Slice(begin, end - begin);
    e.flag = flag->Slice(begin, end - begin);
    return e;
  }
};

// Random events of `groups` keys over 12 hours, sorted by (group, time), with nulls, duplicate
// times and events exactly on tile edges.
Events RandomEvents(std::mt19937_64& rng, int groups, int n) {
  std::vector<std::pair<int64_t, int64_t>> gt;
  for (int i = 0; i < n; ++i) {
    int64_t t = static_cast<int64_t>(rng() % 12) * kHour;
    if (rng() % 3 != 0) t += static_cast<int64_t>(rng() % 60) * kMinute;
    gt.push_back({static_cast<int64_t>(rng() % groups), t});
  }
  std::stable_sort(gt.begin(), gt.end());
  Events e;
  arrow::Int64Builder vb;
  arrow::DoubleBuilder xb;
  arrow::StringBuilder sb;
  arrow::BooleanBuilder fb;
  for (auto [g, t] : gt) {
    e.group.push_back(g);
    e.time.push_back(t);
    rng() % 7 == 0 ? (void)vb.AppendNull() : (void)vb.Append(static_cast<int64_t>(rng() % 9) - 4);
    rng() % 7 == 0 ? (void)xb.AppendNull() : (void)xb.Append(static_cast<double>(rng() % 1000) / 7);
    rng() % 7 == 0 ? (void)sb.AppendNull() : (void)sb.Append(std::string(1, 'a' + rng() % 5));
    rng() % 5 == 0 ? (void)fb.AppendNull() : (void)fb.Append(rng() % 2 == 0);
  }
  e.v = vb.Finish().ValueOrDie();
  e.x = xb.Finish().ValueOrDie();
  e.s = sb.Finish().ValueOrDie();
  e.flag = fb.Finish().ValueOrDie();
  return e;
}

std::vector<std::string> Keys(const std::vector<int64_t>& group) {
  std::vector<std::string> keys;
  for (int64_t g : group) keys.push_back("k" + std::to_string(g));
  return keys;
}

bool Same(const Value& a, const Value& b) {
  if (a.is<double>() && b.is<double>()) {
    const double x = a.get<double>(), y = b.get<double>();
    return std::fabs(x - y) <= 1e-9 * std::max(1.0, std::fabs(y));
  }
  return a == b;
}

// Online tiles (built from the events in `chunks` pieces, each piece appended as its own
// records, as pushes do) read at each row time equal the kernel's values at that time.
void CheckAgainstKernel(uint64_t seed, int chunks) {
  std::mt19937_64 rng(seed);
  const int groups = 4;
  Events events = RandomEvents(rng, groups, 300);
  TileSpec spec = SpecOfEveryFunction();
  std::map<std::string, std::string> bodies;
  const int64_t n = static_cast<int64_t>(events.time.size());
  for (int c = 0; c < chunks; ++c) {
    Events part = events.Slice(n * c / chunks, n * (c + 1) / chunks);
    TileAccumulator acc(spec);
    ASSERT_TRUE(acc.Add(Keys(part.group), part.time.data(), part.Values(), part.Wheres()).ok());
    for (const auto& [key, tiles] : acc.entities()) {
      std::string& body = bodies[key];
      if (body.empty()) {
        const uint32_t fp = spec.Fingerprint();
        body.append(reinterpret_cast<const char*>(&fp), 4);
      }
      EncodeTileRecords(spec, tiles, &body);
    }
  }
  // Rows: every group at times on and off tile edges, up to 14 hours.
  std::vector<int64_t> row_group, row_time;
  for (int g = 0; g < groups; ++g) {
    for (int64_t t = 0; t <= 14 * kHour; t += 7 * kMinute) {
      row_group.push_back(g);
      row_time.push_back(t);
    }
  }
  WindowInput in;
  in.event_group = events.group.data();
  in.event_time = events.time.data();
  in.num_events = n;
  in.row_group = row_group.data();
  in.row_time = row_time.data();
  in.num_rows = static_cast<int64_t>(row_time.size());
  in.granularity = spec.granularity;
  std::vector<WindowSpec> specs;
  auto values = events.Values();
  auto wheres = events.Wheres();
  for (size_t k = 0; k < spec.items.size(); ++k) {
    specs.push_back(
        {spec.items[k].function, spec.items[k].window, spec.items[k].output, values[k], wheres[k]});
  }
  auto expected = ComputeWindows(in, specs);
  ASSERT_TRUE(expected.ok()) << expected.status().ToString();
  for (int64_t r = 0; r < in.num_rows; ++r) {
    const std::string key = "k" + std::to_string(row_group[r]);
    std::vector<Value> got;
    int64_t last = 0;
    bool matches = false;
    // Events later than the row's time exist in the head tile only when the row is in the
    // middle of the events; the rule is exact for reads after them, so compare there and at
    // times no event follows within the row's tile.
    auto it = bodies.find(key);
    ASSERT_NE(it, bodies.end());
    ASSERT_TRUE(FoldTiles(spec, it->second, row_time[r], &got, &last, &matches).ok());
    ASSERT_TRUE(matches);
    const int64_t tile_end = (row_time[r] / kHour + 1) * kHour;
    bool later_in_tile = false;
    for (int64_t e = 0; e < n; ++e) {
      if (events.group[e] == row_group[r] && events.time[e] > row_time[r] &&
          events.time[e] < tile_end) {
        later_in_tile = true;
      }
    }
    if (later_in_tile) continue;
    for (size_t k = 0; k < spec.items.size(); ++k) {
      auto want = ValueAt(*(*expected)[k], r, spec.items[k].output);
      ASSERT_TRUE(want.ok());
      EXPECT_TRUE(Same(got[k], *want))
          << "seed " << seed << " chunks " << chunks << " " << spec.items[k].name << " group "
          << row_group[r] << " at " << row_time[r] / kMinute << " min: tiles " << got[k].ToString()
          << ", kernel " << want->ToString();
    }
  }
}

TEST(Tiles, FoldEqualsTheKernelOnRandomEvents) {
  for (uint64_t seed = 1; seed <= 5; ++seed) CheckAgainstKernel(seed, 1);
}

TEST(Tiles, RecordsAppendedInPiecesFoldAsOne) {
  for (uint64_t seed = 11; seed <= 13; ++seed) CheckAgainstKernel(seed, 7);
}

TEST(Tiles, AnotherFingerprintDoesNotMatchAndTruncationIsCorruption) {
  TileSpec spec = SpecOfEveryFunction();
  TileSpec other = spec;
  other.granularity = Duration::Minutes(30);
  EXPECT_NE(spec.Fingerprint(), other.Fingerprint());
  std::string body(4, '\0');
  const uint32_t fp = other.Fingerprint();
  std::memcpy(body.data(), &fp, 4);
  std::vector<Value> values;
  int64_t last = 0;
  bool matches = true;
  ASSERT_TRUE(FoldTiles(spec, body, kHour, &values, &last, &matches).ok());
  EXPECT_FALSE(matches);
  const uint32_t mine = spec.Fingerprint();
  std::memcpy(body.data(), &mine, 4);
  body += "12345";
  EXPECT_EQ(FoldTiles(spec, body, kHour, &values, &last, &matches).code(), StatusCode::kCorruption);
}

TEST(Tiles, AnEmptyWindowGivesCountZeroAndNulls) {
  TileSpec spec = SpecOfEveryFunction();
  Events e = RandomEvents(*std::make_unique<std::mt19937_64>(3), 1, 5);
  TileAccumulator acc(spec);
  ASSERT_TRUE(acc.Add(Keys(e.group), e.time.data(), e.Values(), e.Wheres()).ok());
  std::string body(4, '\0');
  const uint32_t fp = spec.Fingerprint();
  std::memcpy(body.data(), &fp, 4);
  EncodeTileRecords(spec, acc.entities().begin()->second, &body);
  std::vector<Value> values;
  int64_t last = 0;
  bool matches = false;
  // A week later every window is empty.
  ASSERT_TRUE(FoldTiles(spec, body, 24 * 7 * kHour, &values, &last, &matches).ok());
  EXPECT_EQ(values[0], Value(int64_t{0}));
  EXPECT_EQ(values[10], Value(int64_t{0}));
  for (size_t k = 2; k < 10; ++k) EXPECT_TRUE(values[k].is_null()) << spec.items[k].name;
  EXPECT_GT(last, 0);
}

}  // namespace
}  // namespace granary::aggregation
