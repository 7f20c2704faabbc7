// The offline engine conformance suite: one set of cases that every OfflineEngine must pass, as
// Arrow runs one generic suite against every file system. Every case goes through the interface
// only (offline_engine.h): the golden point-in-time cases of tests/golden/*.test (format:
// tests/golden/README.md), the latest rows of a view (interval bounds, ties, nulls, two join
// keys, duplicates, a random oracle), append, the source forms an engine reads or refuses, and
// cancellation.
//
// To add an engine, add an entry to Engines() below: a name and how to open it over a repository
// folder. Every suite here is instantiated over that list.
#include <arrow/api.h>
#include <arrow/io/api.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <parquet/arrow/writer.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <random>

#include "granary/common/strings.h"
#include "granary/common/temp_dir.h"
#include "granary/offline/embedded/embedded_engine.h"
#include "granary/offline/offline_engine.h"
#include "granary/registry/loader.h"
#include "granary/testing/golden_case.h"
#ifdef GRANARY_CONFORMANCE_SPARK
#include "granary/offline/spark/spark_engine.h"
#include "granary/offline/spark/spark_test_cluster.h"
#endif

namespace granary {
namespace {

// An engine under test.
struct EngineUnderTest {
  std::string name;
  // Opens the engine over the repository folder `root`. `memory_budget_bytes`: what a case asks
  // of an engine that works in local memory (engines that do not ignore it).
  std::function<Result<std::unique_ptr<OfflineEngine>>(const std::filesystem::path& root,
                                                       int64_t memory_budget_bytes)>
      open;
  // The engine works in local memory and must have partitioned (spilled) any view it read rows
  // of: the tiny-budget variant of the embedded engine.
  bool must_spill = false;
};

std::vector<EngineUnderTest> Engines() {
  std::vector<EngineUnderTest> engines;
#ifdef GRANARY_CONFORMANCE_SPARK
  // The Spark engine, in a binary of its own (offline/spark/CMakeLists.txt) that holds one real
  // cluster for every case (spark_test_cluster.h).
  engines.push_back({"spark",
                     [](const std::filesystem::path& root, int64_t) {
                       SparkEngineOptions options;
                       options.remote = SparkTestRemote();
                       options.repo_root = root;
                       return OpenSparkEngine(options);
                     },
                     false});
  return engines;
#endif
  // The embedded engine as configured by a case (the streaming match, one table in memory).
  engines.push_back({"embedded",
                     [](const std::filesystem::path& root, int64_t budget) {
                       EmbeddedEngineOptions options;
                       options.memory_budget_bytes = budget;
                       return Result<std::unique_ptr<OfflineEngine>>(
                           MakeEmbeddedEngine(root, options));
                     },
                     false});
  // The embedded engine with a budget of one byte: every view partitioned and spilled.
  engines.push_back({"embedded_spilling",
                     [](const std::filesystem::path& root, int64_t) {
                       EmbeddedEngineOptions options;
                       options.memory_budget_bytes = 1;
                       options.TEST_force_partitions = 3;
                       return Result<std::unique_ptr<OfflineEngine>>(
                           MakeEmbeddedEngine(root, options));
                     },
                     true});
  // The Spark engine: see the top of this function.
  return engines;
}

std::string EngineName(const ::testing::TestParamInfo<EngineUnderTest>& info) {
  return info.param.name;
}

const std::filesystem::path kGoldenDir = std::filesystem::path(GRANARY_SOURCE_DIR) / "tests/golden";

std::vector<std::string> GoldenFiles() {
  std::vector<std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator(kGoldenDir)) {
    if (entry.path().extension() == ".test") out.push_back(entry.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string Render(const golden::TextTable& t) {
  std::string out = Join(t.columns, " | ") + "\n";
  for (const auto& row : t.rows) out += Join(row, " | ") + "\n";
  return out;
}

// ---- Historical retrieval: every golden case ----

class EngineGoldenTest : public ::testing::TestWithParam<std::tuple<EngineUnderTest, std::string>> {
};

TEST_P(EngineGoldenTest, GivesTheExpectedRows) {
  const auto& [engine_under_test, file] = GetParam();
  auto parsed = golden::ParseGoldenCase(kGoldenDir / file);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  golden::GoldenCase g = std::move(*parsed);
  SCOPED_TRACE(g.file + ": " + g.title + " (engine " + engine_under_test.name + ")");
  auto dir = TempDir::Make("granary-conformance-").ValueOrDie();
  auto defs = golden::MaterializeCase(&g, dir.path());
  ASSERT_TRUE(defs.ok()) << defs.status().ToString();
  auto engine = engine_under_test.open(dir.path(), g.memory_budget_bytes);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  auto stream = (*engine)->GetHistoricalFeatures(*defs, g.request);
  Result<std::shared_ptr<arrow::Table>> out =
      stream.ok() ? ReadAll(**stream) : Result<std::shared_ptr<arrow::Table>>(stream.status());
  if (g.expect_error) {
    ASSERT_FALSE(out.ok()) << "expected an error containing '" << g.error_substring << "'";
    EXPECT_NE(out.status().message().find(g.error_substring), std::string::npos)
        << out.status().message();
    return;
  }
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  auto actual = golden::TableAsText(**out);
  ASSERT_TRUE(actual.ok()) << actual.status().ToString();
  auto expected = golden::NormalizeExpected(g.expected, **out);
  ASSERT_TRUE(expected.ok()) << expected.status().ToString();
  EXPECT_EQ(Render(*actual), Render(*expected));
  for (const OfflineReadStats& s : (*stream)->stats()) {
    EXPECT_LE(s.rows_matched, (*out)->num_rows()) << s.view;
    if (engine_under_test.must_spill && s.rows_returned > 0) {
      EXPECT_GT(s.partitions, 1) << s.view;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Golden, EngineGoldenTest,
                         ::testing::Combine(::testing::ValuesIn(Engines()),
                                            ::testing::ValuesIn(GoldenFiles())),
                         [](const auto& info) {
                           std::string name = std::get<1>(info.param);
                           name = name.substr(0, name.size() - 5);
                           std::replace(name.begin(), name.end(), '-', '_');
                           return std::get<0>(info.param).name + "_" + name;
                         });

// ---- Latest rows, append, sources, cancellation ----

constexpr const char* kDefinitions = R"yaml(
entities:
  - {name: customer, join_keys: [customer_id], value_type: int64}
  - {name: bay, join_keys: [zone, bay_id], value_type: [string, int32]}
data_sources:
  - name: payments
    path: data/payments
    timestamp_field: ts
    created_timestamp_column: created
  - name: occupancy
    path: data/occupancy
    timestamp_field: ts
  - name: payments_table
    table: main.parking.payments
    timestamp_field: ts
  - name: payments_query
    query: SELECT * FROM main.parking.payments WHERE amount > 0
    timestamp_field: ts
feature_views:
  - name: risk
    entities: [customer]
    source: payments
    ttl: 2d
    schema:
      - {name: amount, type: float64}
      - {name: note, type: string}
  - name: bays
    entities: [bay]
    source: occupancy
    ttl: 1h
    schema:
      - {name: occupied, type: bool}
  - name: risk_from_table
    entities: [customer]
    source: payments_table
    ttl: 2d
    schema:
      - {name: amount, type: float64}
  - name: risk_from_query
    entities: [customer]
    source: payments_query
    ttl: 2d
    schema:
      - {name: amount, type: float64}
)yaml";

Timestamp At(const char* text) { return ParseTimestamp(text).ValueOrDie(); }

// A row of `payments`: customer (null: -1), event, created (nullopt: null), amount, note.
struct Payment {
  int64_t customer;
  Timestamp event;
  std::optional<Timestamp> created;
  double amount;
  std::string note = "";
};

void WriteParquet(const std::shared_ptr<arrow::Table>& table, const std::filesystem::path& file) {
  std::filesystem::create_directories(file.parent_path());
  auto out = arrow::io::FileOutputStream::Open(file.string()).ValueOrDie();
  ASSERT_TRUE(parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), out, 1000).ok());
  ASSERT_TRUE(out->Close().ok());
}

std::shared_ptr<arrow::Table> PaymentsTable(const std::vector<Payment>& rows) {
  arrow::Int64Builder customer;
  arrow::TimestampBuilder ts(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                             arrow::default_memory_pool());
  arrow::TimestampBuilder created(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                                  arrow::default_memory_pool());
  arrow::DoubleBuilder amount;
  arrow::StringBuilder note;
  for (const Payment& p : rows) {
    (p.customer < 0 ? customer.AppendNull() : customer.Append(p.customer)).ok();
    (void)ts.Append(p.event.micros);
    (p.created ? created.Append(p.created->micros) : created.AppendNull()).ok();
    (void)amount.Append(p.amount);
    (void)note.Append(p.note);
  }
  auto schema =
      arrow::schema({arrow::field("customer_id", arrow::int64()), arrow::field("ts", ts.type()),
                     arrow::field("created", ts.type()), arrow::field("amount", arrow::float64()),
                     arrow::field("note", arrow::utf8())});
  return arrow::Table::Make(schema, {customer.Finish().ValueOrDie(), ts.Finish().ValueOrDie(),
                                     created.Finish().ValueOrDie(), amount.Finish().ValueOrDie(),
                                     note.Finish().ValueOrDie()});
}

// The rows of a stream as "customer_id=.. event=.. created=.. amount=.. note=..", sorted (the
// order of entities is unspecified).
std::vector<std::string> RowsAsText(const arrow::Table& table) {
  auto text = golden::TableAsText(table).ValueOrDie();
  std::vector<std::string> rows;
  for (const auto& row : text.rows) {
    std::vector<std::string> cells;
    for (size_t c = 0; c < row.size(); ++c) cells.push_back(text.columns[c] + "=" + row[c]);
    rows.push_back(Join(cells, " "));
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

class EngineTest : public ::testing::TestWithParam<EngineUnderTest> {
 protected:
  void SetUp() override {
    Diagnostics diag;
    LoadDefinitionsText("defs.yaml", kDefinitions, &defs_, &diag);
    ASSERT_FALSE(diag.has_errors()) << diag.ToStatus().ToString();
    auto engine = GetParam().open(dir_.path(), kDefaultMemoryBudget);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    engine_ = std::move(*engine);
  }

  void WritePayments(const std::string& file, const std::vector<Payment>& rows) {
    WriteParquet(PaymentsTable(rows), dir_.path() / "data/payments" / file);
  }

  Result<std::shared_ptr<arrow::Table>> Latest(const std::string& view,
                                               std::optional<Timestamp> start, Timestamp end,
                                               std::vector<std::string> features = {},
                                               std::vector<OfflineReadStats>* stats = nullptr) {
    LatestRowsRequest request;
    request.view = defs_.FindFeatureView(view);
    request.start = start;
    request.end = end;
    request.features = std::move(features);
    request.batch_rows = 7;  // several batches even for small inputs
    GRANARY_ASSIGN_OR_RAISE(auto stream, engine_->LatestRows(defs_, request));
    GRANARY_ASSIGN_OR_RAISE(auto table, ReadAll(*stream));
    if (stats != nullptr) *stats = stream->stats();
    return table;
  }

  TempDir dir_ = TempDir::Make("granary-conformance-").ValueOrDie();
  Definitions defs_;
  std::unique_ptr<OfflineEngine> engine_;
};

TEST_P(EngineTest, LatestRowsHaveTheWriteBatchLayout) {
  WritePayments("a.parquet", {{1, At("2026-01-01T10:00:00Z"), std::nullopt, 1.5, "x"}});
  auto out = Latest("risk", std::nullopt, At("2026-01-02T00:00:00Z"));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  const auto& schema = *(*out)->schema();
  ASSERT_EQ(schema.num_fields(), 5) << schema.ToString();
  EXPECT_EQ(schema.field(0)->name(), "customer_id");
  EXPECT_TRUE(schema.field(0)->type()->Equals(arrow::int64()));
  EXPECT_EQ(schema.field(1)->name(), kEventTimestampColumn);
  EXPECT_TRUE(schema.field(1)->type()->Equals(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")));
  EXPECT_EQ(schema.field(2)->name(), kCreatedTimestampColumn);
  EXPECT_EQ(schema.field(3)->name(), "amount");
  EXPECT_EQ(schema.field(4)->name(), "note");
  // Only the features asked for.
  auto some = Latest("risk", std::nullopt, At("2026-01-02T00:00:00Z"), {"note"});
  ASSERT_TRUE(some.ok()) << some.status().ToString();
  EXPECT_EQ(
      (*some)->schema()->field_names(),
      (std::vector<std::string>{"customer_id", "event_timestamp", "created_timestamp", "note"}));
}

TEST_P(EngineTest, LatestRowPerEntityByEventThenCreatedWithNullCreatedOldest) {
  WritePayments("a.parquet",
                {
                    {1, At("2026-01-01T10:00:00Z"), At("2026-01-01T10:00:00Z"), 1, "old"},
                    {1, At("2026-01-01T12:00:00Z"), At("2026-01-01T12:00:00Z"), 2, "a"},
                    // Same event as the one above, later created: wins.
                    {1, At("2026-01-01T12:00:00Z"), At("2026-01-01T13:00:00Z"), 3, "b"},
                    // Same event again, null created: older than any created value.
                    {1, At("2026-01-01T12:00:00Z"), std::nullopt, 4, "c"},
                    {2, At("2026-01-01T09:00:00Z"), std::nullopt, 5, "only"},
                });
  // The winner of customer 1 sits in another file, read later: files do not matter.
  WritePayments("b.parquet", {{3, At("2026-01-01T08:00:00Z"), std::nullopt, 6, "z"}});
  auto out = Latest("risk", std::nullopt, At("2026-01-02T00:00:00Z"));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(RowsAsText(**out),
            (std::vector<std::string>{
                "customer_id=1 event_timestamp=2026-01-01T12:00:00Z "
                "created_timestamp=2026-01-01T13:00:00Z amount=3 note=b",
                "customer_id=2 event_timestamp=2026-01-01T09:00:00Z created_timestamp=null "
                "amount=5 note=only",
                "customer_id=3 event_timestamp=2026-01-01T08:00:00Z created_timestamp=null "
                "amount=6 note=z",
            }));
}

TEST_P(EngineTest, IntervalBoundsAreInclusiveAndRowsOutsideAreNotRead) {
  WritePayments("a.parquet", {
                                 {1, At("2026-01-01T09:59:59Z"), std::nullopt, 1},  // before
                                 {2, At("2026-01-01T10:00:00Z"), std::nullopt, 2},  // = start
                                 {3, At("2026-01-01T11:00:00Z"), std::nullopt, 3},  // = end
                                 {3, At("2026-01-01T11:00:01Z"), std::nullopt, 4},  // after
                                 {4, At("2026-01-01T12:00:00Z"), std::nullopt, 5},  // after
                             });
  std::vector<OfflineReadStats> stats;
  auto out =
      Latest("risk", At("2026-01-01T10:00:00Z"), At("2026-01-01T11:00:00Z"), {"amount"}, &stats);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  auto rows = RowsAsText(**out);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_NE(rows[0].find("customer_id=2 event_timestamp=2026-01-01T10:00:00Z"), std::string::npos);
  EXPECT_NE(rows[1].find("customer_id=3 event_timestamp=2026-01-01T11:00:00Z"), std::string::npos);
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].view, "risk");
  EXPECT_EQ(stats[0].rows_returned, 2);  // rows in the interval
  // No start: from the first row.
  auto all = Latest("risk", std::nullopt, At("2026-01-01T11:00:00Z"), {"amount"});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ((*all)->num_rows(), 3);
}

TEST_P(EngineTest, NullJoinKeysBelongToNoEntity) {
  WritePayments("a.parquet", {
                                 {-1, At("2026-01-01T10:00:00Z"), std::nullopt, 1},
                                 {7, At("2026-01-01T10:00:00Z"), std::nullopt, 2},
                             });
  std::vector<OfflineReadStats> stats;
  auto out = Latest("risk", std::nullopt, At("2026-01-02T00:00:00Z"), {}, &stats);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ((*out)->num_rows(), 1);
  EXPECT_NE(RowsAsText(**out)[0].find("customer_id=7"), std::string::npos);
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].null_key_rows, 1);
}

TEST_P(EngineTest, TwoJoinKeysMakeOneEntity) {
  arrow::StringBuilder zone;
  arrow::Int32Builder bay;
  arrow::TimestampBuilder ts(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                             arrow::default_memory_pool());
  arrow::BooleanBuilder occupied;
  struct Row {
    const char* zone;
    int32_t bay;
    const char* at;
    bool occupied;
  };
  for (const Row& r : {Row{"north", 1, "2026-01-01T10:00:00Z", true},
                       Row{"north", 1, "2026-01-01T10:05:00Z", false},
                       Row{"north", 2, "2026-01-01T10:01:00Z", true},
                       Row{"south", 1, "2026-01-01T10:02:00Z", true}}) {
    (void)zone.Append(r.zone);
    (void)bay.Append(r.bay);
    (void)ts.Append(At(r.at).micros);
    (void)occupied.Append(r.occupied);
  }
  auto table = arrow::Table::Make(
      arrow::schema({arrow::field("zone", arrow::utf8()), arrow::field("bay_id", arrow::int32()),
                     arrow::field("ts", ts.type()), arrow::field("occupied", arrow::boolean())}),
      {zone.Finish().ValueOrDie(), bay.Finish().ValueOrDie(), ts.Finish().ValueOrDie(),
       occupied.Finish().ValueOrDie()});
  WriteParquet(table, dir_.path() / "data/occupancy/part-0.parquet");
  auto out = Latest("bays", std::nullopt, At("2026-01-02T00:00:00Z"));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(RowsAsText(**out),
            (std::vector<std::string>{
                "zone=north bay_id=1 event_timestamp=2026-01-01T10:05:00Z occupied=false",
                "zone=north bay_id=2 event_timestamp=2026-01-01T10:01:00Z occupied=true",
                "zone=south bay_id=1 event_timestamp=2026-01-01T10:02:00Z occupied=true",
            }));
}

TEST_P(EngineTest, DuplicateRowsGiveTheEntityOnce) {
  const Payment row{5, At("2026-01-01T10:00:00Z"), At("2026-01-01T10:00:00Z"), 9, "dup"};
  WritePayments("a.parquet", {row, row});
  WritePayments("b.parquet", {row});
  auto out = Latest("risk", std::nullopt, At("2026-01-02T00:00:00Z"));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ((*out)->num_rows(), 1);
  EXPECT_NE(RowsAsText(**out)[0].find("amount=9 note=dup"), std::string::npos);
}

TEST_P(EngineTest, EmptyIntervalGivesNoRows) {
  WritePayments("a.parquet", {{1, At("2026-01-01T10:00:00Z"), std::nullopt, 1}});
  auto out = Latest("risk", At("2026-02-01T00:00:00Z"), At("2026-02-02T00:00:00Z"));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ((*out)->num_rows(), 0);
}

// Random rows with many ties on event and created time (full ties carry identical values, so
// every engine, whatever its read order, must give the same rows), against the rules.
TEST_P(EngineTest, LatestRowsAgreeWithTheRulesOnRandomData) {
  for (uint64_t seed : {11u, 12u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::filesystem::remove_all(dir_.path() / "data/payments");
    std::mt19937_64 rng(seed);
    std::map<int64_t, std::tuple<int64_t, int64_t, double>> best;  // customer -> (e, c, amount)
    const Timestamp base = At("2026-01-01T00:00:00Z");
    for (int f = 0; f < 3; ++f) {
      std::vector<Payment> rows;
      for (int i = 0; i < 400; ++i) {
        Payment p;
        p.customer = static_cast<int64_t>(rng() % 60);
        p.event = base + Duration::Hours(static_cast<int64_t>(rng() % 5));
        const int c = static_cast<int>(rng() % 3);
        if (c > 0) p.created = base + Duration::Minutes(c);
        // The amount is a function of (customer, event, created): full ties are identical.
        p.amount = static_cast<double>(p.customer * 1000 +
                                       (p.event - base).micros / 3'600'000'000 * 10 + c);
        const int64_t created = p.created ? p.created->micros : INT64_MIN;
        auto key = std::make_tuple(p.event.micros, created, p.amount);
        auto it = best.find(p.customer);
        if (it == best.end() || key > it->second) best[p.customer] = key;
        rows.push_back(p);
      }
      WritePayments("part-" + std::to_string(f) + ".parquet", rows);
    }
    auto out = Latest("risk", std::nullopt, At("2026-01-02T00:00:00Z"), {"amount"});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    ASSERT_EQ((*out)->num_rows(), static_cast<int64_t>(best.size()));
    auto table = (*out)->CombineChunks().ValueOrDie();
    auto ids = std::static_pointer_cast<arrow::Int64Array>(
        table->GetColumnByName("customer_id")->chunk(0));
    auto amounts =
        std::static_pointer_cast<arrow::DoubleArray>(table->GetColumnByName("amount")->chunk(0));
    for (int64_t i = 0; i < table->num_rows(); ++i) {
      ASSERT_EQ(amounts->Value(i), std::get<2>(best.at(ids->Value(i))))
          << "customer " << ids->Value(i);
    }
  }
}

// ---- Window aggregations: equal to the embedded engine (the kernel) on random data ----

// Every function over `payments`, windows from 1h to 1d, granularity 1h. Types given (the
// definitions are not inferred from data here).
constexpr const char* kAggregationDefinitions = R"yaml(
entities:
  - {name: customer, join_keys: [customer_id], value_type: int64}
data_sources:
  - name: payments
    path: data/payments
    timestamp_field: ts
    created_timestamp_column: created
feature_views:
  - name: risk_windows
    entities: [customer]
    source: payments
    granularity: 1h
    schema:
      - {name: amount, type: float64}
    aggregations:
      - {name: n_3h, function: count, window: 3h}
      - {name: spend_3h, function: sum, column: amount, window: 3h, type: float64}
      - {name: mean_1d, function: mean, column: amount, window: 1d}
      - {name: sd_1d, function: stddev, column: amount, window: 1d}
      - {name: low_2h, function: min, column: amount, window: 2h, type: float64}
      - {name: high_note_2h, function: max, column: note, window: 2h, type: string}
      - {name: first_note_1d, function: first, column: note, window: 1d, type: string}
      - {name: last_amount_1h, function: last, column: amount, window: 1h, type: float64}
      - {name: notes_1d, function: count_distinct, column: note, window: 1d}
      - {name: notes_2h, function: count, column: note, window: 2h}
)yaml";

// Two tables' cells equal: floating values within 1e-9 relative (engines may add in another
// order: docs/AGGREGATIONS.md), everything else as text. Names the first difference.
std::string FirstDifference(const arrow::Table& actual, const arrow::Table& expected) {
  if (!actual.schema()->Equals(*expected.schema())) {
    return "schemas differ: " + actual.schema()->ToString() + " vs " +
           expected.schema()->ToString();
  }
  if (actual.num_rows() != expected.num_rows()) {
    return fmt::format("{} rows, expected {}", actual.num_rows(), expected.num_rows());
  }
  auto a = golden::TableAsText(actual).ValueOrDie();
  auto e = golden::TableAsText(expected).ValueOrDie();
  for (size_t r = 0; r < a.rows.size(); ++r) {
    for (size_t c = 0; c < a.columns.size(); ++c) {
      const std::string& x = a.rows[r][c];
      const std::string& y = e.rows[r][c];
      if (x == y) continue;
      const auto type = actual.schema()->field(static_cast<int>(c))->type()->id();
      if ((type == arrow::Type::DOUBLE || type == arrow::Type::FLOAT) && x != "null" &&
          y != "null" &&
          std::abs(std::stod(x) - std::stod(y)) <= 1e-9 * std::max(1.0, std::abs(std::stod(y)))) {
        continue;
      }
      return fmt::format("row {} column {}: {}, expected {}", r, a.columns[c], x, y);
    }
  }
  return "";
}

class EngineAggregationTest : public ::testing::TestWithParam<EngineUnderTest> {
 protected:
  void SetUp() override {
    Diagnostics diag;
    LoadDefinitionsText("defs.yaml", kAggregationDefinitions, &defs_, &diag);
    ASSERT_FALSE(diag.has_errors()) << diag.ToStatus().ToString();
    auto engine = GetParam().open(dir_.path(), kDefaultMemoryBudget);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    engine_ = std::move(*engine);
    // The reference: the embedded engine, whose values are the kernel's.
    reference_ = MakeEmbeddedEngine(dir_.path(), EmbeddedEngineOptions{});
  }

  // Random payments over three days in three files: ties on time (with different values, so
  // that first/last depend on the read order), null keys, repeated notes, empty notes.
  void WriteRandomPayments(uint64_t seed) {
    std::mt19937_64 rng(seed);
    const Timestamp base = At("2026-03-01T00:00:00Z");
    for (int f = 0; f < 3; ++f) {
      std::vector<Payment> rows;
      for (int i = 0; i < 300; ++i) {
        Payment p;
        p.customer = rng() % 25 == 0 ? -1 : static_cast<int64_t>(rng() % 20);
        p.event = base + Duration::Minutes(static_cast<int64_t>(rng() % (3 * 24 * 4)) * 15);
        if (rng() % 3 == 0) p.event = p.event + Duration::Microseconds(1);
        p.amount = static_cast<double>(static_cast<int64_t>(rng() % 2001) - 1000) / 8;
        p.note = std::string(1, static_cast<char>('a' + rng() % 6));
        if (p.note == "f") p.note = "";
        rows.push_back(p);
      }
      WriteParquet(PaymentsTable(rows),
                   dir_.path() / "data/payments" / ("part-" + std::to_string(f) + ".parquet"));
    }
  }

  TempDir dir_ = TempDir::Make("granary-conformance-").ValueOrDie();
  Definitions defs_;
  std::unique_ptr<OfflineEngine> engine_;
  std::unique_ptr<OfflineEngine> reference_;
};

TEST_P(EngineAggregationTest, AggregationsAtEntityRowsEqualTheKernelsOnRandomData) {
  for (uint64_t seed : {21u, 22u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::filesystem::remove_all(dir_.path() / "data/payments");
    WriteRandomPayments(seed);
    std::mt19937_64 rng(seed * 7);
    const Timestamp base = At("2026-03-01T00:00:00Z");
    arrow::Int64Builder ids;
    arrow::TimestampBuilder times(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                                  arrow::default_memory_pool());
    for (int i = 0; i < 250; ++i) {
      (void)ids.Append(static_cast<int64_t>(rng() % 24));  // 20..23 have no events
      // On the quarter hours the events use, a microsecond either side, or anywhere.
      int64_t t =
          (base + Duration::Minutes(static_cast<int64_t>(rng() % (4 * 24 * 4)) * 15)).micros;
      const int shift = static_cast<int>(rng() % 4);
      t += shift == 0   ? 0
           : shift == 1 ? 1
           : shift == 2 ? -1
                        : static_cast<int64_t>(rng() % 900'000'000);
      (void)times.Append(t);
    }
    HistoricalRequest request;
    request.entities =
        arrow::Table::Make(arrow::schema({arrow::field("customer_id", arrow::int64()),
                                          arrow::field("event_timestamp", times.type())}),
                           {ids.Finish().ValueOrDie(), times.Finish().ValueOrDie()});
    for (const auto& a : defs_.FindFeatureView("risk_windows")->aggregations) {
      request.features.push_back(FeatureRef::Parse("risk_windows:" + a.name).ValueOrDie());
    }
    request.features.push_back(FeatureRef::Parse("risk_windows:amount").ValueOrDie());
    // The table and the training-set summary's figures of the view.
    auto run = [&](OfflineEngine& engine,
                   OfflineReadStats* summary) -> Result<std::shared_ptr<arrow::Table>> {
      GRANARY_ASSIGN_OR_RAISE(auto stream, engine.GetHistoricalFeatures(defs_, request));
      GRANARY_ASSIGN_OR_RAISE(auto table, ReadAll(*stream));
      if (stream->stats().size() != 1) return Status::Internal("not one view's stats");
      *summary = stream->stats()[0];
      return table;
    };
    OfflineReadStats actual_summary, expected_summary;
    auto actual = run(*engine_, &actual_summary);
    if (!engine_->capabilities().window_aggregations) {
      // An engine without them says so (offline_engine.h).
      EXPECT_EQ(actual.status().code(), StatusCode::kNotImplemented);
      return;
    }
    auto expected = run(*reference_, &expected_summary);
    ASSERT_TRUE(expected.ok()) << expected.status().ToString();
    ASSERT_TRUE(actual.ok()) << actual.status().ToString();
    EXPECT_EQ(FirstDifference(**actual, **expected), "");
    // The summary says the same: rows matched by the plain feature, and rows with events in the
    // longest window (1d), which some rows have and some do not.
    EXPECT_TRUE(actual_summary.plain_features);
    EXPECT_EQ(actual_summary.aggregation_window, Duration::Days(1));
    EXPECT_EQ(actual_summary.plain_features, expected_summary.plain_features);
    EXPECT_EQ(actual_summary.aggregation_window, expected_summary.aggregation_window);
    EXPECT_EQ(actual_summary.rows_matched, expected_summary.rows_matched);
    EXPECT_EQ(actual_summary.rows_with_events, expected_summary.rows_with_events);
    EXPECT_GT(expected_summary.rows_with_events, 0);
    EXPECT_LT(expected_summary.rows_with_events, 250);
    EXPECT_GT(expected_summary.rows_matched, 0);
  }
}

TEST_P(EngineAggregationTest, EventsForTilesAreTheSourcesInRangeInReadOrder) {
  WriteRandomPayments(31);
  EventsRequest request;
  request.view = defs_.FindFeatureView("risk_windows");
  request.start = At("2026-03-01T12:00:00Z");
  request.end = At("2026-03-02T12:00:00.000001Z");
  request.batch_rows = 50;
  auto read = [&](OfflineEngine& engine) -> Result<std::shared_ptr<arrow::Table>> {
    GRANARY_ASSIGN_OR_RAISE(auto stream, engine.ReadEvents(defs_, request));
    return ReadAll(*stream);
  };
  auto actual = read(*engine_);
  if (!engine_->capabilities().window_aggregations) {
    EXPECT_EQ(actual.status().code(), StatusCode::kNotImplemented);
    return;
  }
  auto expected = read(*reference_);
  ASSERT_TRUE(expected.ok()) << expected.status().ToString();
  ASSERT_TRUE(actual.ok()) << actual.status().ToString();
  // Keys, time, then each column once: amount (spend_3h, ...) and note (high_note_2h, ...).
  EXPECT_EQ(Join((*actual)->schema()->field_names(), ","),
            "customer_id,event_timestamp,amount,note");
  EXPECT_GT((*actual)->num_rows(), 100);
  EXPECT_EQ((*actual)->GetColumnByName("customer_id")->null_count(), 0);
  EXPECT_EQ(FirstDifference(**actual, **expected), "");
}

INSTANTIATE_TEST_SUITE_P(Engines, EngineAggregationTest, ::testing::ValuesIn(Engines()),
                         EngineName);

TEST_P(EngineTest, AppendedRowsAreReadAfterwardsOrTheEngineSaysItCannotAppend) {
  WritePayments("a.parquet", {{1, At("2026-01-01T10:00:00Z"), std::nullopt, 1, "before"}});
  auto rows = PaymentsTable({{1, At("2026-01-01T11:00:00Z"), std::nullopt, 2, "pushed"},
                             {8, At("2026-01-01T11:00:00Z"), std::nullopt, 3, "new"}});
  auto appended = engine_->Append(*defs_.FindDataSource("payments"), *rows, SystemClock::Default());
  if (!engine_->capabilities().append) {
    ASSERT_EQ(appended.status().code(), StatusCode::kNotImplemented);
    return;
  }
  ASSERT_TRUE(appended.ok()) << appended.status().ToString();
  EXPECT_EQ(appended->rows, 2);
  EXPECT_FALSE(appended->files.empty());
  auto out = Latest("risk", std::nullopt, At("2026-01-02T00:00:00Z"), {"note"});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  auto text = RowsAsText(**out);
  ASSERT_EQ(text.size(), 2u);
  EXPECT_NE(text[0].find("note=pushed"), std::string::npos) << text[0];
  EXPECT_NE(text[1].find("note=new"), std::string::npos) << text[1];
}

TEST_P(EngineTest, SourceFormsAreReadOrRefusedAsTheCapabilitiesSay) {
  const OfflineEngineCapabilities caps = engine_->capabilities();
  struct Form {
    const char* source;
    const char* view;
    bool supported;
  };
  for (const Form& form : {Form{"payments", "risk", caps.path_sources},
                           Form{"payments_table", "risk_from_table", caps.table_sources},
                           Form{"payments_query", "risk_from_query", caps.query_sources}}) {
    SCOPED_TRACE(form.source);
    const DataSource& source = *defs_.FindDataSource(form.source);
    Status valid = engine_->ValidateSource(source);
    if (form.supported) {
      EXPECT_TRUE(valid.ok()) << valid.ToString();
      continue;
    }
    ASSERT_EQ(valid.code(), StatusCode::kNotImplemented) << valid.ToString();
    EXPECT_NE(valid.message().find(form.source), std::string::npos) << valid.message();
    // Every operation on such a source says the same, before reading anything.
    EXPECT_EQ(engine_->Inspect(source).status().code(), StatusCode::kNotImplemented);
    auto latest = Latest(form.view, std::nullopt, At("2026-01-02T00:00:00Z"));
    EXPECT_EQ(latest.status().code(), StatusCode::kNotImplemented) << latest.status().ToString();
    HistoricalRequest request;
    request.entities = arrow::Table::Make(
        arrow::schema(
            {arrow::field("customer_id", arrow::int64()),
             arrow::field("event_timestamp", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"))}),
        {arrow::MakeArrayOfNull(arrow::int64(), 1).ValueOrDie(),
         arrow::MakeArrayOfNull(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"), 1).ValueOrDie()});
    request.features = {{form.view, "amount"}};
    EXPECT_EQ(engine_->GetHistoricalFeatures(defs_, request).status().code(),
              StatusCode::kNotImplemented);
  }
}

TEST_P(EngineTest, InspectGivesTheColumnsOrNothingWhenThereIsNoDataYet) {
  auto missing = engine_->Inspect(*defs_.FindDataSource("payments"));
  ASSERT_TRUE(missing.ok()) << missing.status().ToString();
  EXPECT_FALSE(missing->has_value());
  WritePayments("a.parquet", {{1, At("2026-01-01T10:00:00Z"), std::nullopt, 1}});
  auto found = engine_->Inspect(*defs_.FindDataSource("payments"));
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_TRUE(found->has_value());
  EXPECT_NE((*found)->schema->GetFieldByName("amount"), nullptr);
  EXPECT_NE((*found)->schema->GetFieldByName("ts"), nullptr);
}

TEST_P(EngineTest, WorkStopsWhenCancelled) {
  WritePayments("a.parquet", {{1, At("2026-01-01T10:00:00Z"), std::nullopt, 1}});
  CancelFlag cancel;
  cancel.Cancel();
  LatestRowsRequest request;
  request.view = defs_.FindFeatureView("risk");
  request.end = At("2026-01-02T00:00:00Z");
  request.cancel = &cancel;
  auto stream = engine_->LatestRows(defs_, request);
  Status st = stream.status();
  if (stream.ok()) st = ReadAll(**stream).status();
  EXPECT_EQ(st.code(), StatusCode::kCancelled) << st.ToString();
}

TEST_P(EngineTest, WritingATrainingSetIntoTheEngineIsSupportedOrNotImplemented) {
  HistoricalRequest request;
  request.entity_table = "main.parking.entities";
  request.features = {{"risk", "amount"}};
  HistoricalOutput output;
  output.table = "main.parking.training";
  auto written = engine_->WriteHistoricalFeatures(defs_, request, output);
  if (!engine_->capabilities().historical_to_store) {
    EXPECT_EQ(written.status().code(), StatusCode::kNotImplemented);
  }
  if (!engine_->capabilities().entity_sql) {
    EXPECT_EQ(engine_->GetHistoricalFeatures(defs_, request).status().code(),
              StatusCode::kNotImplemented);
  }
}

INSTANTIATE_TEST_SUITE_P(Engines, EngineTest, ::testing::ValuesIn(Engines()), EngineName);

}  // namespace
}  // namespace granary
