// PointInTimeJoin over real source folders and definitions: a source or Delta table changed
// between the two passes, the entity side shared between joins, the gather in column groups
// within the budget, cancellation. The differential test against a brute-force oracle is in
// pit_join_test.cc, the join's parts in pit_parts_test.cc.
#include <arrow/api.h>
#include <arrow/io/api.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <parquet/arrow/writer.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "granary/common/temp_dir.h"
#include "granary/offline/historical.h"
#include "granary/offline/pit_gather.h"
#include "granary/offline/pit_join.h"
#include "granary/offline/pit_test_definitions.h"

namespace granary {
namespace {

constexpr int64_t kMinute = 60'000'000;  // in microseconds
// A source folder with one file of (driver_id, event_timestamp, rate) rows.
void WriteSource(const std::filesystem::path& file, const std::vector<int64_t>& hours) {
  arrow::Int64Builder ids;
  arrow::TimestampBuilder ts(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                             arrow::default_memory_pool());
  arrow::DoubleBuilder rate;
  for (int64_t h : hours) {
    (void)ids.Append(1);
    (void)ts.Append(h * 3'600'000'000LL);
    (void)rate.Append(static_cast<double>(h));
  }
  auto table = arrow::Table::Make(
      arrow::schema(
          {arrow::field("driver_id", arrow::int64()),
           arrow::field("event_timestamp", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
           arrow::field("rate", arrow::float64())}),
      {ids.Finish().ValueOrDie(), ts.Finish().ValueOrDie(), rate.Finish().ValueOrDie()});
  auto out = arrow::io::FileOutputStream::Open(file.string()).ValueOrDie();
  ASSERT_TRUE(parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), out, 1024).ok());
  ASSERT_TRUE(out->Close().ok());
}

Field RateFeature() { return Field{"rate", ValueType::Scalar(ScalarType::kFloat64), "", {}}; }

// One entity row: driver 1 at hour 10, after every row the tests' sources hold.
std::shared_ptr<arrow::RecordBatch> DriverOneAtHourTen() {
  arrow::Int64Builder ids;
  (void)ids.Append(1);
  arrow::TimestampBuilder ts(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                             arrow::default_memory_pool());
  (void)ts.Append(10 * 3'600'000'000LL);
  return arrow::RecordBatch::Make(arrow::schema({arrow::field("driver_id", arrow::int64()),
                                                 arrow::field("event_timestamp", ts.type())}),
                                  1, {ids.Finish().ValueOrDie(), ts.Finish().ValueOrDie()});
}

TEST(PointInTimeJoin, ASourceChangedBetweenThePassesIsAnErrorNotAMixOfVersions) {
  auto dir = TempDir::Make("granary-changed-").ValueOrDie();
  std::filesystem::create_directories(dir.path() / "src");
  WriteSource(dir.path() / "src/a.parquet", {1, 2, 3});
  Definitions defs = DriverView(dir.path() / "src", {RateFeature()});
  auto entities = DriverOneAtHourTen();
  ViewSource vs{dir.path(), &defs, &defs.feature_views[0], {}};

  JoinOptions unchanged;
  auto ok = PointInTimeJoin(*entities, vs, unchanged, nullptr);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ((*ok)[0]->GetScalar(0).ValueOrDie()->ToString(), "3");

  // The files read are rewritten between the passes: an error, not a mix of versions.
  {
    JoinOptions options;
    options.TEST_after_match_pass = [&] {
      WriteSource(dir.path() / "src/a.parquet", {1, 2, 4});  // same shape, other rows
    };
    auto changed = PointInTimeJoin(*entities, vs, options, nullptr);
    ASSERT_FALSE(changed.ok());
    EXPECT_NE(changed.status().message().find("its source changed while it was being read"),
              std::string::npos)
        << changed.status().message();
  }
  // A file added to the folder between the passes is not part of this read: the join answers
  // from the files it listed first.
  {
    WriteSource(dir.path() / "src/a.parquet", {1, 2, 3});
    JoinOptions options;
    options.TEST_after_match_pass = [&] { WriteSource(dir.path() / "src/b.parquet", {5}); };
    auto added = PointInTimeJoin(*entities, vs, options, nullptr);
    ASSERT_TRUE(added.ok()) << added.status().ToString();
    EXPECT_EQ((*added)[0]->GetScalar(0).ValueOrDie()->ToString(), "3");
  }
}

TEST(PointInTimeJoin, JoinsOverTheSameEntityArraysShareTheEntitySideOnlyWhileKept) {
  auto dir = TempDir::Make("granary-shared-").ValueOrDie();
  std::filesystem::create_directories(dir.path() / "src");
  WriteSource(dir.path() / "src/a.parquet", {1, 2, 3, 8});
  Definitions defs = DriverView(dir.path() / "src", {RateFeature()});
  defs.feature_views.push_back(defs.feature_views[0]);
  defs.feature_views[1].name = "v_ttl";
  defs.feature_views[1].ttl = Duration::Hours(4);
  const auto ts_type = arrow::timestamp(arrow::TimeUnit::MICRO, "UTC");
  arrow::Int64Builder ids;
  arrow::TimestampBuilder ts(ts_type, arrow::default_memory_pool());
  for (int64_t minutes : {120, 300, 450, 540}) {  // 2 h, 5 h, 7 h 30, 9 h
    (void)ids.Append(1);
    (void)ts.Append(minutes * kMinute);
  }
  auto key_array = ids.Finish().ValueOrDie();
  auto ts_array = ts.Finish().ValueOrDie();
  auto entities =
      arrow::RecordBatch::Make(arrow::schema({arrow::field("driver_id", arrow::int64()),
                                              arrow::field("event_timestamp", ts_type)}),
                               4, {key_array, ts_array});
  ViewSource plain{dir.path(), &defs, &defs.feature_views[0], {}};
  ViewSource with_ttl{dir.path(), &defs, &defs.feature_views[1], {}};
  auto values = [](const arrow::ChunkedArray& column) {
    std::vector<std::string> out;
    for (int64_t i = 0; i < column.length(); ++i) {
      out.push_back(column.GetScalar(i).ValueOrDie()->ToString());
    }
    return out;
  };
  const std::vector<std::string> want_plain{"2", "3", "3", "8"};
  // 3 h is more than 4 h before 7 h 30.
  const std::vector<std::string> want_ttl{"2", "3", "null", "8"};

  EntitySideCache cache;
  cache.set_keep(true);
  JoinOptions options;
  options.entity_side = &cache;
  auto first = PointInTimeJoin(*entities, plain, options, nullptr);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(values(*(*first)[0]), want_plain);
  // Kept, for the very arrays only, not for equal copies.
  auto copy = arrow::Concatenate({key_array, key_array->Slice(0, 0)}).ValueOrDie();
  EXPECT_TRUE(cache.Holds({key_array}, ts_array));
  EXPECT_FALSE(cache.Holds({copy}, ts_array));

  // Reused by a join under another ttl, which frees it (keep unset).
  cache.set_keep(false);
  auto second = PointInTimeJoin(*entities, with_ttl, options, nullptr);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(values(*(*second)[0]), want_ttl);
  EXPECT_FALSE(cache.Holds({key_array}, ts_array));
  // The same answers without a cache.
  auto alone = PointInTimeJoin(*entities, with_ttl, JoinOptions{}, nullptr);
  ASSERT_TRUE(alone.ok()) << alone.status().ToString();
  EXPECT_EQ(values(*(*alone)[0]), want_ttl);

  // Matched ahead (MatchAhead), on another thread: only with the entity side shared
  // (kSharedEntitySide), and the join given the match takes it and gathers the same answers.
  EntitySideCache shared;
  shared.set_keep(true);
  JoinOptions ahead_options;
  ahead_options.entity_side = &shared;
  auto declined = MatchAhead(*entities, with_ttl, ahead_options, MatchAheadIf::kSharedEntitySide);
  ASSERT_TRUE(declined.ok()) << declined.status().ToString();
  EXPECT_EQ(*declined, nullptr);  // nothing held yet to share
  auto mine = MatchAhead(*entities, plain, ahead_options, MatchAheadIf::kAlways);
  ASSERT_TRUE(mine.ok() && *mine != nullptr) << mine.status().ToString();
  EXPECT_TRUE(shared.Holds({key_array}, ts_array));  // kept by that match
  shared.set_keep(false);
  Result<MatchedViewPtr> next = Status::Internal("not run");
  std::thread beside([&] {
    next = MatchAhead(*entities, with_ttl, ahead_options, MatchAheadIf::kSharedEntitySide);
  });
  JoinOptions take = ahead_options;
  take.matched = mine->get();
  auto gathered = PointInTimeJoin(*entities, plain, take, nullptr);
  beside.join();
  ASSERT_TRUE(gathered.ok()) << gathered.status().ToString();
  EXPECT_EQ(values(*(*gathered)[0]), want_plain);
  ASSERT_TRUE(next.ok() && *next != nullptr) << next.status().ToString();
  EXPECT_FALSE(shared.Holds({key_array}, ts_array));  // freed: keep was unset
  // A view's match given to another view's join is an error, not its answers.
  JoinOptions wrong;
  wrong.matched = next->get();
  auto mixed = PointInTimeJoin(*entities, plain, wrong, nullptr);
  ASSERT_FALSE(mixed.ok());
  EXPECT_EQ(mixed.status().code(), StatusCode::kInternal) << mixed.status().ToString();
  take.matched = next->get();
  auto second_ahead = PointInTimeJoin(*entities, with_ttl, take, nullptr);
  ASSERT_TRUE(second_ahead.ok()) << second_ahead.status().ToString();
  EXPECT_EQ(values(*(*second_ahead)[0]), want_ttl);
}

TEST(PointInTimeJoin, GathersColumnsInGroupsWithinTheBudgetHoldingSixteenBytesAMatchedEntityRow) {
  // 200,000 entity rows over 1,000 keys, 40,000 feature rows with 6 float64 columns, a bool and
  // a string. Gathered for a caller that takes the columns as they come, under budgets that do
  // not hold them all, the join reads the features once per group of columns and holds, at its
  // peak, its list of chosen rows (16 bytes a matched entity row) and one group: never more than
  // the budget, or the list and one column when the list alone passes it. The columns are the
  // ones the join gathered in one read returns.
  auto dir = TempDir::Make("granary-gather-groups-").ValueOrDie();
  std::filesystem::create_directories(dir.path() / "src");
  constexpr int64_t kKeys = 1000, kHours = 40, kEntityRows = 200'000, kFloats = 6;
  const auto ts_type = arrow::timestamp(arrow::TimeUnit::MICRO, "UTC");
  {
    arrow::Int64Builder ids;
    arrow::TimestampBuilder ts(ts_type, arrow::default_memory_pool());
    std::vector<arrow::DoubleBuilder> floats(kFloats);
    arrow::BooleanBuilder flag;
    arrow::StringBuilder zone;
    for (int64_t h = 0; h < kHours; ++h) {
      for (int64_t k = 0; k < kKeys; ++k) {
        const int64_t row = h * kKeys + k;
        (void)ids.Append(k);
        (void)ts.Append(h * 3'600'000'000LL);
        for (int64_t f = 0; f < kFloats; ++f) {
          row % 7 == f ? (void)floats[f].AppendNull()
                       : (void)floats[f].Append(static_cast<double>(row * (f + 1)));
        }
        row % 11 == 0 ? (void)flag.AppendNull() : (void)flag.Append(row % 3 == 0);
        (void)zone.Append("zone-" + std::to_string(row % 17));
      }
    }
    arrow::FieldVector fields{arrow::field("driver_id", arrow::int64()),
                              arrow::field("event_timestamp", ts_type)};
    arrow::ArrayVector arrays{ids.Finish().ValueOrDie(), ts.Finish().ValueOrDie()};
    for (int64_t f = 0; f < kFloats; ++f) {
      fields.push_back(arrow::field(fmt::format("f{}", f), arrow::float64()));
      arrays.push_back(floats[f].Finish().ValueOrDie());
    }
    fields.push_back(arrow::field("flag", arrow::boolean()));
    arrays.push_back(flag.Finish().ValueOrDie());
    fields.push_back(arrow::field("zone", arrow::utf8()));
    arrays.push_back(zone.Finish().ValueOrDie());
    auto table = arrow::Table::Make(arrow::schema(fields), arrays);
    auto out =
        arrow::io::FileOutputStream::Open((dir.path() / "src/a.parquet").string()).ValueOrDie();
    ASSERT_TRUE(parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), out, 10'000).ok());
    ASSERT_TRUE(out->Close().ok());
  }
  std::vector<std::string> features;
  std::vector<Field> schema;
  for (int64_t f = 0; f < kFloats; ++f) {
    features.push_back(fmt::format("f{}", f));
    schema.push_back(Field{features.back(), ValueType::Scalar(ScalarType::kFloat64), "", {}});
  }
  // The string between the numbers: its group puts its values in entity order by a Take.
  features.insert(features.begin() + 3, "zone");
  features.push_back("flag");
  schema.push_back(Field{"flag", ValueType::Scalar(ScalarType::kBool), "", {}});
  schema.push_back(Field{"zone", ValueType::Scalar(ScalarType::kString), "", {}});
  Definitions defs = DriverView(dir.path() / "src", std::move(schema));
  arrow::Int64Builder ids;
  arrow::TimestampBuilder ts(ts_type, arrow::default_memory_pool());
  for (int64_t i = 0; i < kEntityRows; ++i) {
    (void)ids.Append((i * 7) % (kKeys + 50));  // keys past kKeys match nothing
    (void)ts.Append(((i % (kHours + 5)) * 2 + 1) * 1'800'000'000LL);  // some after every row
  }
  auto entities =
      arrow::RecordBatch::Make(arrow::schema({arrow::field("driver_id", arrow::int64()),
                                              arrow::field("event_timestamp", ts_type)}),
                               kEntityRows, {ids.Finish().ValueOrDie(), ts.Finish().ValueOrDie()});
  SourceScanOptions scan_options;
  scan_options.features = features;
  ViewSource vs{dir.path(), &defs, &defs.feature_views[0], scan_options};

  ViewJoinStats whole_stats;
  auto whole = PointInTimeJoin(*entities, vs, JoinOptions{}, &whole_stats);
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  ASSERT_EQ(whole->size(), features.size());
  EXPECT_EQ(whole_stats.gather_reads, 1);
  const int64_t matched = whole_stats.rows_matched;
  ASSERT_GT(matched, kEntityRows / 2);
  ASSERT_LT(matched, kEntityRows);
  // The list of chosen rows: 16 bytes a matched entity row, whatever the columns.
  const int64_t list_bytes = 16 * matched;
  const int64_t float_bytes = 8 * kEntityRows + (kEntityRows + 7) / 8;
  // The feature rows chosen, each once however many entity rows chose it: f0 is row * 1 and f1
  // row * 2, never both null.
  std::set<int64_t> chosen_rows;
  {
    auto f0 = arrow::Concatenate((*whole)[0]->chunks()).ValueOrDie();
    auto f1 = arrow::Concatenate((*whole)[1]->chunks()).ValueOrDie();
    const auto& d0 = static_cast<const arrow::DoubleArray&>(*f0);
    const auto& d1 = static_cast<const arrow::DoubleArray&>(*f1);
    for (int64_t i = 0; i < kEntityRows; ++i) {
      if (d0.IsValid(i)) chosen_rows.insert(static_cast<int64_t>(d0.Value(i)));
      if (d1.IsValid(i)) chosen_rows.insert(static_cast<int64_t>(d1.Value(i)) / 2);
    }
  }
  const int64_t distinct = static_cast<int64_t>(chosen_rows.size());
  ASSERT_LT(distinct, matched);  // rows chosen by several entity rows
  // The gather's estimate for strings: the chosen rows' values, then the column.
  const int64_t zone_bytes = 16 * (kEntityRows + distinct);
  const int64_t order_bytes = 4 * kEntityRows + (kEntityRows + 7) / 8;  // int32 places
  EXPECT_EQ(
      whole_stats.gather_held_bytes,
      list_bytes + kFloats * float_bytes + 2 * ((kEntityRows + 7) / 8) + zone_bytes + order_bytes);

  // Budgets: the list and two floats; the list and the string with its order array; a budget
  // the list alone passes (then a group holds at most the largest column's bytes).
  for (int64_t budget :
       {list_bytes + 2 * float_bytes, list_bytes + zone_bytes + order_bytes, int64_t{1}}) {
    SCOPED_TRACE(fmt::format("budget {}", budget));
    JoinOptions options;
    options.memory_budget_bytes = budget;
    std::vector<std::shared_ptr<arrow::ChunkedArray>> got;
    int groups = 0;
    auto sink = [&](int first, std::vector<std::shared_ptr<arrow::ChunkedArray>> columns) {
      EXPECT_EQ(first, static_cast<int>(got.size()));  // in order, each feature once
      EXPECT_FALSE(columns.empty());
      for (auto& column : columns) got.push_back(std::move(column));
      ++groups;
      return Status::OK();
    };
    ViewJoinStats stats;
    ASSERT_TRUE(PointInTimeJoinInto(*entities, vs, options, sink, &stats).ok());
    EXPECT_EQ(stats.gather_reads, groups);
    EXPECT_GT(groups, 2);
    EXPECT_EQ(stats.rows_matched, matched);
    EXPECT_GE(stats.gather_held_bytes, list_bytes + float_bytes);
    EXPECT_LE(stats.gather_held_bytes, std::max(budget, list_bytes + order_bytes + zone_bytes));
    ASSERT_EQ(got.size(), features.size());
    for (size_t c = 0; c < features.size(); ++c) {
      EXPECT_TRUE(got[c]->Equals(*(*whole)[c])) << features[c];
    }
  }
  // An error from the caller stops the join and is its answer.
  JoinOptions options;
  options.memory_budget_bytes = 1;
  auto refuse = [](int, std::vector<std::shared_ptr<arrow::ChunkedArray>>) {
    return Status::IOError("disk full");
  };
  Status refused = PointInTimeJoinInto(*entities, vs, options, refuse, nullptr);
  EXPECT_EQ(refused.code(), StatusCode::kIOError) << refused.ToString();
}

// Appends commit `version` to a Delta table of (driver_id, event_timestamp, rate): protocol and
// metaData with the first, then an add of `file` (relative to the table).
void CommitDelta(const std::filesystem::path& table, int version, const std::string& file) {
  std::filesystem::create_directories(table / "_delta_log");
  std::ofstream commit(table / "_delta_log" / fmt::format("{:020}.json", version));
  if (version == 0) {
    commit << R"({"protocol":{"minReaderVersion":1,"minWriterVersion":2}})"
           << "\n"
           << R"({"metaData":{"id":"t","format":{"provider":"parquet","options":{}},)"
           << R"("schemaString":"{\"type\":\"struct\",\"fields\":[)"
           << R"({\"name\":\"driver_id\",\"type\":\"long\",\"nullable\":true,\"metadata\":{}},)"
           << R"({\"name\":\"event_timestamp\",\"type\":\"timestamp\",\"nullable\":true,)"
           << R"(\"metadata\":{}},)"
           << R"({\"name\":\"rate\",\"type\":\"double\",\"nullable\":true,\"metadata\":{}}]}",)"
           << R"("partitionColumns":[],"configuration":{}}})"
           << "\n";
  }
  commit << R"({"add":{"path":")" << file
         << R"(","partitionValues":{},"size":1,"modificationTime":0,"dataChange":true}})"
         << "\n";
}

TEST(PointInTimeJoin, ADeltaCommitBetweenThePassesIsNotSeenAndDoesNotFailTheJoin) {
  auto dir = TempDir::Make("granary-delta-commit-").ValueOrDie();
  const auto table = dir.path() / "table";
  std::filesystem::create_directories(table);
  WriteSource(table / "part-0.parquet", {1, 2, 3});
  CommitDelta(table, 0, "part-0.parquet");
  Definitions defs = DriverView(table, {RateFeature()}, SourceFormat::kDelta);
  auto entities = DriverOneAtHourTen();
  ViewSource vs{dir.path(), &defs, &defs.feature_views[0], {}};
  JoinOptions options;
  // A writer commits a newer row for the same driver between the passes.
  options.TEST_after_match_pass = [&] {
    WriteSource(table / "part-1.parquet", {5});
    CommitDelta(table, 1, "part-1.parquet");
  };
  ViewJoinStats stats;
  auto joined = PointInTimeJoin(*entities, vs, options, &stats);
  ASSERT_TRUE(joined.ok()) << joined.status().ToString();
  EXPECT_EQ((*joined)[0]->GetScalar(0).ValueOrDie()->ToString(), "3");  // version 0's answer
  EXPECT_EQ(stats.scan.files_total, 1);
  // The next retrieval sees version 1.
  auto next = PointInTimeJoin(*entities, vs, JoinOptions{}, nullptr);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ((*next)[0]->GetScalar(0).ValueOrDie()->ToString(), "5");
}

TEST(PointInTimeJoin, ACancelFlagStopsEveryPassWithCancelled) {
  auto dir = TempDir::Make("granary-cancel-").ValueOrDie();
  std::filesystem::create_directories(dir.path() / "src");
  WriteSource(dir.path() / "src/a.parquet", {1, 2, 3});
  Definitions defs = DriverView(dir.path() / "src", {RateFeature()});
  auto entities = DriverOneAtHourTen();
  ViewSource vs{dir.path(), &defs, &defs.feature_views[0], {}};

  // Set before the join: the match pass stops, streamed (default budget) or held (1 byte).
  for (int64_t budget : {kDefaultMemoryBudget, int64_t{1}}) {
    CancelFlag flag;
    flag.Cancel();
    JoinOptions options;
    options.memory_budget_bytes = budget;
    options.cancel = &flag;
    auto out = PointInTimeJoin(*entities, vs, options, nullptr);
    ASSERT_FALSE(out.ok()) << "budget " << budget;
    EXPECT_EQ(out.status().code(), StatusCode::kCancelled);
    EXPECT_EQ(out.status().message(), "reading feature view 'v' was cancelled");
  }
  // Set between the passes: the gather pass stops.
  CancelFlag flag;
  JoinOptions options;
  options.cancel = &flag;
  options.TEST_after_match_pass = [&] { flag.Cancel(); };
  auto out = PointInTimeJoin(*entities, vs, options, nullptr);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kCancelled);
  // A flag that is never set changes nothing.
  CancelFlag unset;
  JoinOptions plain;
  plain.cancel = &unset;
  auto ok = PointInTimeJoin(*entities, vs, plain, nullptr);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ((*ok)[0]->GetScalar(0).ValueOrDie()->ToString(), "3");
}

}  // namespace
}  // namespace granary
