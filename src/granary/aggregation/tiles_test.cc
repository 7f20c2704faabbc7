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

std::string Fingerprint(const TileSpec& spec) {
  const uint32_t fp = spec.Fingerprint();
  return std::string(reinterpret_cast<const char*>(&fp), 4);
}

// Every coarse tile of the test's events (and far beyond).
constexpr RollupRange kEveryCoarseTile{-1000 * kHour, 1000 * kHour};

// Online tiles (built from the events in `chunks` pieces, each piece appended as its own
// records, as pushes do) read at each row time equal the kernel's values at that time. With
// `rollup_hours`, every piece also writes the roll-ups of its own records: a coarse tile that
// several pieces wrote has roll-ups that cover only part of its records, which reads must not
// use. `merge`: the pieces go through MergeTileBody (replace nothing, expire nothing), as a
// store writes them, instead of being appended.
void CheckAgainstKernel(uint64_t seed, int chunks, int rollup_hours = 0, bool merge = false) {
  std::mt19937_64 rng(seed);
  const int groups = 4;
  Events events = RandomEvents(rng, groups, 300);
  TileSpec spec = SpecOfEveryFunction();
  spec.rollup = Duration::Hours(rollup_hours);
  std::optional<RollupRange> rollups;
  if (rollup_hours > 0) rollups = kEveryCoarseTile;
  std::map<std::string, std::string> bodies;
  const int64_t n = static_cast<int64_t>(events.time.size());
  for (int c = 0; c < chunks; ++c) {
    Events part = events.Slice(n * c / chunks, n * (c + 1) / chunks);
    TileAccumulator acc(spec);
    ASSERT_TRUE(acc.Add(Keys(part.group), part.time.data(), part.Values(), part.Wheres()).ok());
    for (const auto& [key, tiles] : acc.entities()) {
      std::string& body = bodies[key];
      if (merge) {
        std::string records;
        EncodeTileRecords(spec, tiles, &records, rollups);
        body = MergeTileBody(body, spec.Fingerprint(), std::nullopt, -1000 * kHour, records);
        continue;
      }
      if (body.empty()) body = Fingerprint(spec);
      EncodeTileRecords(spec, tiles, &body, rollups);
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
          << "seed " << seed << " chunks " << chunks << " rollup " << rollup_hours << "h "
          << spec.items[k].name << " group " << row_group[r] << " at " << row_time[r] / kMinute
          << " min: tiles " << got[k].ToString() << ", kernel " << want->ToString();
    }
  }
}

TEST(Tiles, FoldEqualsTheKernelOnRandomEvents) {
  for (uint64_t seed = 1; seed <= 5; ++seed) CheckAgainstKernel(seed, 1);
}

TEST(Tiles, RecordsAppendedInPiecesFoldAsOne) {
  for (uint64_t seed = 11; seed <= 13; ++seed) CheckAgainstKernel(seed, 7);
}

// Roll-ups change no value: reads on and across every coarse/fine boundary (rows every 7
// minutes, windows of 1 to 8 hours over coarse tiles of 2, 3 and 4 hours) equal the kernel.
TEST(Tiles, FoldWithRollupsEqualsTheKernelOnRandomEvents) {
  for (int rollup : {2, 3, 4}) {
    for (uint64_t seed = 21; seed <= 24; ++seed) CheckAgainstKernel(seed, 1, rollup);
  }
}

// Pieces that write into the same coarse tile each add a roll-up of their own records only:
// the first piece's covers the records stored before it and is used, with the later pieces'
// records after it; the later pieces' roll-ups cover fewer records than are stored before them
// and are not used.
TEST(Tiles, RollupsOfPartOfACoarseTileAreUsedOnlyWithTheRecordsAfterThem) {
  for (uint64_t seed = 31; seed <= 33; ++seed) {
    CheckAgainstKernel(seed, 7, 2);
    CheckAgainstKernel(seed, 5, 4, /*merge=*/true);
  }
}

// Reads of a whole coarse tile take its roll-up and skip its fine records; reads of a coarse
// tile the window holds only in part take the fine records. Shown with a roll-up whose count is
// deliberately not the sum of its records'.
TEST(Tiles, AWholeCoarseTileIsReadFromItsRollup) {
  TileSpec spec;
  spec.granularity = Duration::Hours(1);
  spec.items.push_back({"n", AggregationFunction::kCount, Duration::Hours(3),
                        ValueType::Scalar(ScalarType::kInt64)});
  spec.longest_window = Duration::Hours(3);
  spec.rollup = Duration::Hours(2);
  std::vector<int64_t> times;
  for (int h = 0; h < 8; ++h) times.push_back(h * kHour + kMinute);  // one event per hour
  TileAccumulator acc(spec);
  ASSERT_TRUE(
      acc.Add(std::vector<std::string>(times.size(), "k"), times.data(), {nullptr}, {nullptr})
          .ok());
  std::string body = Fingerprint(spec);
  EncodeTileRecords(spec, acc.entities().at("k"), &body, RollupRange{0, 8 * kHour - 1});
  // The records: 8 fine ones of 20 + 8 bytes, then 4 roll-ups of 20 + 12 + 8 bytes. Make every
  // roll-up count 100 events instead of 2.
  size_t pos = 4 + 8 * 28;
  ASSERT_EQ(body.size(), pos + 4 * 40);
  for (int i = 0; i < 4; ++i, pos += 40) {
    const int64_t hundred = 100;
    std::memcpy(body.data() + pos + 32, &hundred, 8);
  }
  auto count_at = [&](int64_t now) {
    std::vector<Value> values;
    int64_t last = 0;
    bool matches = false;
    EXPECT_TRUE(FoldTiles(spec, body, now, &values, &last, &matches).ok());
    EXPECT_TRUE(matches);
    return values.at(0).get<int64_t>();
  };
  // At 4:30 the window starts at 1:00: the coarse tile [0, 2h) is partial (its fine record of
  // 1:00 counts), [2h, 4h) is whole (its roll-up), [4h, 6h) holds now (the fine record of 4:00).
  EXPECT_EQ(count_at(4 * kHour + 30 * kMinute), 1 + 100 + 1);
  // At 5:00 the window starts at 2:00: [2h, 4h) from its roll-up, and [4h, 6h) is whole too
  // (its last tile, 5:00, starts at or before now), though an event of 5:01 is later than now.
  EXPECT_EQ(count_at(5 * kHour), 100 + 100);
  // At 5:59 the same; at 6:00 the window starts at 3:00, [2h, 4h) is partial.
  EXPECT_EQ(count_at(6 * kHour), 1 + 100 + 1);
  // At 0:30 no coarse tile is whole yet: the fine record of 0:00 alone.
  EXPECT_EQ(count_at(30 * kMinute), 1);

  // A push into the rolled-up [2h, 4h) appends a fine record after the roll-ups: reads of the
  // whole coarse tile still take its roll-up, then the pushed record (not all its fine records).
  TileAccumulator pushed(spec);
  const int64_t push_time = 2 * kHour + 30 * kMinute;
  ASSERT_TRUE(pushed.Add({"k"}, &push_time, {nullptr}, {nullptr}).ok());
  std::string push_records;
  EncodeTileRecords(spec, pushed.entities().at("k"), &push_records);
  body = MergeTileBody(body, spec.Fingerprint(), std::nullopt, 0, push_records);
  EXPECT_EQ(count_at(4 * kHour + 30 * kMinute), 1 + (100 + 1) + 1);
  EXPECT_EQ(count_at(5 * kHour), (100 + 1) + 100);
  // Partial again at 6:00: [2h, 4h) from its fine records after 3:00, the push not among them.
  EXPECT_EQ(count_at(6 * kHour), 1 + 100 + 1);
}

// What materialization does: a first write with roll-ups, pushes of late events into rolled-up
// coarse tiles (merged after their roll-ups) and of events after the next run's end, then
// a run that re-reads every event up to its end, replaces the stored records up to there and
// writes new roll-ups. MergeTileBody drops a roll-up with any record it covers, so the body
// never counts an event twice, and reads equal the kernel over all the events.
TEST(Tiles, MaterializationReplacesRollupsWithTheirRecords) {
  std::mt19937_64 rng(41);
  Events events = RandomEvents(rng, 1, 200);
  TileSpec spec = SpecOfEveryFunction();
  spec.rollup = Duration::Hours(2);
  const uint32_t fp = spec.Fingerprint();
  const int64_t n = static_cast<int64_t>(events.time.size());
  auto records_of = [&](const std::vector<int64_t>& rows, std::optional<RollupRange> rollups) {
    std::vector<int64_t> times;
    for (int64_t i : rows) times.push_back(events.time[i]);
    auto take = [&](const std::shared_ptr<arrow::Array>& a) {
      std::unique_ptr<arrow::ArrayBuilder> b;
      EXPECT_TRUE(arrow::MakeBuilder(arrow::default_memory_pool(), a->type(), &b).ok());
      for (int64_t i : rows)
        EXPECT_TRUE(b->AppendArraySlice(arrow::ArraySpan(*a->data()), i, 1).ok());
      return b->Finish().ValueOrDie();
    };
    Events part;
    part.group.assign(rows.size(), 0);
    part.time = times;
    part.v = take(events.v);
    part.x = take(events.x);
    part.s = take(events.s);
    part.flag = take(events.flag);
    TileAccumulator acc(spec);
    EXPECT_TRUE(acc.Add(Keys(part.group), part.time.data(), part.Values(), part.Wheres()).ok());
    std::string records;
    if (!acc.entities().empty()) {
      EncodeTileRecords(spec, acc.entities().begin()->second, &records, rollups);
    }
    return records;
  };
  // Run 1 knows the events before 9:00 except every fifth (late); it ends at 9:00.
  const int64_t end1 = 9 * kHour - 1, end2 = 11 * kHour - 1;
  std::vector<int64_t> run1, late, after, run2;
  for (int64_t i = 0; i < n; ++i) {
    if (events.time[i] <= end1 && i % 5 != 0) run1.push_back(i);
    if (events.time[i] <= end1 && i % 5 == 0) late.push_back(i);
    if (events.time[i] > end2) after.push_back(i);
    if (events.time[i] <= end2) run2.push_back(i);
  }
  std::string body = MergeTileBody("", fp, end1, 0, records_of(run1, RollupRange{0, end1}));
  body = MergeTileBody(body, fp, std::nullopt, 0, records_of(late, std::nullopt));
  body = MergeTileBody(body, fp, std::nullopt, 0, records_of(after, std::nullopt));
  auto check = [&](const std::string& label, int64_t last_row) {
    WindowInput in;
    std::vector<int64_t> row_time, row_group;
    for (int64_t t = 0; t <= last_row; t += 11 * kMinute) {
      row_time.push_back(t);
      row_group.push_back(0);
    }
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
      specs.push_back({spec.items[k].function, spec.items[k].window, spec.items[k].output,
                       values[k], wheres[k]});
    }
    auto expected = ComputeWindows(in, specs);
    ASSERT_TRUE(expected.ok());
    for (int64_t r = 0; r < in.num_rows; ++r) {
      // Only instants no event follows within their tile (see CheckAgainstKernel).
      const int64_t tile_end = (row_time[r] / kHour + 1) * kHour;
      bool later_in_tile = false;
      for (int64_t t : events.time) later_in_tile |= t > row_time[r] && t < tile_end;
      if (later_in_tile) continue;
      std::vector<Value> got;
      int64_t last = 0;
      bool matches = false;
      ASSERT_TRUE(FoldTiles(spec, body, row_time[r], &got, &last, &matches).ok());
      for (size_t k = 0; k < spec.items.size(); ++k) {
        auto want = ValueAt(*(*expected)[k], r, spec.items[k].output);
        ASSERT_TRUE(want.ok());
        EXPECT_TRUE(Same(got[k], *want))
            << label << ": " << spec.items[k].name << " at " << row_time[r] / kMinute
            << " min: tiles " << got[k].ToString() << ", kernel " << want->ToString();
      }
    }
  };
  check("after run 1 and the pushes", end1);  // events of (end1, end2] are not online yet
  // Run 2 re-reads every event up to its end (the late ones included) and replaces the stored
  // records up to there; the events pushed after its end stay.
  body = MergeTileBody(body, fp, end2, 0, records_of(run2, RollupRange{0, end2}));
  check("after run 2", 14 * kHour);
}

// The records of events `rows` of `events` (one entity), as a materialization encodes them.
std::string RecordsOf(const TileSpec& spec, const Events& events, const std::vector<int64_t>& rows,
                      std::optional<RollupRange> rollups) {
  auto take = [&](const std::shared_ptr<arrow::Array>& a) {
    std::unique_ptr<arrow::ArrayBuilder> b;
    EXPECT_TRUE(arrow::MakeBuilder(arrow::default_memory_pool(), a->type(), &b).ok());
    for (int64_t i : rows) {
      EXPECT_TRUE(b->AppendArraySlice(arrow::ArraySpan(*a->data()), i, 1).ok());
    }
    return b->Finish().ValueOrDie();
  };
  Events part;
  part.group.assign(rows.size(), 0);
  for (int64_t i : rows) part.time.push_back(events.time[i]);
  part.v = take(events.v);
  part.x = take(events.x);
  part.s = take(events.s);
  part.flag = take(events.flag);
  TileAccumulator acc(spec);
  EXPECT_TRUE(acc.Add(Keys(part.group), part.time.data(), part.Values(), part.Wheres()).ok());
  std::string records;
  if (!acc.entities().empty()) {
    EncodeTileRecords(spec, acc.entities().begin()->second, &records, rollups);
  }
  return records;
}

// Reads of two bodies at every 7 minutes of [from, through]: `*equal` false at the first
// difference (floats within 1e-9 relative, everything else exactly).
void CompareReads(const TileSpec& spec, const std::string& a, const std::string& b, int64_t from,
                  int64_t through, const std::string& label, bool* equal) {
  *equal = true;
  for (int64_t t = from; t <= through; t += 7 * kMinute) {
    std::vector<Value> va, vb;
    int64_t last_a = 0, last_b = 0;
    bool ma = false, mb = false;
    ASSERT_TRUE(FoldTiles(spec, a, t, &va, &last_a, &ma).ok());
    ASSERT_TRUE(FoldTiles(spec, b, t, &vb, &last_b, &mb).ok());
    ASSERT_TRUE(ma && mb);
    for (size_t k = 0; k < spec.items.size(); ++k) {
      if (!Same(va[k], vb[k])) {
        *equal = false;
        ADD_FAILURE() << label << ": " << spec.items[k].name << " at " << t / kMinute
                      << " min: " << va[k].ToString() << " vs " << vb[k].ToString();
        return;
      }
    }
  }
}

// Incremental materialization (docs/ONLINE_LAYOUT.md, "Incremental runs"): after a run up to
// W, the next reads only the events from IncrementalTileStart(W) (the coarse tile holding
// W + 1 us) and replaces only the records from there; reads then equal those of a run that
// re-read everything: with late events that reached the source inside that coarse tile after
// the run that covered them, pushes (online and offline) between the runs and after the second
// run's end, and coarse tiles rolled up by the first run. Two incremental runs in a row too.
// A late event before that coarse tile is the case an incremental run cannot see: only a full
// run counts it.
TEST(Tiles, IncrementalRunsEqualAFullRecompute) {
  for (uint64_t seed : {7, 8, 9}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    Events events = RandomEvents(rng, 1, 240);
    TileSpec spec = SpecOfEveryFunction();
    spec.rollup = Duration::Hours(2);
    const uint32_t fp = spec.Fingerprint();
    const int64_t n = static_cast<int64_t>(events.time.size());
    const int64_t end1 = 7 * kHour - 1, end2 = 9 * kHour + 30 * kMinute, end3 = 11 * kHour;
    const int64_t from2 = IncrementalTileStart(spec, end1);
    const int64_t from3 = IncrementalTileStart(spec, end2);
    ASSERT_EQ(from2, 6 * kHour);  // the coarse tile [6h, 8h) holds end1 + 1 us = 7h
    ASSERT_EQ(from3, 8 * kHour);
    // What the source holds at each run: run 1 misses the late events of [from2, end1] (every
    // fourth); runs 2 and 3 have them. Pushes of (end1, end2] went online at once (and to the
    // source); so did those after end3, which no run reads.
    std::vector<int64_t> run1, pushed, after, upto2, upto3, incr2, incr3;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t t = events.time[i];
      const bool late = t >= from2 && t <= end1 && i % 4 == 0;
      if (t <= end1 && !late) run1.push_back(i);
      if (t > end1 && t <= end2 && i % 3 == 0) pushed.push_back(i);
      if (t > end3) after.push_back(i);
      if (t <= end2) upto2.push_back(i);
      if (t <= end3) upto3.push_back(i);
      if (t >= from2 && t <= end2) incr2.push_back(i);
      if (t >= from3 && t <= end3) incr3.push_back(i);
    }
    std::string body =
        MergeTileBody("", fp, end1, 0, RecordsOf(spec, events, run1, RollupRange{0, end1}));
    body = MergeTileBody(body, fp, std::nullopt, 0, RecordsOf(spec, events, pushed, std::nullopt));
    body = MergeTileBody(body, fp, std::nullopt, 0, RecordsOf(spec, events, after, std::nullopt));
    // Run 2, incremental and full.
    std::string incremental = MergeTileBody(
        body, fp, end2, 0, RecordsOf(spec, events, incr2, RollupRange{from2, end2}), from2);
    std::string full =
        MergeTileBody(body, fp, end2, 0, RecordsOf(spec, events, upto2, RollupRange{0, end2}));
    bool equal = false;
    CompareReads(spec, incremental, full, 0, 14 * kHour, "run 2", &equal);
    EXPECT_TRUE(equal);
    EXPECT_LT(incr2.size(), upto2.size());  // it read less
    // Run 3, incremental after incremental, and full.
    incremental = MergeTileBody(incremental, fp, end3, 0,
                                RecordsOf(spec, events, incr3, RollupRange{from3, end3}), from3);
    full = MergeTileBody(full, fp, end3, 0, RecordsOf(spec, events, upto3, RollupRange{0, end3}));
    CompareReads(spec, incremental, full, 0, 14 * kHour, "run 3", &equal);
    EXPECT_TRUE(equal);

    // A late event before from2 (the earliest event, which run 1 did not have): the incremental
    // run does not read it, a full run does.
    if (events.time[0] >= from2) continue;
    std::vector<int64_t> run1_without;  // the earliest event arrives only after run 1
    for (int64_t i : run1) {
      if (i != 0) run1_without.push_back(i);
    }
    std::string base =
        MergeTileBody("", fp, end1, 0, RecordsOf(spec, events, run1_without, RollupRange{0, end1}));
    std::vector<int64_t> incr_only, all2;
    for (int64_t i = 0; i < n; ++i) {
      if (events.time[i] >= from2 && events.time[i] <= end2) incr_only.push_back(i);
      if (events.time[i] <= end2) all2.push_back(i);
    }
    const std::string missed = MergeTileBody(
        base, fp, end2, 0, RecordsOf(spec, events, incr_only, RollupRange{from2, end2}), from2);
    const std::string counted =
        MergeTileBody(base, fp, end2, 0, RecordsOf(spec, events, all2, RollupRange{0, end2}));
    std::vector<Value> a, b;
    int64_t last = 0;
    bool matches = false;
    const int64_t t = events.time[0] + kHour;  // a read whose windows hold the event
    ASSERT_TRUE(FoldTiles(spec, missed, t, &a, &last, &matches).ok());
    ASSERT_TRUE(FoldTiles(spec, counted, t, &b, &last, &matches).ok());
    EXPECT_EQ(a[0].get<int64_t>() + 1, b[0].get<int64_t>())
        << "count_all at " << t / kMinute << " min";
  }
}

TEST(Tiles, RollupSpanBoundsTheRecordsARead) {
  EXPECT_EQ(RollupSpan(Duration::Hours(1), Duration::Days(30)).micros, Duration::Days(1).micros);
  EXPECT_EQ(RollupSpan(Duration::Hours(1), Duration::Days(90)).micros, Duration::Days(1).micros);
  EXPECT_EQ(RollupSpan(Duration::Minutes(1), Duration::Hours(1)).micros,
            Duration::Minutes(15).micros);
  EXPECT_EQ(RollupSpan(Duration::Days(1), Duration::Days(730)).micros, Duration::Days(7).micros);
  EXPECT_EQ(RollupSpan(Duration::Minutes(1), Duration::Minutes(15)).micros, 0);
  EXPECT_EQ(RollupSpan(Duration::Hours(1), Duration::Hours(3)).micros, 0);
  EXPECT_EQ(RollupSpan(Duration::Hours(1), Duration::Days(2)).micros, Duration::Hours(6).micros);
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
