// ComputeFeatureStatsFromFiles against a brute-force summary of the same random rows (seed
// printed), plus the edge cases: nulls, NaN, one distinct value, strings, the time range, the
// newest entities.
#include "granary/offline/feature_stats.h"

#include <arrow/api.h>
#include <arrow/io/api.h>
#include <gtest/gtest.h>
#include <parquet/arrow/writer.h>

#include <cmath>
#include <map>
#include <random>
#include <set>

#include "granary/common/temp_dir.h"
#include "granary/registry/loader.h"
#include "granary/testing/test_seed.h"

namespace granary {
namespace {

Definitions Load(const std::string& yaml) {
  Diagnostics diag;
  Definitions defs;
  LoadDefinitionsText("defs.yaml", yaml, &defs, &diag);
  EXPECT_FALSE(diag.has_errors()) << diag.ToStatus().ToString();
  return defs;
}

const char* kDefs =
    "entities:\n  - {name: bay, join_keys: [bay_id], value_type: int64}\n"
    "data_sources:\n  - {name: src, path: data, timestamp_field: ts}\n"
    "feature_views:\n  - name: occupancy\n    entities: [bay]\n    source: src\n"
    "    ttl: 1d\n    schema:\n      - {name: rate, type: float64}\n"
    "      - {name: cars, type: int64}\n      - {name: zone, type: string}\n"
    "      - {name: open, type: bool}\n";

struct Row {
  int64_t bay;
  int64_t ts_seconds;
  std::optional<double> rate;
  std::optional<int64_t> cars;
  std::optional<std::string> zone;
  std::optional<bool> open;
};

void WriteRows(const std::filesystem::path& path, const std::vector<Row>& rows) {
  arrow::Int64Builder bay, cars;
  arrow::TimestampBuilder ts(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                             arrow::default_memory_pool());
  arrow::DoubleBuilder rate;
  arrow::StringBuilder zone;
  arrow::BooleanBuilder open;
  for (const Row& r : rows) {
    (void)bay.Append(r.bay);
    (void)ts.Append(r.ts_seconds * 1'000'000);
    (void)(r.rate ? rate.Append(*r.rate) : rate.AppendNull());
    (void)(r.cars ? cars.Append(*r.cars) : cars.AppendNull());
    (void)(r.zone ? zone.Append(*r.zone) : zone.AppendNull());
    (void)(r.open ? open.Append(*r.open) : open.AppendNull());
  }
  auto table = arrow::Table::Make(
      arrow::schema({arrow::field("bay_id", arrow::int64()),
                     arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
                     arrow::field("rate", arrow::float64()), arrow::field("cars", arrow::int64()),
                     arrow::field("zone", arrow::utf8()), arrow::field("open", arrow::boolean())}),
      {bay.Finish().ValueOrDie(), ts.Finish().ValueOrDie(), rate.Finish().ValueOrDie(),
       cars.Finish().ValueOrDie(), zone.Finish().ValueOrDie(), open.Finish().ValueOrDie()});
  std::filesystem::create_directories(path.parent_path());
  auto out = arrow::io::FileOutputStream::Open(path.string()).ValueOrDie();
  ASSERT_TRUE(parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), out, 1000).ok());
  ASSERT_TRUE(out->Close().ok());
}

const FeatureStats& Feature(const FeatureStatsReport& r, const std::string& name) {
  for (const FeatureStats& f : r.features) {
    if (f.name == name) return f;
  }
  ADD_FAILURE() << "no feature " << name;
  return r.features.front();
}

TEST(FeatureStats, MatchesABruteForceSummaryOfRandomRows) {
  const uint64_t seed = testing::TestSeed();
  SCOPED_TRACE(testing::SeedTrace(seed));
  std::mt19937_64 rng(seed);
  std::vector<Row> rows;
  const char* zones[] = {"north", "south", "east", "west", "centre"};
  for (int i = 0; i < 5000; ++i) {
    Row r{static_cast<int64_t>(rng() % 300), 1'700'000'000 + static_cast<int64_t>(rng() % 864000)};
    if (rng() % 10 != 0) r.rate = std::uniform_real_distribution<double>(-5, 95)(rng);
    if (rng() % 7 != 0) r.cars = static_cast<int64_t>(rng() % 1000);
    if (rng() % 5 != 0) r.zone = zones[rng() % 5];
    if (rng() % 3 != 0) r.open = rng() % 4 == 0;
    rows.push_back(r);
  }
  auto dir = TempDir::Make("granary-stats-").ValueOrDie();
  WriteRows(dir.path() / "data/part-0.parquet",
            std::vector<Row>(rows.begin(), rows.begin() + 2000));
  WriteRows(dir.path() / "data/part-1.parquet", std::vector<Row>(rows.begin() + 2000, rows.end()));
  Definitions defs = Load(kDefs);
  // A range that cuts the rows: brute force over the same range.
  FeatureStatsOptions options;
  options.start = Timestamp::FromSeconds(1'700'100'000);
  options.end = Timestamp::FromSeconds(1'700'700'000);
  options.histogram_bins = 10;
  auto report = ComputeFeatureStatsFromFiles(dir.path(), defs, defs.feature_views[0], options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();

  int64_t n = 0, rate_nulls = 0, cars_nulls = 0;
  double rate_min = 1e300, rate_max = -1e300, rate_sum = 0;
  int64_t cars_min = INT64_MAX, cars_max = INT64_MIN;
  std::set<int64_t> cars_distinct;
  std::map<std::string, int64_t> zone_counts;
  int64_t open_true = 0, open_values = 0;
  for (const Row& r : rows) {
    if (r.ts_seconds < 1'700'100'000 || r.ts_seconds > 1'700'700'000) continue;
    ++n;
    if (r.rate) {
      rate_min = std::min(rate_min, *r.rate);
      rate_max = std::max(rate_max, *r.rate);
      rate_sum += *r.rate;
    } else {
      ++rate_nulls;
    }
    if (r.cars) {
      cars_min = std::min(cars_min, *r.cars);
      cars_max = std::max(cars_max, *r.cars);
      cars_distinct.insert(*r.cars);
    } else {
      ++cars_nulls;
    }
    if (r.zone) ++zone_counts[*r.zone];
    if (r.open) {
      ++open_values;
      open_true += *r.open ? 1 : 0;
    }
  }
  EXPECT_EQ(report->rows, n);
  const FeatureStats& rate = Feature(*report, "rate");
  EXPECT_EQ(rate.count, n);
  EXPECT_EQ(rate.nulls, rate_nulls);
  EXPECT_DOUBLE_EQ(*rate.min, rate_min);
  EXPECT_DOUBLE_EQ(*rate.max, rate_max);
  EXPECT_NEAR(*rate.mean, rate_sum / (n - rate_nulls), 1e-9);
  ASSERT_EQ(rate.histogram.size(), 10u);
  int64_t binned = 0;
  for (const HistogramBin& b : rate.histogram) binned += b.count;
  EXPECT_EQ(binned, n - rate_nulls);
  EXPECT_DOUBLE_EQ(rate.histogram.front().low, rate_min);
  EXPECT_DOUBLE_EQ(rate.histogram.back().high, rate_max);

  const FeatureStats& cars = Feature(*report, "cars");
  EXPECT_EQ(cars.nulls, cars_nulls);
  EXPECT_EQ(*cars.min, static_cast<double>(cars_min));
  EXPECT_EQ(*cars.max, static_cast<double>(cars_max));
  const double distinct = static_cast<double>(cars_distinct.size());
  EXPECT_NEAR(static_cast<double>(cars.distinct_estimate), distinct, distinct * 0.05);

  const FeatureStats& zone = Feature(*report, "zone");
  EXPECT_EQ(zone.distinct_estimate, 5);
  ASSERT_EQ(zone.top_values.size(), 5u);
  for (const ValueCount& v : zone.top_values) EXPECT_EQ(v.count, zone_counts[v.value]) << v.value;
  EXPECT_GE(zone.top_values[0].count, zone.top_values[1].count);
  EXPECT_EQ(zone.min_text, "centre");
  EXPECT_EQ(zone.max_text, "west");
  EXPECT_TRUE(zone.histogram.empty());

  const FeatureStats& open = Feature(*report, "open");
  EXPECT_NEAR(*open.mean, static_cast<double>(open_true) / open_values, 1e-12);
  EXPECT_EQ(open.count - open.nulls, open_values);
}

TEST(FeatureStats, NanIsCountedApartAndOneValueMakesOneBin) {
  auto dir = TempDir::Make("granary-stats-").ValueOrDie();
  std::vector<Row> rows = {{1, 100, 2.5, 7, "a", true},
                           {2, 200, std::nan(""), 7, "a", true},
                           {3, 300, 2.5, std::nullopt, std::nullopt, std::nullopt}};
  WriteRows(dir.path() / "data/x.parquet", rows);
  Definitions defs = Load(kDefs);
  auto report = ComputeFeatureStatsFromFiles(dir.path(), defs, defs.feature_views[0], {});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  const FeatureStats& rate = Feature(*report, "rate");
  EXPECT_EQ(rate.nan, 1);
  EXPECT_EQ(rate.nulls, 0);
  EXPECT_EQ(*rate.mean, 2.5);
  ASSERT_EQ(rate.histogram.size(), 1u);
  EXPECT_EQ(rate.histogram[0].count, 2);
  EXPECT_EQ(rate.distinct_estimate, 1);
  const FeatureStats& cars = Feature(*report, "cars");
  EXPECT_EQ(cars.nulls, 1);
  EXPECT_NEAR(cars.null_rate(), 1.0 / 3, 1e-12);
  EXPECT_EQ(report->first_event, Timestamp::FromSeconds(100));
  EXPECT_EQ(report->last_event, Timestamp::FromSeconds(300));
}

TEST(FeatureStats, SampleKeysAreTheDistinctEntitiesWithTheNewestRows) {
  auto dir = TempDir::Make("granary-stats-").ValueOrDie();
  std::vector<Row> rows;
  // Bay 9's newest row is the newest of all; bay 4 has many old rows and one recent one.
  for (int i = 0; i < 50; ++i) rows.push_back({4, 100 + i, 1.0, 1, "a", true});
  rows.push_back({9, 1000, 1.0, 1, "a", true});
  rows.push_back({4, 900, 1.0, 1, "a", true});
  rows.push_back({7, 800, 1.0, 1, "a", true});
  rows.push_back({9, 10, 1.0, 1, "a", true});
  rows.push_back({1, 5, 1.0, 1, "a", true});
  WriteRows(dir.path() / "data/x.parquet", rows);
  Definitions defs = Load(kDefs);
  FeatureStatsOptions options;
  options.sample_entities = 3;
  options.features = {"cars"};
  auto report = ComputeFeatureStatsFromFiles(dir.path(), defs, defs.feature_views[0], options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->features.size(), 1u);
  EXPECT_EQ(report->join_keys, std::vector<std::string>{"bay_id"});
  std::vector<std::vector<std::string>> want = {{"9"}, {"4"}, {"7"}};
  EXPECT_EQ(report->sample_keys, want);
}

TEST(FeatureStats, BadOptionsSayWhatToFix) {
  auto dir = TempDir::Make("granary-stats-").ValueOrDie();
  WriteRows(dir.path() / "data/x.parquet", {{1, 100, 1.0, 1, "a", true}});
  Definitions defs = Load(kDefs);
  FeatureStatsOptions options;
  options.features = {"rat"};
  auto r = ComputeFeatureStatsFromFiles(dir.path(), defs, defs.feature_views[0], options);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("has no feature 'rat'"), std::string::npos);
  EXPECT_NE(r.status().message().find("rate"), std::string::npos);
  options = {};
  options.start = Timestamp::FromSeconds(10);
  options.end = Timestamp::FromSeconds(5);
  r = ComputeFeatureStatsFromFiles(dir.path(), defs, defs.feature_views[0], options);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("is after the end"), std::string::npos);
  options = {};
  options.histogram_bins = 0;
  EXPECT_FALSE(ComputeFeatureStatsFromFiles(dir.path(), defs, defs.feature_views[0], options).ok());
}

TEST(DistinctSketch, EstimatesWithinAFewPercent) {
  for (int64_t n : {0, 1, 10, 1000, 50'000, 500'000}) {
    DistinctSketch sketch;
    for (int64_t i = 0; i < n; ++i) {
      sketch.AddHash(HashForSketch(&i, sizeof(i)));
      sketch.AddHash(HashForSketch(&i, sizeof(i)));  // duplicates change nothing
    }
    const double tolerance = std::max(1.0, 0.05 * static_cast<double>(n));
    EXPECT_NEAR(static_cast<double>(sketch.Estimate()), static_cast<double>(n), tolerance) << n;
  }
}

}  // namespace
}  // namespace granary
