// The behaviour every online store shares, run against each of them: RocksDB, Redis standalone
// and Redis Cluster (real redis-server processes on 127.0.0.1).
#include "granary/online/online_store.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <random>
#include <set>
#include <thread>
#include <tuple>

#include "granary/testing/online_definitions.h"
#include "granary/testing/online_store_test_base.h"
#include "granary/testing/test_seed.h"

namespace granary {
namespace {

using testing::EveryTypeValues;
using testing::MakeRows;
using testing::MakeViewRead;
using testing::Row;

using testing::OnlineStoreTest;
const Timestamp kT0 = testing::kOnlineT0;

TEST_P(OnlineStoreTest, EveryValueTypeRoundTripsAndNullsAreNullValue) {
  std::vector<Row> rows;
  for (int64_t i = 0; i < 50; ++i) {
    rows.push_back(Row{{Value(i)}, kT0 - Duration::Minutes(i), {}, EveryTypeValues(i, i == 7)});
  }
  WriteStats stats = Write("every_type", rows);
  EXPECT_EQ(stats.written, 50);
  EXPECT_EQ(stats.skipped_older, 0);

  std::vector<std::vector<Value>> keys;
  for (int64_t i = 0; i < 50; ++i) keys.push_back({Value(i)});
  OnlineFeatures got = ReadOne("every_type", keys);
  ASSERT_EQ(got.num_rows(), 50u);
  for (size_t r = 0; r < 50; ++r) {
    EXPECT_EQ(got.event_timestamp(0, r), kT0 - Duration::Minutes(r));
    std::vector<Value> expected = EveryTypeValues(r, r == 7);
    for (size_t f = 0; f < 16; ++f) {
      EXPECT_EQ(got.value(0, f, r).ToValue(), expected[f]) << "row " << r << " feature " << f;
      EXPECT_EQ(got.status(0, f, r), r == 7 ? FeatureStatus::kNullValue : FeatureStatus::kPresent);
    }
  }
  // Arrow output of one column.
  auto column = got.ToArrow(0, 2);
  ASSERT_TRUE(column.ok());
  EXPECT_EQ((*column)->length(), 50);
  EXPECT_EQ((*column)->null_count(), 1);
}

TEST_P(OnlineStoreTest, StatusesForMissingStaleAndFreshRowsWithTtlBoundaryInclusive) {
  // risk has ttl 1h.
  Write("risk",
        {Row{{Value(int64_t{1})}, kT0 - Duration::Hours(1), {}, {Value(0.5), Value::Null()}},
         Row{{Value(int64_t{2})},
             kT0 - Duration::Hours(1) - Duration::Microseconds(1),
             {},
             {Value(0.7), Value(int64_t{3})}}});
  OnlineFeatures got =
      ReadOne("risk", {{Value(int64_t{1})}, {Value(int64_t{2})}, {Value(int64_t{404})}});
  EXPECT_EQ(got.status(0, 0, 0), FeatureStatus::kPresent);  // exactly now - ttl: fresh
  EXPECT_EQ(got.status(0, 1, 0), FeatureStatus::kNullValue);
  EXPECT_EQ(got.value(0, 0, 0).AsFloat64(), 0.5);
  EXPECT_EQ(got.status(0, 0, 1), FeatureStatus::kOutsideMaxAge);
  EXPECT_TRUE(got.value(0, 0, 1).is_null());
  EXPECT_EQ(got.event_timestamp(0, 1), kT0 - Duration::Hours(1) - Duration::Microseconds(1));
  EXPECT_EQ(got.status(0, 0, 2), FeatureStatus::kNotFound);
  EXPECT_EQ(got.status(0, 1, 2), FeatureStatus::kNotFound);
  EXPECT_EQ(got.event_timestamp(0, 2), Timestamp::FromMicros(0));

  clock_.Advance(Duration::Seconds(1));
  got = ReadOne("risk", {{Value(int64_t{1})}});
  EXPECT_EQ(got.status(0, 0, 0), FeatureStatus::kOutsideMaxAge);
  EXPECT_EQ(FeatureStatusName(FeatureStatus::kOutsideMaxAge), "OUTSIDE_MAX_AGE");
  EXPECT_EQ(static_cast<int>(FeatureStatus::kOutsideMaxAge), 4);
}

TEST_P(OnlineStoreTest, OlderRowsNeverReplaceNewerOnesAndCreatedTimeBreaksTies) {
  auto row = [](Timestamp event, std::optional<Timestamp> created, double score) {
    return Row{{Value(int64_t{9})}, event, created, {Value(score), Value(int64_t{0})}};
  };
  EXPECT_EQ(Write("risk", {row(kT0, {}, 1.0)}).written, 1);
  WriteStats older = Write("risk", {row(kT0 - Duration::Seconds(1), kT0, 2.0)});
  EXPECT_EQ(older.written, 0);
  EXPECT_EQ(older.skipped_older, 1);
  EXPECT_EQ(ReadOne("risk", {{Value(int64_t{9})}}).value(0, 0, 0).AsFloat64(), 1.0);

  // Same event time: a created time beats none, a later created time beats an earlier one.
  EXPECT_EQ(Write("risk", {row(kT0, kT0, 3.0)}).written, 1);
  EXPECT_EQ(Write("risk", {row(kT0, kT0 - Duration::Seconds(1), 4.0)}).skipped_older, 1);
  EXPECT_EQ(Write("risk", {row(kT0, {}, 5.0)}).skipped_older, 1);
  EXPECT_EQ(ReadOne("risk", {{Value(int64_t{9})}}).value(0, 0, 0).AsFloat64(), 3.0);
  // An equal order is written (a corrected re-run of the same rows takes effect).
  EXPECT_EQ(Write("risk", {row(kT0, kT0, 6.0)}).written, 1);
  EXPECT_EQ(ReadOne("risk", {{Value(int64_t{9})}}).value(0, 0, 0).AsFloat64(), 6.0);

  // Several rows of one entity in one batch: the newest ends stored, whatever the batch order.
  Write("risk",
        {row(kT0 + Duration::Seconds(3), {}, 8.0), row(kT0 + Duration::Seconds(2), {}, 7.0)});
  EXPECT_EQ(ReadOne("risk", {{Value(int64_t{9})}}).value(0, 0, 0).AsFloat64(), 8.0);
}

TEST_P(OnlineStoreTest, ABatchOfNewAndKnownEntitiesStoresTheNewAndKeepsNewerKnownValues) {
  // Redis stores absent keys with SET NX and the rest with the write script; both must count
  // and order rows exactly as the script alone would, also over several chunks of 4096 rows.
  auto row = [](int64_t id, Timestamp event, double score) {
    return Row{{Value(id)}, event, {}, {Value(score), Value(id)}};
  };
  std::vector<Row> known;
  for (int64_t id = 0; id < 3000; ++id) known.push_back(row(id, kT0, 1.0));
  EXPECT_EQ(Write("risk", known).written, 3000);
  std::vector<Row> mixed;
  for (int64_t id = 0; id < 9000; ++id) {
    // Known entities: older rows (skipped) for even ids, newer ones for odd ids.
    const bool is_known = id < 3000;
    const Timestamp at = !is_known     ? kT0
                         : id % 2 == 0 ? kT0 - Duration::Seconds(1)
                                       : kT0 + Duration::Seconds(1);
    mixed.push_back(row(id, at, 2.0));
  }
  // One new entity twice, the newer row first, and another the older row first.
  mixed.push_back(row(20000, kT0 + Duration::Seconds(5), 5.0));
  mixed.push_back(row(20000, kT0 + Duration::Seconds(4), 4.0));
  mixed.push_back(row(20001, kT0 + Duration::Seconds(4), 4.0));
  mixed.push_back(row(20001, kT0 + Duration::Seconds(5), 5.0));
  WriteStats stats = Write("risk", mixed);
  EXPECT_EQ(stats.written, 1500 + 6000 + 3);
  EXPECT_EQ(stats.skipped_older, 1500 + 1);
  std::vector<std::vector<Value>> keys;
  for (int64_t id = 0; id < 9000; ++id) keys.push_back({Value(id)});
  keys.push_back({Value(int64_t{20000})});
  keys.push_back({Value(int64_t{20001})});
  OnlineFeatures got = ReadOne("risk", keys);
  for (int64_t id = 0; id < 9000; ++id) {
    ASSERT_EQ(got.status(0, 0, id), FeatureStatus::kPresent) << id;
    const double expected = id < 3000 && id % 2 == 0 ? 1.0 : 2.0;
    ASSERT_EQ(got.value(0, 0, id).AsFloat64(), expected) << id;
  }
  EXPECT_EQ(got.value(0, 0, 9000).AsFloat64(), 5.0);
  EXPECT_EQ(got.value(0, 0, 9001).AsFloat64(), 5.0);
}

TEST_P(OnlineStoreTest, WriteOrderIsExactForTimestampsPastTwoToTheFiftyThreeMicroseconds) {
  // Near 9999-12-31, microseconds need 58 bits: a double (Redis's Lua numbers) holds them only to
  // the nearest 32, so T and T + 1 us would compare equal there.
  const Timestamp t = Timestamp::FromMicros(253'402'214'400'000'000);  // 9999-12-31T00:00:00Z
  const Timestamp epoch = Timestamp::FromMicros(0);
  const Duration us = Duration::Microseconds(1);
  auto row = [](int64_t bay, Timestamp event, Timestamp created, double occupancy) {
    return Row{{Value("bay" + std::to_string(bay))}, event, created, {Value(occupancy)}};
  };
  // The first write of each entity must stay; the second is older by exactly 1 us:
  // 1: a later event by 1 us beats an earlier event with a much later created time.
  // 2: equal events; created 1 us later, both far after the event (delta near 2^58 us).
  // 3: equal events; created 1 us later, both far before the event (negative deltas).
  const std::vector<std::pair<Row, Row>> cases = {
      {row(1, t + us, t, 1.0), row(1, t, t + Duration::Days(1), 2.0)},
      {row(2, epoch, t + us, 1.0), row(2, epoch, t, 2.0)},
      {row(3, t, epoch + us, 1.0), row(3, t, epoch, 2.0)},
  };
  for (const auto& [newer, older] : cases) {
    EXPECT_EQ(Write("bay_stats", {newer}).written, 1);
    WriteStats second = Write("bay_stats", {older});
    EXPECT_EQ(second.written, 0) << newer.keys[0].ToString();
    EXPECT_EQ(second.skipped_older, 1) << newer.keys[0].ToString();
  }
  // In one batch too (each store orders a key's rows itself).
  for (const auto& [newer, older] : cases) {
    Row newer_again = newer, older_again = older;
    newer_again.keys = {Value("again" + newer.keys[0].ToString())};
    older_again.keys = newer_again.keys;
    Write("bay_stats", {older_again, newer_again});
  }
  std::vector<std::vector<Value>> keys;
  for (const auto& [newer, older] : cases) keys.push_back(newer.keys);
  for (const auto& [newer, older] : cases) {
    keys.push_back({Value("again" + newer.keys[0].ToString())});
  }
  OnlineFeatures got = ReadOne("bay_stats", keys);
  for (size_t r = 0; r < keys.size(); ++r) {
    ASSERT_EQ(got.status(0, 0, r), FeatureStatus::kPresent) << r;
    EXPECT_EQ(got.value(0, 0, r).AsFloat64(), 1.0) << keys[r][0].ToString();
  }
}

TEST_P(OnlineStoreTest, ConcurrentWritersKeepTheNewestRowOfEveryEntity) {
  constexpr int kThreads = 4, kEntities = 300, kRounds = 6;
  std::vector<std::thread> threads;
  const uint64_t seed = testing::TestSeed();
  SCOPED_TRACE(testing::SeedTrace(seed));
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      SCOPED_TRACE(testing::SeedTrace(seed));  // the writers assert on their own threads
      std::mt19937 rng(seed + t);
      for (int round = 0; round < kRounds; ++round) {
        std::vector<Row> rows;
        for (int64_t e = 0; e < kEntities; ++e) {
          // Each (thread, round) writes a distinct event time; the newest is thread 3, round 5
          // for even entities and thread 0, round 0 for odd ones.
          int rank = e % 2 == 0 ? round * kThreads + t
                                : (kRounds - 1 - round) * kThreads + (kThreads - 1 - t);
          rows.push_back(Row{{Value(e)},
                             kT0 + Duration::Seconds(rank),
                             {},
                             {Value(static_cast<double>(rank)), Value(int64_t{t})}});
        }
        std::shuffle(rows.begin(), rows.end(), rng);
        auto stats = store_->WriteBatch(*View("risk"), *MakeRows(*View("risk"), rows));
        ASSERT_TRUE(stats.ok()) << stats.status().ToString();
        EXPECT_EQ(stats->written + stats->skipped_older, kEntities);
      }
    });
  }
  for (auto& th : threads) th.join();
  clock_.Set(kT0);
  std::vector<std::vector<Value>> keys;
  for (int64_t e = 0; e < kEntities; ++e) keys.push_back({Value(e)});
  OnlineFeatures got = ReadOne("risk", keys);
  const double newest = kThreads * kRounds - 1;
  for (size_t e = 0; e < kEntities; ++e) {
    ASSERT_EQ(got.status(0, 0, e), FeatureStatus::kPresent) << e;
    EXPECT_EQ(got.value(0, 0, e).AsFloat64(), newest) << "entity " << e;
  }
}

TEST_P(OnlineStoreTest, SeveralViewsAndEntityTypesInOneReadWithFeatureSubsets) {
  Write("risk", {Row{{Value(int64_t{5})}, kT0, {}, {Value(0.25), Value(int64_t{2})}}});
  Write("every_type", {Row{{Value(int64_t{5})}, kT0, {}, EveryTypeValues(5)}});
  Write("bay_stats", {Row{{Value("A-12")}, kT0, {}, {Value(0.9)}}});
  Write("trip_stats", {Row{{Value(int32_t{7}), Value("r1")}, kT0, {}, {Value(int32_t{42})}}});

  OnlineReadRequest request;
  auto customers = MakeViewRead(View("risk"), {{Value(int64_t{5})}, {Value(int64_t{6})}}, {1});
  request.views.push_back(customers);
  // every_type shares the customer key column: a store fetches each entity once.
  request.views.push_back(ViewRead{View("every_type"), {5, 2}, customers.keys});
  request.views.push_back(MakeViewRead(View("bay_stats"), {{Value("A-12")}, {Value("B-1")}}));
  request.views.push_back(MakeViewRead(
      View("trip_stats"), {{Value(int32_t{7}), Value("r1")}, {Value(int32_t{7}), Value("r2")}}));
  auto got = store_->Read(request);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->value(0, 0, 0).AsInt64(), 2);
  EXPECT_EQ(got->status(0, 0, 1), FeatureStatus::kNotFound);
  EXPECT_EQ(got->value(1, 0, 0).AsBytes(), "caf\xc3\xa9 #5");
  EXPECT_EQ(got->value(1, 1, 0).AsInt64(), int64_t{1} << 40 | 5);
  EXPECT_EQ(got->value(2, 0, 0).AsFloat64(), 0.9);
  EXPECT_EQ(got->status(2, 0, 1), FeatureStatus::kNotFound);
  EXPECT_EQ(got->value(3, 0, 0).AsInt32(), 42);
  EXPECT_EQ(got->status(3, 0, 1), FeatureStatus::kNotFound);
}

TEST_P(OnlineStoreTest, ValuesOfAnOlderSchemaAreNotFoundAndAlwaysReplaced) {
  Write("risk", {Row{{Value(int64_t{1})}, kT0, {}, {Value(0.5), Value(int64_t{1})}}});
  Definitions changed = defs_;
  changed.feature_views[1].schema[1].type = ValueType::Scalar(ScalarType::kFloat64);
  auto v2 = ViewLayout::Make(changed, changed.feature_views[1], Duration::Days(90)).ValueOrDie();
  ASSERT_NE(v2->fingerprint(), View("risk")->fingerprint());

  OnlineReadRequest request;
  request.views.push_back(MakeViewRead(v2, {{Value(int64_t{1})}}));
  auto got = store_->Read(request);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->status(0, 1, 0), FeatureStatus::kNotFound);

  // An older row of the new schema replaces the newer row of the old one.
  auto rows = MakeRows(
      *v2, {Row{{Value(int64_t{1})}, kT0 - Duration::Minutes(5), {}, {Value(0.75), Value(2.5)}}});
  auto stats = store_->WriteBatch(*v2, *rows);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->written, 1);
  got = store_->Read(request);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->value(0, 1, 0).AsFloat64(), 2.5);
}

TEST_P(OnlineStoreTest, AValueOfAnEarlierSchemaServesTheFeaturesThatSchemaShares) {
  // Rows of the every_type view, one with nulls.
  std::vector<Row> rows;
  for (int64_t i = 0; i < 3; ++i) {
    rows.push_back(Row{{Value(i)}, kT0 - Duration::Minutes(i), {}, EveryTypeValues(i, i == 2)});
  }
  Write("every_type", rows);

  // A later apply removes f_string and l_int32 (variable width, before kept features), retypes
  // f_int32 to int64, and adds f_new; the registry keeps the schema the rows were written under.
  Definitions changed = defs_;
  FeatureView* view = nullptr;
  for (FeatureView& v : changed.feature_views) {
    if (v.name == "every_type") view = &v;
  }
  ASSERT_NE(view, nullptr);
  const std::string written_under = OnlineSchemaText(defs_, *view);
  std::vector<Field> schema;
  for (const Field& f : view->schema) {
    if (f.name == "f_string" || f.name == "l_int32") continue;
    schema.push_back(f);
    if (f.name == "f_int32") schema.back().type = ValueType::Scalar(ScalarType::kInt64);
  }
  schema.insert(schema.begin() + 2, Field{"f_new", ValueType::Scalar(ScalarType::kFloat64)});
  view->schema = schema;
  view->online_history = {"granary.schema.v1|every_type|other_key:string,|f_bool:bool,",
                          written_under};
  auto v2 = ViewLayout::Make(changed, *view, Duration::Days(90)).ValueOrDie();
  ASSERT_NE(v2->fingerprint(), View("every_type")->fingerprint());
  ASSERT_NE(v2->FindEarlier(View("every_type")->fingerprint()), nullptr);
  {
    // A schema of the view with other join keys is not trusted: its values are other entities'.
    Definitions by_bay = changed;
    FeatureView& keyed = by_bay.feature_views[view - changed.feature_views.data()];
    keyed.entities = {"bay"};
    keyed.online_history.clear();
    auto keyed_layout = ViewLayout::Make(by_bay, keyed, Duration::Days(90)).ValueOrDie();
    FeatureView with_it = *view;
    with_it.online_history.push_back(OnlineSchemaText(by_bay, keyed));
    auto layout = ViewLayout::Make(changed, with_it, Duration::Days(90)).ValueOrDie();
    EXPECT_EQ(layout->FindEarlier(keyed_layout->fingerprint()), nullptr);
    EXPECT_NE(layout->FindEarlier(View("every_type")->fingerprint()), nullptr);
  }

  OnlineReadRequest request;
  request.views.push_back(
      MakeViewRead(v2, {{Value(int64_t{0})}, {Value(int64_t{1})}, {Value(int64_t{2})}}));
  auto got = store_->Read(request);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  const ViewLayout& old_layout = *View("every_type");
  for (size_t r = 0; r < 3; ++r) {
    EXPECT_EQ(got->row_status(0, r), FeatureStatus::kPresent);
    EXPECT_EQ(got->event_timestamp(0, r), kT0 - Duration::Minutes(r));
    const std::vector<Value> stored = EveryTypeValues(r, r == 2);
    for (size_t j = 0; j < v2->features().size(); ++j) {
      const std::string& name = v2->features()[j].name;
      SCOPED_TRACE("row " + std::to_string(r) + " feature " + name);
      if (name == "f_new" || name == "f_int32") {  // added, retyped
        EXPECT_EQ(got->status(0, j, r), FeatureStatus::kNotFound);
        EXPECT_TRUE(got->value(0, j, r).is_null());
        continue;
      }
      const Value& expected = stored[old_layout.FeatureIndex(name)];
      EXPECT_EQ(got->status(0, j, r), r == 2 ? FeatureStatus::kNullValue : FeatureStatus::kPresent);
      EXPECT_EQ(got->value(0, j, r).ToValue(), expected);
    }
  }
  auto column = got->ToArrow(0, 2);  // f_new: all null
  ASSERT_TRUE(column.ok());
  EXPECT_EQ((*column)->null_count(), 3);

  // Without the earlier schema in the history, the rows are of another schema: NOT_FOUND.
  view->online_history.clear();
  auto v3 = ViewLayout::Make(changed, *view, Duration::Days(90)).ValueOrDie();
  request.views[0] = MakeViewRead(v3, {{Value(int64_t{0})}});
  got = store_->Read(request);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->row_status(0, 0), FeatureStatus::kNotFound);
  EXPECT_EQ(got->status(0, 0, 0), FeatureStatus::kNotFound);

  // A write of the new schema replaces the earlier one, whatever its order.
  auto fresh = EveryTypeValues(5);
  std::vector<Value> values;
  for (const auto& f : v2->features()) {
    int at = old_layout.FeatureIndex(f.name);
    if (f.name == "f_new") {
      values.push_back(Value(2.5));
    } else if (f.name == "f_int32") {
      values.push_back(Value(int64_t{-12}));
    } else {
      values.push_back(fresh[at]);
    }
  }
  auto new_rows = MakeRows(*v2, {Row{{Value(int64_t{0})}, kT0 - Duration::Hours(5), {}, values}});
  auto stats = store_->WriteBatch(*v2, *new_rows);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->written, 1);
  request.views[0] = MakeViewRead(v2, {{Value(int64_t{0})}});
  got = store_->Read(request);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->event_timestamp(0, 0), kT0 - Duration::Hours(5));
  for (size_t j = 0; j < v2->features().size(); ++j) {
    EXPECT_EQ(got->status(0, j, 0), FeatureStatus::kPresent);
    EXPECT_EQ(got->value(0, j, 0).ToValue(), values[j]) << v2->features()[j].name;
  }
}

TEST_P(OnlineStoreTest, DeleteViewsRemovesOnlyThoseViewsAndDeleteAllEverything) {
  Write("risk", {Row{{Value(int64_t{1})}, kT0, {}, {Value(0.5), Value(int64_t{1})}}});
  Write("every_type", {Row{{Value(int64_t{1})}, kT0, {}, EveryTypeValues(1)}});
  Write("bay_stats", {Row{{Value("A")}, kT0, {}, {Value(0.9)}}});
  ASSERT_TRUE(store_->DeleteViews({"risk"}).ok());
  EXPECT_EQ(ReadOne("risk", {{Value(int64_t{1})}}).status(0, 0, 0), FeatureStatus::kNotFound);
  EXPECT_EQ(ReadOne("every_type", {{Value(int64_t{1})}}).status(0, 0, 0), FeatureStatus::kPresent);
  EXPECT_EQ(ReadOne("bay_stats", {{Value("A")}}).status(0, 0, 0), FeatureStatus::kPresent);
  ASSERT_TRUE(store_->DeleteAll().ok());
  EXPECT_EQ(ReadOne("every_type", {{Value(int64_t{1})}}).status(0, 0, 0), FeatureStatus::kNotFound);
  EXPECT_EQ(ReadOne("bay_stats", {{Value("A")}}).status(0, 0, 0), FeatureStatus::kNotFound);
}

TEST_P(OnlineStoreTest, ViewMarkersAreOnEveryShardAndGoWithTheirViews) {
  auto none = store_->ReadViewMarkers();
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  ASSERT_EQ(none->size(), GetParam() == "redis_cluster" ? 3u : 1u);  // the fixture's 3 masters
  for (const ShardMarkers& shard : *none) EXPECT_TRUE(shard.views.empty()) << shard.shard;

  Write("risk", {Row{{Value(int64_t{1})}, kT0, {}, {Value(0.5), Value(int64_t{1})}}});
  Write("bay_stats", {Row{{Value("A")}, kT0, {}, {Value(0.9)}}});
  const ViewMarker risk{"aaaa0001-0000beef", kT0, 17};
  const ViewMarker bays{"", kT0 - Duration::Days(1), 18};
  ASSERT_TRUE(store_->PutViewMarker("risk", risk).ok());
  ASSERT_TRUE(store_->PutViewMarker("bay_stats", bays).ok());
  auto markers = store_->ReadViewMarkers().ValueOrDie();
  std::set<std::string> shards;
  for (const ShardMarkers& shard : markers) {
    shards.insert(shard.shard);
    ASSERT_EQ(shard.views.size(), 2u) << shard.shard;
    EXPECT_EQ(shard.views.at("risk"), risk);
    EXPECT_EQ(shard.views.at("bay_stats"), bays);
  }
  EXPECT_EQ(shards.size(), markers.size());  // one entry per shard
  // Markers are not entity values: reads and deletes of values go on as before.
  EXPECT_EQ(ReadOne("risk", {{Value(int64_t{1})}}).status(0, 0, 0), FeatureStatus::kPresent);
  ASSERT_TRUE(store_->DeleteViews({"risk"}).ok());
  for (const ShardMarkers& shard : store_->ReadViewMarkers().ValueOrDie()) {
    EXPECT_EQ(shard.views.count("risk"), 0u) << shard.shard;
    EXPECT_EQ(shard.views.at("bay_stats"), bays) << shard.shard;
  }
  EXPECT_EQ(ReadOne("bay_stats", {{Value("A")}}).status(0, 0, 0), FeatureStatus::kPresent);
  ASSERT_TRUE(store_->DeleteAll().ok());
  for (const ShardMarkers& shard : store_->ReadViewMarkers().ValueOrDie()) {
    EXPECT_TRUE(shard.views.empty()) << shard.shard;
  }
}

TEST(ViewMarker, EncodesAndDecodesAndRefusesOtherText) {
  const ViewMarker marker{"5e3a91c0-0b1d44e2", Timestamp::FromMicros(-5), 42};
  EXPECT_EQ(EncodeViewMarker(marker), "v1 5e3a91c0-0b1d44e2 -5 42");
  EXPECT_EQ(DecodeViewMarker(EncodeViewMarker(marker), "here").ValueOrDie(), marker);
  EXPECT_EQ(DecodeViewMarker(EncodeViewMarker({"", kT0, 0}), "here").ValueOrDie().layout, "");
  for (std::string_view bad : {"", "v1", "v2 a 1 2", "v1 a b 2", "v1 a 1 2 3", "v1 a 1 2x"}) {
    auto decoded = DecodeViewMarker(bad, "redis at x: marker of risk");
    ASSERT_FALSE(decoded.ok()) << bad;
    EXPECT_EQ(decoded.status().code(), StatusCode::kCorruption);
    EXPECT_NE(decoded.status().message().find("redis at x: marker of risk"), std::string::npos);
  }
}

TEST_P(OnlineStoreTest, AsyncReadCompletesOnTheCallersExecutor) {
  Write("risk", {Row{{Value(int64_t{3})}, kT0, {}, {Value(1.25), Value(int64_t{4})}}});
  boost::asio::io_context io;
  OnlineReadRequest request;
  request.views.push_back(MakeViewRead(View("risk"), {{Value(int64_t{3})}, {Value(int64_t{4})}}));
  std::optional<Result<OnlineFeatures>> result;
  std::thread::id ran_on;
  int calls = 0;
  store_->AsyncRead(io.get_executor(), request, [&](Result<OnlineFeatures> r) {
    result.emplace(std::move(r));
    ran_on = std::this_thread::get_id();
    ++calls;
  });
  EXPECT_EQ(calls, 0);  // never inline
  // The io_context keeps the store's connections: run it until the read is done, as a server's
  // worker thread would run it forever.
  std::thread runner([&] {
    while (calls == 0) io.run_one();
  });
  const auto runner_id = runner.get_id();
  runner.join();
  ASSERT_EQ(calls, 1);
  EXPECT_EQ(ran_on, runner_id);
  ASSERT_TRUE(result->ok()) << result->status().ToString();
  EXPECT_EQ((*result)->value(0, 0, 0).AsFloat64(), 1.25);
  EXPECT_EQ((*result)->status(0, 0, 1), FeatureStatus::kNotFound);
  // The store goes before the io_context it used (the threading contract).
  env_.reset();
  store_ = nullptr;
}

TEST_P(OnlineStoreTest, BadRowsAreRejectedBeforeAnythingIsWritten) {
  auto rows =
      MakeRows(*View("risk"), {Row{{Value(int64_t{1})}, kT0, {}, {Value(0.5), Value(int64_t{1})}},
                               Row{{Value::Null()}, kT0, {}, {Value(0.5), Value(int64_t{1})}}});
  auto stats = store_->WriteBatch(*View("risk"), *rows);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadOne("risk", {{Value(int64_t{1})}}).status(0, 0, 0), FeatureStatus::kNotFound);
}

TEST_P(OnlineStoreTest, ABadRowLateInALargeBatchLeavesNothingWritten) {
  // 6000 rows over several write chunks (RocksDB: 256 rows; Redis: 4096 rows per pipeline); row
  // 5000 has a null list element, which only the encoding of that row would meet.
  constexpr int64_t kRows = 6000, kBadRow = 5000;
  std::vector<Row> rows;
  for (int64_t i = 0; i < kRows; ++i) rows.push_back(Row{{Value(i)}, kT0, {}, EveryTypeValues(i)});
  auto batch = MakeRows(*View("every_type"), rows);
  const int column = batch->schema()->GetFieldIndex("l_int64");
  ASSERT_GE(column, 0);
  arrow::ListBuilder lists(arrow::default_memory_pool(), std::make_shared<arrow::Int64Builder>());
  auto* items = static_cast<arrow::Int64Builder*>(lists.value_builder());
  for (int64_t i = 0; i < kRows; ++i) {
    ASSERT_TRUE(lists.Append().ok());
    ASSERT_TRUE(items->Append(i).ok());
    if (i == kBadRow) {
      ASSERT_TRUE(items->AppendNull().ok());
    }
  }
  std::shared_ptr<arrow::Array> with_null;
  ASSERT_TRUE(lists.Finish(&with_null).ok());
  batch = batch
              ->SetColumn(column, batch->schema()->field(column)->WithType(with_null->type()),
                          with_null)
              .ValueOrDie();

  auto stats = store_->WriteBatch(*View("every_type"), *batch);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(stats.status().message().find("null list element in row 5000"), std::string::npos)
      << stats.status().message();
  // A read on the same thread runs its event loop (where queued Redis batches would go out):
  // still nothing of the batch is stored.
  std::vector<std::vector<Value>> keys;
  for (int64_t i = 0; i < kRows; ++i) keys.push_back({Value(i)});
  OnlineFeatures got = ReadOne("every_type", keys, {0});
  ASSERT_EQ(got.num_rows(), static_cast<size_t>(kRows));
  int64_t stored = 0;
  for (size_t r = 0; r < got.num_rows(); ++r)
    stored += got.status(0, 0, r) != FeatureStatus::kNotFound;
  EXPECT_EQ(stored, 0);
}

INSTANTIATE_TEST_SUITE_P(Stores, OnlineStoreTest, ::testing::ValuesIn(testing::StoreKinds()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace granary
