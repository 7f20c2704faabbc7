// Window-aggregation tiles in every online store (RocksDB, Redis standalone, Redis Cluster):
// tiles age out at read time, pushes add to materialized tiles, and roll-ups keep every record
// through each store's own write path (the Redis script, RocksDB's merge).
#include <arrow/api.h>
#include <gtest/gtest.h>

#include <optional>
#include <tuple>

#include "granary/aggregation/tiles.h"
#include "granary/online/online_store.h"
#include "granary/testing/online_store_test_base.h"

namespace granary {
namespace {

using testing::MakeRows;
using testing::MakeViewRead;
using testing::Row;
const Timestamp kT0 = testing::kOnlineT0;

// The same fixture under its own name, instantiated here (online_store_test.cc instantiates
// OnlineStoreTest's).
class OnlineStoreTileTest : public testing::OnlineStoreTest {};

// A view of window aggregations over `payments` events (customer_id, amount, failed).
std::shared_ptr<const ViewLayout> PaymentTiles(const Definitions& base) {
  Definitions defs = base;
  FeatureView v;
  v.name = "payments_agg";
  v.entities = {"customer"};
  v.source = "payments";
  v.granularity = Duration::Hours(1);
  auto agg = [](const char* name, AggregationFunction f, const char* column, const char* where,
                Duration window, ScalarType type) {
    Aggregation a;
    a.name = name;
    a.function = f;
    a.column = column;
    a.where = where;
    a.window = window;
    a.type = ValueType::Scalar(type);
    return a;
  };
  v.aggregations = {agg("failures_2h", AggregationFunction::kCount, "", "failed",
                        Duration::Hours(2), ScalarType::kInt64),
                    agg("spend_3h", AggregationFunction::kSum, "amount", "", Duration::Hours(3),
                        ScalarType::kFloat64),
                    agg("last_amount_3h", AggregationFunction::kLast, "amount", "",
                        Duration::Hours(3), ScalarType::kFloat64)};
  defs.feature_views.push_back(v);
  auto layouts = MakeViewLayouts(defs, Duration::Days(90)).ValueOrDie();
  return layouts.at("payments_agg");
}

// Tile records of events (customer, time, amount, failed) for `spec`, one string per entity.
void EventTiles(const aggregation::TileSpec& spec,
                const std::vector<std::tuple<int64_t, Timestamp, double, bool>>& events,
                EntityKeyColumn* keys, std::vector<std::string>* records,
                std::optional<aggregation::RollupRange> rollups = std::nullopt) {
  std::vector<std::string> event_keys;
  std::vector<int64_t> times;
  arrow::DoubleBuilder amounts;
  arrow::BooleanBuilder failed;
  for (const auto& [customer, t, amount, f] : events) {
    std::string k;
    entity_key::AppendInteger(&k, customer);
    event_keys.push_back(k);
    times.push_back(t.micros);
    (void)amounts.Append(amount);
    (void)failed.Append(f);
  }
  std::shared_ptr<arrow::Array> a = amounts.Finish().ValueOrDie(), w = failed.Finish().ValueOrDie();
  aggregation::TileAccumulator acc(spec);
  ASSERT_TRUE(acc.Add(event_keys, times.data(), {nullptr, a, a}, {w, nullptr, nullptr}).ok());
  for (const auto& [key, tiles] : acc.entities()) {
    keys->buffer()->append(key);
    keys->FinishKey();
    records->emplace_back();
    aggregation::EncodeTileRecords(spec, tiles, &records->back(), rollups);
  }
}

TEST_P(OnlineStoreTileTest, TilesAgeOutAtReadTimeAndPushesAddToMaterializedTiles) {
  auto tiles = PaymentTiles(defs_)->tile_layout();
  ASSERT_NE(tiles, nullptr);
  const aggregation::TileSpec& spec = *tiles->tiles();
  const Timestamp hour = Timestamp::FromMicros(kT0.micros / 3'600'000'000 * 3'600'000'000);
  // Materialized: customer 1 failed at hour - 90 min and paid at hour - 30 min.
  EntityKeyColumn keys;
  std::vector<std::string> records;
  EventTiles(spec,
             {{1, hour - Duration::Minutes(90), 10.0, true},
              {1, hour - Duration::Minutes(30), 5.0, false},
              {2, hour - Duration::Minutes(10), 7.0, true}},
             &keys, &records);
  clock_.Set(hour);
  TileWriteOptions replace{hour, Timestamp::FromMicros(spec.ExpireBefore(hour.micros))};
  auto written = store_->WriteTiles(*tiles, keys, records, replace);
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_EQ(*written, 2);

  auto read = [&](Timestamp now, int64_t customer) {
    clock_.Set(now);
    return ReadOne("payments_agg#tiles", {{Value(customer)}});
  };
  layouts_.emplace("payments_agg#tiles", tiles);
  OnlineFeatures got = read(hour, 1);
  ASSERT_EQ(got.status(0, 0, 0), FeatureStatus::kPresent);
  EXPECT_EQ(got.value(0, 0, 0).AsInt64(), 1);
  EXPECT_EQ(got.value(0, 1, 0).AsFloat64(), 15.0);
  EXPECT_EQ(got.value(0, 2, 0).AsFloat64(), 5.0);
  EXPECT_EQ(got.event_timestamp(0, 0), hour - Duration::Minutes(30));
  // An hour later, without any write, the failure (in tile hour - 2h) has left the 2h window,
  // which starts at hour - 1h; the 3h window still holds both payments.
  got = read(hour + Duration::Hours(1), 1);
  EXPECT_EQ(got.value(0, 0, 0).AsInt64(), 0);
  EXPECT_EQ(got.value(0, 1, 0).AsFloat64(), 15.0);
  // Past every window: count 0, the others null; the entity is still there.
  got = read(hour + Duration::Hours(5), 1);
  EXPECT_EQ(got.status(0, 0, 0), FeatureStatus::kPresent);
  EXPECT_EQ(got.value(0, 0, 0).AsInt64(), 0);
  EXPECT_EQ(got.status(0, 1, 0), FeatureStatus::kNullValue);

  // A push at hour + 10 min adds a failure to customer 1 atomically with what is stored.
  EntityKeyColumn push_keys;
  std::vector<std::string> push_records;
  EventTiles(spec, {{1, hour + Duration::Minutes(10), 3.0, true}}, &push_keys, &push_records);
  clock_.Set(hour + Duration::Minutes(10));
  TileWriteOptions add{std::nullopt, Timestamp::FromMicros(spec.ExpireBefore(hour.micros))};
  ASSERT_TRUE(store_->WriteTiles(*tiles, push_keys, push_records, add).ok());
  got = read(hour + Duration::Minutes(10), 1);
  EXPECT_EQ(got.value(0, 0, 0).AsInt64(), 2);
  EXPECT_EQ(got.value(0, 1, 0).AsFloat64(), 18.0);
  EXPECT_EQ(got.value(0, 2, 0).AsFloat64(), 3.0);

  // A later materialization through hour replaces what it covers and keeps the later push.
  clock_.Set(hour + Duration::Minutes(20));
  ASSERT_TRUE(store_->WriteTiles(*tiles, keys, records, replace).ok());
  got = read(hour + Duration::Minutes(20), 1);
  EXPECT_EQ(got.value(0, 0, 0).AsInt64(), 2);
  EXPECT_EQ(got.value(0, 1, 0).AsFloat64(), 18.0);
  // Customer 2 is untouched. A customer without tiles reads as an empty window, as offline:
  // count 0, the others null, event time the epoch.
  got = read(hour + Duration::Minutes(20), 2);
  EXPECT_EQ(got.value(0, 0, 0).AsInt64(), 1);
  got = read(hour, 404);
  EXPECT_EQ(got.status(0, 0, 0), FeatureStatus::kPresent);
  EXPECT_EQ(got.value(0, 0, 0).AsInt64(), 0);
  EXPECT_EQ(got.status(0, 1, 0), FeatureStatus::kNullValue);
  EXPECT_EQ(got.event_timestamp(0, 0), Timestamp::FromMicros(0));

  // DeleteViews takes the tiles with the view.
  ASSERT_TRUE(store_->DeleteViews({"payments_agg"}).ok());
  got = read(hour, 1);
  EXPECT_EQ(got.value(0, 0, 0).AsInt64(), 0);
  EXPECT_EQ(got.status(0, 2, 0), FeatureStatus::kNullValue);
}

// Roll-ups through each store's write (the Redis script, RocksDB's merge): a materialization
// writes them, pushes into a rolled-up coarse tile and after it keep every record, reads fall
// back to the fine records of the pushed coarse tile, and the next materialization replaces
// roll-ups and records alike, counting the late event once.
TEST_P(OnlineStoreTileTest, TileRollupsKeepEveryRecordThroughWritesAndPushes) {
  Definitions defs = defs_;
  FeatureView v;
  v.name = "payments_3d";
  v.entities = {"customer"};
  v.source = "payments";
  v.granularity = Duration::Hours(1);
  Aggregation failures, spend;
  failures.name = "failures_3d";
  failures.function = AggregationFunction::kCount;
  failures.where = "failed";
  failures.window = Duration::Days(3);
  failures.type = ValueType::Scalar(ScalarType::kInt64);
  spend.name = "spend_3d";
  spend.function = AggregationFunction::kSum;
  spend.column = "amount";
  spend.window = Duration::Days(3);
  spend.type = ValueType::Scalar(ScalarType::kFloat64);
  Aggregation last = spend;
  last.name = "last_amount_3d";
  last.function = AggregationFunction::kLast;
  v.aggregations = {failures, spend, last};
  defs.feature_views.push_back(v);
  auto tiles =
      MakeViewLayouts(defs, Duration::Days(90)).ValueOrDie().at("payments_3d")->tile_layout();
  const aggregation::TileSpec& spec = *tiles->tiles();
  ASSERT_EQ(spec.rollup.micros, Duration::Hours(6).micros);  // RollupSpan(1h, 3d)
  layouts_.emplace("payments_3d#tiles", tiles);
  const int64_t six_hours = Duration::Hours(6).micros;
  const Timestamp end = Timestamp::FromMicros(kT0.micros / six_hours * six_hours);
  // A failed payment of 1.0 every hour of the day before `end`.
  std::vector<std::tuple<int64_t, Timestamp, double, bool>> events;
  for (int h = 24; h >= 1; --h) events.push_back({1, end - Duration::Hours(h), 1.0, true});
  auto materialize = [&]() {
    EntityKeyColumn keys;
    std::vector<std::string> records;
    EventTiles(spec, events, &keys, &records,
               aggregation::RollupRange{spec.ExpireBefore(end.micros), end.micros - 1});
    clock_.Set(end);
    TileWriteOptions replace{end - Duration::Microseconds(1),
                             Timestamp::FromMicros(spec.ExpireBefore(end.micros))};
    ASSERT_TRUE(store_->WriteTiles(*tiles, keys, records, replace).ok());
  };
  auto push = [&](Timestamp t, double amount) {
    EntityKeyColumn keys;
    std::vector<std::string> records;
    EventTiles(spec, {{1, t, amount, true}}, &keys, &records);
    TileWriteOptions add{std::nullopt, Timestamp::FromMicros(spec.ExpireBefore(end.micros))};
    ASSERT_TRUE(store_->WriteTiles(*tiles, keys, records, add).ok());
  };
  auto expect = [&](int64_t failures_3d, double spend_3d, double last_amount) {
    clock_.Set(end + Duration::Minutes(30));
    OnlineFeatures got = ReadOne("payments_3d#tiles", {{Value(int64_t{1})}});
    ASSERT_EQ(got.status(0, 0, 0), FeatureStatus::kPresent);
    EXPECT_EQ(got.value(0, 0, 0).AsInt64(), failures_3d);
    EXPECT_EQ(got.value(0, 1, 0).AsFloat64(), spend_3d);
    EXPECT_EQ(got.value(0, 2, 0).AsFloat64(), last_amount);
  };
  materialize();
  expect(24, 24.0, 1.0);
  // A late event in the rolled-up coarse tile [end - 12h, end - 6h), then one after `end`.
  push(end - Duration::Hours(10) + Duration::Minutes(5), 100.0);
  expect(25, 124.0, 1.0);
  push(end + Duration::Minutes(10), 7.0);
  expect(26, 131.0, 7.0);
  // The source now holds the late event: the next run covers it once, and keeps the later push.
  events.push_back({1, end - Duration::Hours(10) + Duration::Minutes(5), 100.0, true});
  materialize();
  expect(26, 131.0, 7.0);

  // An incremental run up to end2 after the watermark end - 1 us reads only the events from
  // IncrementalTileStart (here `end`, a coarse tile boundary) and replaces only the records from
  // there: the day before keeps its records and roll-ups, the online-only push at end + 10 min
  // is replaced by what the source says, and the new payments of 2.0 count.
  const Timestamp end2 = end + Duration::Hours(6);
  const int64_t from = aggregation::IncrementalTileStart(spec, end.micros - 1);
  ASSERT_EQ(from, end.micros);
  std::vector<std::tuple<int64_t, Timestamp, double, bool>> fresh;
  for (int h = 1; h <= 5; ++h) fresh.push_back({1, end + Duration::Hours(h), 2.0, true});
  {
    EntityKeyColumn keys;
    std::vector<std::string> records;
    EventTiles(spec, fresh, &keys, &records, aggregation::RollupRange{from, end2.micros - 1});
    clock_.Set(end2);
    TileWriteOptions incremental{end2 - Duration::Microseconds(1),
                                 Timestamp::FromMicros(spec.ExpireBefore(end2.micros)),
                                 Timestamp::FromMicros(from)};
    ASSERT_TRUE(store_->WriteTiles(*tiles, keys, records, incremental).ok());
  }
  clock_.Set(end2 + Duration::Minutes(30));
  OnlineFeatures got = ReadOne("payments_3d#tiles", {{Value(int64_t{1})}});
  ASSERT_EQ(got.status(0, 0, 0), FeatureStatus::kPresent);
  EXPECT_EQ(got.value(0, 0, 0).AsInt64(), 24 + 1 + 5);
  EXPECT_EQ(got.value(0, 1, 0).AsFloat64(), 24.0 + 100.0 + 10.0);
  EXPECT_EQ(got.value(0, 2, 0).AsFloat64(), 2.0);
}

INSTANTIATE_TEST_SUITE_P(Stores, OnlineStoreTileTest, ::testing::ValuesIn(testing::StoreKinds()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace granary
