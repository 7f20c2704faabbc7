// OfflineEngine::GetHistoricalFeatures (the embedded engine, built by OpenOfflineEngine) on Feast's
// own data (../shared/testdata/feast), request resolution and entity-row checks.
#include "granary/offline/historical.h"

#include <arrow/api.h>
#include <arrow/io/api.h>
#include <arrow/util/byte_size.h>
#include <gtest/gtest.h>
#include <parquet/arrow/reader.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <limits>
#include <random>
#include <thread>

#include "granary/common/temp_dir.h"
#include "granary/offline/engine_factory.h"
#include "granary/offline/entity_rows.h"
#include "granary/offline/table_io.h"
#include "granary/registry/loader.h"
#include "granary/testing/test_seed.h"
#include "granary/testing/testdata.h"
#include "granary/types/arrow_convert.h"

namespace granary {
namespace {

const std::filesystem::path kTestData = testing::TestDataDir();

Definitions Load(const std::string& yaml) {
  Diagnostics diag;
  Definitions defs;
  LoadDefinitionsText("defs.yaml", yaml, &defs, &diag);
  EXPECT_FALSE(diag.has_errors()) << diag.ToStatus().ToString();
  return defs;
}

RepoConfig TestDataRepo() {
  RepoConfig config;
  config.root = kTestData;
  config.project = "feast";
  return config;
}

// A training set through the engine granary.yaml would build (the embedded one), read whole.
Result<std::shared_ptr<arrow::Table>> GetHistoricalFeatures(const RepoConfig& config,
                                                            const Definitions& defs,
                                                            const HistoricalRequest& request) {
  GRANARY_ASSIGN_OR_RAISE(auto engine, OpenOfflineEngine(config));
  GRANARY_ASSIGN_OR_RAISE(auto stream, engine->GetHistoricalFeatures(defs, request));
  return ReadAll(*stream);
}

// Column `name` of `table` as text values ("null" for null).
std::vector<std::string> Column(const arrow::Table& table, const std::string& name) {
  auto column = table.GetColumnByName(name);
  EXPECT_NE(column, nullptr) << name;
  if (column == nullptr) return {};
  auto array = arrow::Concatenate(column->chunks()).ValueOrDie();
  ValueType type = FromArrowType(*array->type()).ValueOrDie();
  std::vector<std::string> out;
  for (int64_t i = 0; i < array->length(); ++i) {
    Value v = ValueAt(*array, i, type).ValueOrDie();
    out.push_back(v.is_null()           ? "null"
                  : v.is<Timestamp>()   ? FormatTimestamp(v.get<Timestamp>())
                  : v.is<std::string>() ? v.get<std::string>()
                                        : v.ToString());
  }
  return out;
}

constexpr const char* kFeastPairs = R"yaml(
entities:
  - {name: customer, join_keys: [customer_id], value_type: int64}
  - {name: driver, join_keys: [driver_id], value_type: int64}
data_sources:
  - {name: bookings, path: feast/bookings.csv, timestamp_field: event_timestamp,
     created_timestamp_column: created_timestamp}
  - {name: transactions, path: feast/transactions.csv, timestamp_field: event_timestamp,
     created_timestamp_column: created_timestamp}
feature_views:
  - name: driver_bookings
    entities: [driver]
    source: bookings
    ttl: 2d
    schema:
      - {name: completed_bookings, type: int64}
  - name: customer_transactions
    entities: [customer]
    source: transactions
    ttl: 1d
    schema:
      - {name: daily_transactions, type: float64}
feature_services:
  - name: training_v1
    features: [driver_bookings, customer_transactions]
)yaml";

TEST(HistoricalFeatures, FeastPointInTimeCsvsGiveTheHandCheckedAnswer) {
  GRANARY_REQUIRE_TESTDATA("feast");
  Definitions defs = Load(kFeastPairs);
  HistoricalRequest request;
  request.entities = ReadTableFile(kTestData / "feast/customer_driver_pairs.csv").ValueOrDie();
  request.feature_service = "training_v1";
  auto out = GetHistoricalFeatures(TestDataRepo(), defs, request);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ((*out)->schema()->field_names(),
            (std::vector<std::string>{"customer_id", "driver_id", "event_timestamp",
                                      "completed_bookings", "daily_transactions"}));
  // Row by row (see docs/POINT_IN_TIME.md, "Worked example: Feast's bookings"):
  // 1001/8001 on 09-02: bookings 300 (09-01), transactions 100 (09-01; 08-31 is past the 1d ttl)
  // 1001/8002 on 09-02: two bookings rows on 09-01, the one created later (500) wins
  // 1001/8002 on 09-03: the 09-01 booking sits exactly at t - 2d: included; transactions expired
  // 2001/8002 on 09-03: 500; transactions of 09-01 expired (1d)
  // 2001/8002 on 09-04: both expired
  EXPECT_EQ(Column(**out, "completed_bookings"),
            (std::vector<std::string>{"300", "500", "500", "500", "null"}));
  EXPECT_EQ(Column(**out, "daily_transactions"),
            (std::vector<std::string>{"100", "100", "null", "null", "null"}));
  EXPECT_EQ(Column(**out, "event_timestamp")[0], "2020-09-02T00:00:00Z");
}

// Reads driver_stats.parquet independently of the engine.
struct DriverRow {
  int64_t driver;
  int64_t ts;
  int64_t created;
  double conv_rate;
  int64_t trips;
};

std::vector<DriverRow> ReadDriverStats() {
  auto in = arrow::io::ReadableFile::Open((kTestData / "feast/driver_stats.parquet").string())
                .ValueOrDie();
  auto reader = parquet::arrow::OpenFile(in, arrow::default_memory_pool()).ValueOrDie();
  std::shared_ptr<arrow::Table> table = reader->ReadTable().ValueOrDie();
  auto col = [&](const char* name) {
    return arrow::Concatenate(table->GetColumnByName(name)->chunks()).ValueOrDie();
  };
  auto ts = col("event_timestamp"), created = col("created"), driver = col("driver_id"),
       conv = col("conv_rate"), trips = col("avg_daily_trips");
  std::vector<DriverRow> rows;
  for (int64_t i = 0; i < table->num_rows(); ++i) {
    rows.push_back({static_cast<const arrow::Int64Array&>(*driver).Value(i),
                    static_cast<const arrow::TimestampArray&>(*ts).Value(i) / 1000,  // ns -> us
                    static_cast<const arrow::TimestampArray&>(*created).Value(i),
                    static_cast<const arrow::FloatArray&>(*conv).Value(i),
                    static_cast<const arrow::Int32Array&>(*trips).Value(i)});
  }
  return rows;
}

TEST(HistoricalFeatures, FeastDriverStatsMatchAnIndependentScanRowByRow) {
  GRANARY_REQUIRE_TESTDATA("feast");
  const char* yaml = R"yaml(
entities:
  - {name: driver, join_keys: [driver_id], value_type: int64}
data_sources:
  - {name: driver_stats, path: feast/driver_stats.parquet, timestamp_field: event_timestamp,
     created_timestamp_column: created}
feature_views:
  - name: driver_hourly
    entities: [driver]
    source: driver_stats
    ttl: 2h
    schema:
      - {name: conv_rate, type: float32}
      - {name: avg_daily_trips, type: int64}
)yaml";
  Definitions defs = Load(yaml);
  const auto rows = ReadDriverStats();
  // Entity rows: every driver every 97 minutes over the data's span, plus a repeated row.
  int64_t lo = INT64_MAX, hi = INT64_MIN;
  for (const auto& r : rows) lo = std::min(lo, r.ts), hi = std::max(hi, r.ts);
  arrow::Int64Builder ids;
  arrow::TimestampBuilder times(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                                arrow::default_memory_pool());
  std::vector<std::pair<int64_t, int64_t>> entity_rows;
  for (int64_t t = lo - 3'600'000'000; t <= hi + 3'600'000'000; t += 97 * 60'000'000LL) {
    for (int64_t d : {1001, 1002, 1003, 1004, 1005, 1006}) entity_rows.emplace_back(d, t);
  }
  entity_rows.push_back(entity_rows[entity_rows.size() / 2]);
  for (const auto& [d, t] : entity_rows) {
    (void)ids.Append(d);
    (void)times.Append(t);
  }
  HistoricalRequest request;
  request.entities =
      arrow::Table::Make(arrow::schema({arrow::field("driver_id", arrow::int64()),
                                        arrow::field("event_timestamp", times.type())}),
                         {ids.Finish().ValueOrDie(), times.Finish().ValueOrDie()});
  request.features = {{"driver_hourly", "conv_rate"}, {"driver_hourly", "avg_daily_trips"}};
  auto out = GetHistoricalFeatures(TestDataRepo(), defs, request);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  auto conv = Column(**out, "conv_rate");
  auto trips = Column(**out, "avg_daily_trips");
  ASSERT_EQ(conv.size(), entity_rows.size());
  int matched = 0;
  for (size_t i = 0; i < entity_rows.size(); ++i) {
    const auto [driver, t] = entity_rows[i];
    const DriverRow* best = nullptr;
    for (const auto& r : rows) {
      if (r.driver != driver || r.ts > t || r.ts < t - 7'200'000'000) continue;
      if (best == nullptr || std::pair(r.ts, r.created) >= std::pair(best->ts, best->created)) {
        best = &r;
      }
    }
    if (best == nullptr) {
      EXPECT_EQ(conv[i], "null") << "row " << i;
      EXPECT_EQ(trips[i], "null") << "row " << i;
    } else {
      ++matched;
      EXPECT_EQ(conv[i], Value(static_cast<float>(best->conv_rate)).ToString()) << "row " << i;
      EXPECT_EQ(trips[i], std::to_string(best->trips)) << "row " << i;
    }
  }
  EXPECT_GT(matched, 100);
}

TEST(HistoricalFeatures, ACancelledRetrievalReturnsCancelledNamingTheView) {
  GRANARY_REQUIRE_TESTDATA("feast");
  Definitions defs = Load(kFeastPairs);
  HistoricalRequest request;
  request.entities = ReadTableFile(kTestData / "feast/customer_driver_pairs.csv").ValueOrDie();
  request.feature_service = "training_v1";
  CancelFlag flag;
  request.cancel = &flag;
  auto out = GetHistoricalFeatures(TestDataRepo(), defs, request);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  flag.Cancel();
  out = GetHistoricalFeatures(TestDataRepo(), defs, request);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kCancelled);
  EXPECT_EQ(out.status().message(), "reading feature view 'driver_bookings' was cancelled");
}

TEST(HistoricalFeatures, UnknownNamesAreErrorsWithSuggestions) {
  Definitions defs = Load(kFeastPairs);
  HistoricalRequest request;
  request.features = {{"driver_booking", "completed_bookings"}};
  auto r = ResolveFeatures(defs, request);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("unknown feature view 'driver_booking' in "
                                      "'driver_booking:completed_bookings', did you mean "
                                      "'driver_bookings'?"),
            std::string::npos)
      << r.status().message();
  request.features = {{"driver_bookings", "completed_booking"}};
  r = ResolveFeatures(defs, request);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("has no feature 'completed_booking', did you mean"),
            std::string::npos)
      << r.status().message();
  request.features = {};
  request.feature_service = "training";
  r = ResolveFeatures(defs, request);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("unknown feature service 'training'"), std::string::npos);
}

TEST(HistoricalFeatures, TheEntityTimeIsEventTimestampOrTheOnlyTimestampColumn) {
  GRANARY_REQUIRE_TESTDATA("feast");
  Definitions defs = Load(kFeastPairs);
  auto make = [](std::vector<std::shared_ptr<arrow::Field>> fields) {
    arrow::ArrayVector arrays;
    for (const auto& f : fields)
      arrays.push_back(arrow::MakeArrayOfNull(f->type(), 1).ValueOrDie());
    return arrow::Table::Make(arrow::schema(fields), arrays, 1);
  };
  const auto ts = arrow::timestamp(arrow::TimeUnit::MICRO);
  HistoricalRequest request;
  request.features = {{"driver_bookings", "completed_bookings"}};
  request.entities = make({arrow::field("driver_id", arrow::int64()), arrow::field("when", ts)});
  auto out = GetHistoricalFeatures(TestDataRepo(), defs, request);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ((*out)->schema()->field(1)->ToString(), "when: timestamp[us, tz=UTC]");

  request.entities = make(
      {arrow::field("driver_id", arrow::int64()), arrow::field("a", ts), arrow::field("b", ts)});
  out = GetHistoricalFeatures(TestDataRepo(), defs, request);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("several timestamp columns (a, b)"), std::string::npos);

  request.entities = make({arrow::field("driver_id", arrow::int64())});
  out = GetHistoricalFeatures(TestDataRepo(), defs, request);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("no 'event_timestamp' column"), std::string::npos);
}

// Found by fuzz/flight_entities_fuzz.cc
// (fuzz/corpus/flight_entities/crash_ttl_before_earliest_time): an entity time at the earliest
// int64 microsecond minus the view's ttl overflowed (UBSan, so `make test-asan` catches it) when
// the source scan's lower bound was set; now there is none.
TEST(HistoricalFeatures, AnEntityTimeAtTheEarliestMicrosecondHasNoLowerBound) {
  GRANARY_REQUIRE_TESTDATA("feast");
  Definitions defs = Load(kFeastPairs);
  arrow::Int64Builder ids;
  arrow::TimestampBuilder times(arrow::timestamp(arrow::TimeUnit::MICRO),
                                arrow::default_memory_pool());
  ASSERT_TRUE(ids.Append(1001).ok());
  ASSERT_TRUE(times.Append(std::numeric_limits<int64_t>::min()).ok());
  HistoricalRequest request;
  request.features = {{"driver_bookings", "completed_bookings"}};
  request.entities = arrow::Table::Make(
      arrow::schema({arrow::field("driver_id", arrow::int64()),
                     arrow::field("event_timestamp", arrow::timestamp(arrow::TimeUnit::MICRO))}),
      {ids.Finish().ValueOrDie(), times.Finish().ValueOrDie()});
  auto out = GetHistoricalFeatures(TestDataRepo(), defs, request);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ((*out)->num_rows(), 1);
  EXPECT_EQ((*out)->GetColumnByName("completed_bookings")->null_count(), 1);
}

TEST(HistoricalFeatures, NoEntityRowsGiveAnEmptyTableWithAChunkPerColumn) {
  GRANARY_REQUIRE_TESTDATA("feast");
  Definitions defs = Load(kFeastPairs);
  HistoricalRequest request;
  request.features = {{"driver_bookings", "completed_bookings"}};
  request.entities = arrow::Table::MakeEmpty(
                         arrow::schema({arrow::field("driver_id", arrow::int64()),
                                        arrow::field("event_timestamp",
                                                     arrow::timestamp(arrow::TimeUnit::MICRO))}))
                         .ValueOrDie();
  HistoricalJoinOptions options;
  auto joined = JoinHistoricalFeatures(kTestData, defs, request, options, nullptr);
  ASSERT_TRUE(joined.ok()) << joined.status().ToString();
  auto streamed = GetHistoricalFeatures(TestDataRepo(), defs, request);
  ASSERT_TRUE(streamed.ok()) << streamed.status().ToString();
  for (const auto& table : {*joined, *streamed}) {
    EXPECT_EQ(table->num_rows(), 0);
    EXPECT_EQ(table->schema()->field_names().back(), "completed_bookings");
    for (const auto& column : table->columns()) {
      ASSERT_GE(column->num_chunks(), 1);  // what arrow::Concatenate needs
      EXPECT_TRUE(arrow::Concatenate(column->chunks()).ok());
    }
  }
}

// Two views of the same entities, so that the second one's match pass runs ahead, beside the
// first one's gather; the first one's source has a value its gather cannot read (the match pass
// reads only keys and times). The retrieval used to wait for the match ahead before returning
// the gather's error; it now stops it. The hook blocks the match ahead until it is stopped (for
// at most 2 minutes: without the stop, the test fails instead of hanging).
TEST(HistoricalFeatures, AFailedGatherStopsTheNextViewsMatchAheadInsteadOfWaitingForIt) {
  auto dir = TempDir::Make("granary-ahead-").ValueOrDie();
  auto write = [&](const char* name, const std::string& text) {
    std::ofstream(dir.path() / name) << text;
  };
  write("a.csv",
        "driver_id,event_timestamp,trips\n"
        "1,2026-01-01T00:00:00Z,3\n"
        "2,2026-01-01T00:00:00Z,not a number\n");
  write("b.csv",
        "driver_id,event_timestamp,rate\n"
        "1,2026-01-01T00:00:00Z,0.5\n"
        "2,2026-01-01T00:00:00Z,0.25\n");
  Definitions defs = Load(R"yaml(
entities:
  - {name: driver, join_keys: [driver_id], value_type: int64}
data_sources:
  - {name: a, path: a.csv, timestamp_field: event_timestamp}
  - {name: b, path: b.csv, timestamp_field: event_timestamp}
feature_views:
  - name: trips
    entities: [driver]
    source: a
    schema:
      - {name: trips, type: int64}
  - name: rates
    entities: [driver]
    source: b
    schema:
      - {name: rate, type: float64}
)yaml");
  HistoricalRequest request;
  request.features = {{"trips", "trips"}, {"rates", "rate"}};
  arrow::Int64Builder ids;
  ASSERT_TRUE(ids.AppendValues({1, 2}).ok());
  arrow::TimestampBuilder times(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                                arrow::default_memory_pool());
  const int64_t noon = ParseTimestamp("2026-01-01T12:00:00Z").ValueOrDie().micros;
  ASSERT_TRUE(times.AppendValues({noon, noon}).ok());
  request.entities =
      arrow::Table::Make(arrow::schema({arrow::field("driver_id", arrow::int64()),
                                        arrow::field("event_timestamp", times.type())}),
                         {ids.Finish().ValueOrDie(), times.Finish().ValueOrDie()});
  std::atomic<bool> ran_ahead{false}, stopped{false};
  HistoricalJoinOptions options;
  options.TEST_before_match_ahead = [&](const CancelFlag& flag) {
    ran_ahead = true;
    for (int waited_ms = 0; waited_ms < 120'000 && !flag.cancelled(); ++waited_ms) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    stopped = flag.cancelled();
  };
  auto out = JoinHistoricalFeatures(dir.path(), defs, request, options);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument) << out.status().ToString();
  EXPECT_NE(out.status().message().find("not a number"), std::string::npos)
      << out.status().ToString();
  EXPECT_TRUE(ran_ahead);  // the second view's match did run beside the first one's gather
  EXPECT_TRUE(stopped);    // and the gather's error stopped it

  // A retrieval that succeeds never stops the match ahead.
  write("a.csv",
        "driver_id,event_timestamp,trips\n"
        "1,2026-01-01T00:00:00Z,3\n"
        "2,2026-01-01T00:00:00Z,4\n");
  ran_ahead = false;
  bool stopped_before_matching = true;
  options.TEST_before_match_ahead = [&](const CancelFlag& flag) {
    ran_ahead = true;
    stopped_before_matching = flag.cancelled();
  };
  HistoricalStats stats;
  auto fine = JoinHistoricalFeatures(dir.path(), defs, request, options, &stats);
  ASSERT_TRUE(fine.ok()) << fine.status().ToString();
  EXPECT_TRUE(ran_ahead);
  EXPECT_FALSE(stopped_before_matching);
  ASSERT_EQ(stats.views.size(), 2u);
  EXPECT_TRUE(stats.views[1].join.matched_ahead);
  EXPECT_EQ(Column(**fine, "trips"), (std::vector<std::string>{"3", "4"}));
  EXPECT_EQ(Column(**fine, "rate"), (std::vector<std::string>{"0.5", "0.25"}));
}

// Entity rows of several chunks (a file of several row groups), compacted: the same values in the
// same chunks, each column one copy whose chunks share its buffers (counted once), and each column
// taken whole without a copy; chunks of separate arrays are concatenated as before.
TEST(EntityRows, CompactedChunksAreOneCopyTakenWholeWithoutAnother) {
  const uint64_t seed = testing::TestSeed();
  SCOPED_TRACE(testing::SeedTrace(seed));
  std::mt19937_64 rng(seed);
  auto random_chunks = [&](int64_t n) {
    std::vector<int64_t> cuts;
    for (int64_t at = 0; at < n;) {
      at += 1 + static_cast<int64_t>(rng() % static_cast<uint64_t>(n / 3 + 1));
      if (at < n) cuts.push_back(at);
    }
    return cuts;
  };
  for (int round = 0; round < 10; ++round) {
    const int64_t n = 1 + static_cast<int64_t>(rng() % 5000);
    arrow::Int64Builder keys;
    arrow::TimestampBuilder times(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                                  arrow::default_memory_pool());
    arrow::StringBuilder names;
    arrow::BooleanBuilder flags;
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_TRUE(keys.Append(static_cast<int64_t>(rng() % 100)).ok());
      ASSERT_TRUE(times.Append(static_cast<int64_t>(rng() % 1'000'000'000)).ok());
      ASSERT_TRUE(
          (rng() % 5 == 0 ? names.AppendNull() : names.Append("n" + std::to_string(rng() % 1000)))
              .ok());
      ASSERT_TRUE((rng() % 7 == 0 ? flags.AppendNull() : flags.Append(rng() % 2 == 0)).ok());
    }
    // Chunks of separate arrays, as a file's row groups are read.
    arrow::ChunkedArrayVector columns;
    arrow::FieldVector fields;
    const char* column_names[] = {"bay_id", "event_timestamp", "name", "flag"};
    int c = 0;
    for (arrow::ArrayBuilder* builder :
         std::initializer_list<arrow::ArrayBuilder*>{&keys, &times, &names, &flags}) {
      std::shared_ptr<arrow::Array> whole;
      ASSERT_TRUE(builder->Finish(&whole).ok());
      arrow::ArrayVector chunks;
      int64_t at = 0;
      std::vector<int64_t> cuts = random_chunks(n);
      cuts.push_back(n);
      for (int64_t cut : cuts) {
        chunks.push_back(arrow::Concatenate({whole->Slice(at, cut - at)}).ValueOrDie());
        at = cut;
      }
      columns.push_back(std::make_shared<arrow::ChunkedArray>(chunks, whole->type()));
      fields.push_back(arrow::field(column_names[c++], whole->type()));
    }
    auto table = arrow::Table::Make(arrow::schema(fields), columns, n);
    auto compact = CompactChunks(table);
    ASSERT_TRUE(compact.ok()) << compact.status().ToString();
    ASSERT_TRUE((*compact)->Equals(*table));
    for (int i = 0; i < table->num_columns(); ++i) {
      SCOPED_TRACE(column_names[i]);
      const auto& before = *table->column(i);
      const auto& after = *(*compact)->column(i);
      ASSERT_EQ(after.num_chunks(), before.num_chunks());
      for (int k = 0; k < before.num_chunks(); ++k) {
        EXPECT_EQ(after.chunk(k)->length(), before.chunk(k)->length());
      }
      // One copy: the chunks share their buffers, counted once.
      EXPECT_LE(arrow::util::TotalBufferSize(after), arrow::util::TotalBufferSize(before));
      auto whole = CombinedChunks(after);
      ASSERT_TRUE(whole.ok()) << whole.status().ToString();
      EXPECT_TRUE((*whole)->Equals(*arrow::Concatenate(before.chunks()).ValueOrDie()));
      EXPECT_EQ((*whole)->null_count(),
                arrow::Concatenate(before.chunks()).ValueOrDie()->null_count());
      ASSERT_TRUE((*whole)->ValidateFull().ok());
      // No copy: the range of the chunks' own buffers.
      EXPECT_EQ((*whole)->data()->buffers, after.chunk(0)->data()->buffers);
      // Separate arrays: concatenated, the same values.
      auto concatenated = CombinedChunks(before);
      ASSERT_TRUE(concatenated.ok());
      EXPECT_TRUE((*concatenated)->Equals(**whole));
      if (before.num_chunks() > 1) {
        EXPECT_NE((*concatenated)->data()->buffers, before.chunk(0)->data()->buffers);
      }
    }
  }
}

}  // namespace
}  // namespace granary
