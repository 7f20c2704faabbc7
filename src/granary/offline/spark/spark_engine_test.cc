// The Spark engine against a real cluster (testing/spark_cluster.h; one per binary): the worked
// examples of docs/POINT_IN_TIME.md, latest rows, partition pruning, appends and training sets
// written in the cluster, entity rows that stay in the cluster, and concurrent Delta appends by
// both engines. The golden cases run through every engine in the conformance suite.
#include "granary/offline/spark/spark_engine.h"

#include <arrow/api.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <set>
#include <thread>

#include "granary/common/clock.h"
#include "granary/common/strings.h"
#include "granary/common/temp_dir.h"
#include "granary/offline/embedded/embedded_engine.h"
#include "granary/offline/table_io.h"
#include "granary/spark_connect/spark_connect_client.h"
#include "granary/testing/spark_cluster.h"
#include "granary/types/arrow_convert.h"

namespace granary {
namespace {

testing::SparkCluster* g_cluster = nullptr;

class ClusterEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    auto cluster = testing::SparkCluster::Start();
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    cluster_ = std::move(*cluster);
    g_cluster = cluster_.get();
  }
  void TearDown() override {
    g_cluster = nullptr;
    cluster_.reset();
  }

 private:
  std::unique_ptr<testing::SparkCluster> cluster_;
};

const auto* const kEnvironment = ::testing::AddGlobalTestEnvironment(new ClusterEnvironment);

constexpr ValueType kInt64 = ValueType::Scalar(ScalarType::kInt64);
constexpr ValueType kInt32 = ValueType::Scalar(ScalarType::kInt32);
constexpr ValueType kFloat64 = ValueType::Scalar(ScalarType::kFloat64);
constexpr ValueType kString = ValueType::Scalar(ScalarType::kString);
constexpr ValueType kTime = ValueType::Scalar(ScalarType::kTimestamp);

// A table from text: columns "name:type", cells as text ("null" is null), cast by Granary's own
// conversions (the ones CSV sources use).
std::shared_ptr<arrow::Table> Rows(const std::vector<std::pair<std::string, ValueType>>& columns,
                                   const std::vector<std::vector<std::string>>& rows) {
  arrow::FieldVector fields;
  arrow::ArrayVector arrays;
  for (size_t c = 0; c < columns.size(); ++c) {
    arrow::StringBuilder b;
    for (const auto& row : rows) {
      EXPECT_TRUE((row[c] == "null" ? b.AppendNull() : b.Append(row[c])).ok());
    }
    std::shared_ptr<arrow::Array> text = b.Finish().ValueOrDie();
    auto typed = CastToValueType(text, columns[c].second, columns[c].first);
    EXPECT_TRUE(typed.ok()) << typed.status().ToString();
    fields.push_back(arrow::field(columns[c].first, (*typed)->type()));
    arrays.push_back(*typed);
  }
  return arrow::Table::Make(arrow::schema(fields), arrays, static_cast<int64_t>(rows.size()));
}

// Cells of a table as text for comparison: "null" for null.
std::vector<std::string> Column(const arrow::Table& table, const std::string& name) {
  std::vector<std::string> out;
  auto column = table.GetColumnByName(name);
  EXPECT_NE(column, nullptr) << name;
  if (column == nullptr) return out;
  for (const auto& chunk : column->chunks()) {
    for (int64_t i = 0; i < chunk->length(); ++i) {
      auto scalar = chunk->GetScalar(i).ValueOrDie();
      if (!scalar->is_valid) {
        out.push_back("null");
      } else if (chunk->type_id() == arrow::Type::TIMESTAMP) {
        out.push_back(FormatTimestamp(Timestamp::FromMicros(
            std::static_pointer_cast<arrow::TimestampScalar>(scalar)->value)));
      } else {
        out.push_back(scalar->ToString());
      }
    }
  }
  return out;
}

class SparkEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<TempDir>(TempDir::Make("granary-spark-engine-").ValueOrDie());
    auto engine = OpenSparkEngine({.remote = g_cluster->url(), .repo_root = dir_->path()});
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    engine_ = std::move(*engine);
  }

  // One entity `driver` (driver_id: int64 unless told) and one view over `files` (each a table
  // written as data/<view>/part-00N.parquet).
  FeatureView& AddView(const std::string& name, Duration ttl,
                       std::vector<std::pair<std::string, ValueType>> features,
                       const std::vector<std::shared_ptr<arrow::Table>>& files,
                       const std::string& created = "", ValueType key_type = kInt64) {
    if (defs_.FindEntity("driver") == nullptr) {
      defs_.entities.push_back(
          Entity{.name = "driver", .join_keys = {"driver_id"}, .join_key_types = {key_type}});
    }
    std::filesystem::path folder = dir_->path() / "data" / name;
    std::filesystem::create_directories(folder);
    for (size_t i = 0; i < files.size(); ++i) {
      EXPECT_TRUE(WriteTableFile(*files[i], folder / fmt::format("part-{:03d}.parquet", i)).ok());
    }
    DataSource source;
    source.name = name + "_source";
    source.path = "data/" + name;
    source.timestamp_field = "event_timestamp";
    source.created_timestamp_column = created;
    defs_.data_sources.push_back(source);
    FeatureView view;
    view.name = name;
    view.entities = {"driver"};
    view.source = source.name;
    view.ttl = ttl;
    for (const auto& [f, t] : features) view.schema.push_back(Field{.name = f, .type = t});
    defs_.feature_views.push_back(view);
    return defs_.feature_views.back();
  }

  std::shared_ptr<arrow::Table> Historical(HistoricalRequest request) {
    auto stream = engine_->GetHistoricalFeatures(defs_, request);
    EXPECT_TRUE(stream.ok()) << stream.status().ToString();
    if (!stream.ok()) return nullptr;
    auto table = ReadAll(**stream);
    EXPECT_TRUE(table.ok()) << table.status().ToString();
    return table.ok() ? *table : nullptr;
  }

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<OfflineEngine> engine_;
  Definitions defs_;
};

TEST_F(SparkEngineTest, TtlWindowIsClosedAtBothEnds) {
  AddView("driver_stats", Duration::Hours(1), {{"conv_rate", kFloat64}},
          {Rows({{"driver_id", kInt64}, {"event_timestamp", kTime}, {"conv_rate", kFloat64}},
                {{"1", "2024-01-01T09:00:00Z", "0.1"},
                 {"2", "2024-01-01T08:59:59.999999Z", "0.2"},
                 {"2", "2024-01-01T10:00:00.000001Z", "0.3"}})});
  HistoricalRequest request;
  request.entities = Rows({{"driver_id", kInt64}, {"event_timestamp", kTime}},
                          {{"1", "2024-01-01T10:00:00Z"}, {"2", "2024-01-01T10:00:00Z"}});
  request.features = {{"driver_stats", "conv_rate"}};
  auto out = Historical(request);
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(out->schema()->ToString(),
            "driver_id: int64\nevent_timestamp: timestamp[us, tz=UTC]\nconv_rate: double");
  EXPECT_EQ(Column(*out, "conv_rate"), (std::vector<std::string>{"0.1", "null"}));
}

TEST_F(SparkEngineTest, LatestEventThenCreatedWinsAndNullCreatedIsOldest) {
  AddView("trips", Duration::Days(7), {{"trips", kInt64}},
          {Rows({{"driver_id", kInt64},
                 {"event_timestamp", kTime},
                 {"created", kTime},
                 {"trips", kInt64}},
                {{"1", "2024-01-02", "2024-01-05", "20"},
                 {"1", "2024-01-03", "2024-01-03", "30"},
                 {"1", "2024-01-01", "2024-01-09", "10"},
                 {"2", "2024-01-03", "2024-01-04", "41"},
                 {"2", "2024-01-03", "2024-01-06", "43"},
                 {"3", "2024-01-03", "2024-01-05", "51"},
                 {"3", "2024-01-03", "null", "50"}})},
          "created");
  HistoricalRequest request;
  request.entities = Rows({{"driver_id", kInt64}, {"event_timestamp", kTime}},
                          {{"1", "2024-01-04"}, {"2", "2024-01-04"}, {"3", "2024-01-04"}});
  request.features = {{"trips", "trips"}};
  auto out = Historical(request);
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(Column(*out, "trips"), (std::vector<std::string>{"30", "43", "51"}));
}

TEST_F(SparkEngineTest, FullTieTakesTheRowReadLastAcrossFiles) {
  auto schema = std::vector<std::pair<std::string, ValueType>>{
      {"driver_id", kInt64}, {"event_timestamp", kTime}, {"created", kTime}, {"rating", kFloat64}};
  AddView("ratings", Duration::Days(1), {{"rating", kFloat64}},
          {Rows(schema, {{"1", "2024-01-01", "2024-01-01", "1.0"},
                         {"1", "2024-01-01", "2024-01-01", "2.0"}}),
           Rows(schema, {{"1", "2024-01-01", "2024-01-01", "3.0"},
                         {"1", "2024-01-01", "2024-01-01", "4.0"}})},
          "created");
  HistoricalRequest request;
  request.entities =
      Rows({{"driver_id", kInt64}, {"event_timestamp", kTime}}, {{"1", "2024-01-01T12:00:00Z"}});
  request.features = {{"ratings", "rating"}};
  auto out = Historical(request);
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(Column(*out, "rating"), (std::vector<std::string>{"4"}));
}

TEST_F(SparkEngineTest, CreatedTimestampCutoffPreventsBackfillLeakage) {
  AddView("backfill", Duration::Days(7), {{"value", kInt64}},
          {Rows({{"driver_id", kInt64},
                 {"event_timestamp", kTime},
                 {"created", kTime},
                 {"value", kInt64}},
                {{"1", "2024-01-01", "2024-01-01", "10"},
                 {"1", "2024-01-02", "2024-01-09", "99"},
                 {"1", "2024-01-01", "2024-01-08", "98"}})},
          "created");
  HistoricalRequest request;
  request.entities = Rows({{"driver_id", kInt64}, {"event_timestamp", kTime}},
                          {{"1", "2024-01-03"}, {"1", "2024-01-09"}});
  request.features = {{"backfill", "value"}};
  auto without = Historical(request);
  ASSERT_NE(without, nullptr);
  EXPECT_EQ(Column(*without, "value"), (std::vector<std::string>{"99", "99"}));
  request.created_timestamp_cutoff = true;
  auto with = Historical(request);
  ASSERT_NE(with, nullptr);
  EXPECT_EQ(Column(*with, "value"), (std::vector<std::string>{"10", "99"}));
}

TEST_F(SparkEngineTest, DuplicatesOrderNullsAndPassThroughColumnsAreKept) {
  // The source's key is int32; the entity declares int64: they match by value.
  AddView("speed", Duration::Days(0), {{"speed", kFloat64}},
          {Rows({{"driver_id", kInt32}, {"event_timestamp", kTime}, {"speed", kFloat64}},
                {{"1", "2024-01-01", "1.5"},
                 {"2", "2024-01-01", "2.5"},
                 {"null", "2024-01-01", "9"},
                 {"1", "null", "7.5"}})});
  HistoricalRequest request;
  request.entities = Rows({{"label", kString}, {"driver_id", kInt64}, {"event_timestamp", kTime}},
                          {{"a", "2", "2024-01-02"},
                           {"b", "1", "2024-01-02"},
                           {"c", "2", "2024-01-02"},
                           {"d", "null", "2024-01-02"},
                           {"e", "1", "null"},
                           {"f", "1", "2023-12-31"},
                           {"g", "2", "2024-01-02"}});
  request.features = {{"speed", "speed"}};
  request.full_feature_names = true;
  auto out = Historical(request);
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(Column(*out, "label"), (std::vector<std::string>{"a", "b", "c", "d", "e", "f", "g"}));
  EXPECT_EQ(Column(*out, "speed__speed"),
            (std::vector<std::string>{"2.5", "1.5", "2.5", "null", "null", "null", "2.5"}));
}

// Entity rows that live in the cluster (--entities-sql, --entities-table): the same training set
// as uploaded rows, in the query's order, duplicates and nulls kept; the time column found by
// the same rule (a DATE column is midnight UTC); the result written in the cluster too.
TEST_F(SparkEngineTest, EntityRowsGivenAsSqlOrATableStayInTheClusterAndKeepTheirOrder) {
  ASSERT_TRUE(engine_->capabilities().entity_sql);
  AddView(
      "speed", Duration::Days(0), {{"speed", kFloat64}},
      {Rows({{"driver_id", kInt64}, {"event_timestamp", kTime}, {"speed", kFloat64}},
            {{"1", "2024-01-01", "1.5"}, {"2", "2024-01-01", "2.5"}, {"1", "2024-01-03", "3"}})});
  const std::string values =
      "VALUES ('a', 2L, TIMESTAMP'2024-01-02 00:00:00'), ('b', 1L, TIMESTAMP'2024-01-02 "
      "00:00:00'), ('c', 2L, TIMESTAMP'2024-01-02 00:00:00'), ('d', NULL, TIMESTAMP'2024-01-02 "
      "00:00:00'), ('e', 1L, NULL), ('f', 1L, TIMESTAMP'2023-12-31 00:00:00'), ('g', 1L, "
      "TIMESTAMP'2024-01-04 00:00:00') AS t(label, driver_id, event_timestamp)";
  HistoricalRequest request;
  request.entity_sql = "SELECT * FROM " + values;
  request.features = {{"speed", "speed"}};
  auto out = Historical(request);
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(out->schema()->field_names(),
            (std::vector<std::string>{"label", "driver_id", "event_timestamp", "speed"}));
  EXPECT_TRUE(
      out->schema()->field(2)->type()->Equals(*arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")));
  EXPECT_EQ(Column(*out, "label"), (std::vector<std::string>{"a", "b", "c", "d", "e", "f", "g"}));
  const std::vector<std::string> expected = {"2.5", "1.5", "2.5", "null", "null", "null", "3"};
  EXPECT_EQ(Column(*out, "speed"), expected);

  // The query's ORDER BY is the training set's order.
  request.entity_sql = "SELECT * FROM " + values + " ORDER BY label DESC";
  out = Historical(request);
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(Column(*out, "label"), (std::vector<std::string>{"g", "f", "e", "d", "c", "b", "a"}));
  EXPECT_EQ(Column(*out, "speed"),
            (std::vector<std::string>{"3", "null", "null", "null", "2.5", "1.5", "2.5"}));

  // A catalog table (of one file: a table's order is its files' read order) whose only time
  // column is a DATE.
  auto client = spark_connect::SparkConnectClient::Open(g_cluster->url()).ValueOrDie();
  const std::string table =
      "default.g_entities_" + std::to_string(std::hash<std::string>{}(dir_->path().string()));
  ASSERT_TRUE(client
                  ->RunSql("CREATE TABLE " + table +
                           " USING parquet AS SELECT /*+ COALESCE(1) */ * FROM VALUES (1L, "
                           "DATE'2024-01-02'), (2L, "
                           "DATE'2024-01-05'), (1L, DATE'2024-01-03') AS t(driver_id, day)")
                  .ok());
  request.entity_sql.clear();
  request.entity_table = table;
  out = Historical(request);
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(Column(*out, "day"),
            (std::vector<std::string>{"2024-01-02T00:00:00Z", "2024-01-05T00:00:00Z",
                                      "2024-01-03T00:00:00Z"}));
  EXPECT_EQ(Column(*out, "speed"), (std::vector<std::string>{"1.5", "2.5", "3"}));

  // Written in the cluster: nothing comes back here.
  std::string out_path = (dir_->path() / "training_set").string();
  auto written = engine_->WriteHistoricalFeatures(defs_, request, {.path = out_path});
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  auto rows =
      client->ExecuteSql("SELECT driver_id, speed FROM delta.`" + out_path + "` ORDER BY day")
          .ValueOrDie();
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  while (auto batch = rows->Next().ValueOrDie()) batches.push_back(batch);
  auto back = arrow::Table::FromRecordBatches(rows->schema(), batches).ValueOrDie();
  EXPECT_EQ(Column(*back, "speed"), (std::vector<std::string>{"1.5", "3", "2.5"}));
  ASSERT_TRUE(client->RunSql("DROP TABLE " + table).ok());

  // Errors name the rows and the fix.
  request.entity_table.clear();
  request.entity_sql = "SELECT 1L AS customer_id, TIMESTAMP'2024-01-02 00:00:00' AS t";
  auto missing = engine_->GetHistoricalFeatures(defs_, request);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("has no column 'driver_id'"), std::string::npos)
      << missing.status().message();
  request.entity_sql = "SELECT 1L AS driver_id";
  auto no_time = engine_->GetHistoricalFeatures(defs_, request);
  ASSERT_FALSE(no_time.ok());
  EXPECT_EQ(no_time.status().code(), StatusCode::kInvalidArgument) << no_time.status().ToString();
  request.entity_sql = "SELECT * FROM no_such_table_here";
  auto unknown = engine_->GetHistoricalFeatures(defs_, request);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("the entity rows' query"), std::string::npos)
      << unknown.status().message();
  request.entities = Rows({{"driver_id", kInt64}, {"event_timestamp", kTime}}, {});
  auto both = engine_->GetHistoricalFeatures(defs_, request);
  EXPECT_EQ(both.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(SparkEngineTest, TwoViewsWithTheirOwnTtlsAndManyEntityRowsUploadedInChunks) {
  AddView("short", Duration::Hours(1), {{"a", kInt64}},
          {Rows({{"driver_id", kInt64}, {"event_timestamp", kTime}, {"a", kInt64}},
                {{"1", "2024-01-01T00:00:00Z", "1"}, {"2", "2024-01-01T00:00:00Z", "2"}})});
  AddView("long", Duration::Days(10), {{"b", kInt64}},
          {Rows({{"driver_id", kInt64}, {"event_timestamp", kTime}, {"b", kInt64}},
                {{"1", "2024-01-01T00:00:00Z", "10"}, {"2", "2023-12-01T00:00:00Z", "20"}})});
  // 30,000 entity rows in chunks of 64 KiB: the upload takes several artifacts.
  engine_ =
      OpenSparkEngine(
          {.remote = g_cluster->url(), .repo_root = dir_->path(), .upload_chunk_bytes = 64 << 10})
          .ValueOrDie();
  std::vector<std::vector<std::string>> rows;
  for (int i = 0; i < 30000; ++i) {
    rows.push_back(
        {std::to_string(1 + i % 3), i % 2 == 0 ? "2024-01-01T00:30:00Z" : "2024-01-01T02:00:00Z"});
  }
  HistoricalRequest request;
  request.entities = Rows({{"driver_id", kInt64}, {"event_timestamp", kTime}}, rows);
  request.features = {{"long", "b"}, {"short", "a"}};
  auto out = Historical(request);
  ASSERT_NE(out, nullptr);
  ASSERT_EQ(out->num_rows(), 30000);
  auto a = Column(*out, "a");
  auto b = Column(*out, "b");
  EXPECT_EQ(out->schema()->field(2)->name(), "b");  // requested order
  for (int i = 0; i < 30000; ++i) {
    int driver = 1 + i % 3;
    bool early = i % 2 == 0;
    std::string want_a = driver == 3 || !early ? "null" : std::to_string(driver);
    std::string want_b = driver == 1 ? "10" : "null";
    ASSERT_EQ(a[i], want_a) << "row " << i;
    ASSERT_EQ(b[i], want_b) << "row " << i;
  }
}

TEST_F(SparkEngineTest, CsvSourcesWithOffsetsCompareAsInstants) {
  defs_.entities.push_back(
      Entity{.name = "sensor", .join_keys = {"sensor_id"}, .join_key_types = {kString}});
  std::filesystem::create_directories(dir_->path() / "csv");
  {
    std::ofstream f(dir_->path() / "csv" / "readings.csv");
    f << "sensor_id,event_timestamp,level\n"
      << "s1,2024-03-01T10:30:00+01:00,1.5\n"
      << "s1,2024-03-01 09:45:00,2.5\n"
      << "s2,2024-03-01T04:00:00-05:00,7.0\n";
  }
  defs_.data_sources.push_back(DataSource{.name = "readings_source",
                                          .format = SourceFormat::kCsv,
                                          .path = "csv/readings.csv",
                                          .timestamp_field = "event_timestamp"});
  FeatureView view;
  view.name = "readings";
  view.entities = {"sensor"};
  view.source = "readings_source";
  view.ttl = Duration::Hours(1);
  view.schema = {Field{.name = "level", .type = kFloat64}};
  defs_.feature_views.push_back(view);
  HistoricalRequest request;
  request.entities = Rows({{"sensor_id", kString}, {"event_timestamp", kString}},
                          {{"s1", "2024-03-01T09:40:00Z"},
                           {"s1", "2024-03-01T11:00:00+01:00"},
                           {"s2", "2024-03-01T09:00:00Z"},
                           {"s2", "2024-03-01T08:59:59Z"}});
  request.features = {{"readings", "level"}};
  auto out = Historical(request);
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(Column(*out, "event_timestamp"),
            (std::vector<std::string>{"2024-03-01T09:40:00Z", "2024-03-01T10:00:00Z",
                                      "2024-03-01T09:00:00Z", "2024-03-01T08:59:59Z"}));
  EXPECT_EQ(Column(*out, "level"), (std::vector<std::string>{"1.5", "2.5", "7", "null"}));
}

TEST_F(SparkEngineTest, ErrorsNameTheViewAndTheSource) {
  AddView("present", Duration::Days(1), {{"x", kInt64}},
          {Rows({{"driver_id", kInt64}, {"event_timestamp", kTime}, {"x", kInt64}},
                {{"1", "2024-01-01", "1"}})});
  defs_.feature_views.back().source = "missing_source";
  defs_.data_sources.push_back(DataSource{
      .name = "missing_source", .path = "data/nowhere", .timestamp_field = "event_timestamp"});
  HistoricalRequest request;
  request.entities =
      Rows({{"driver_id", kInt64}, {"event_timestamp", kTime}}, {{"1", "2024-01-02"}});
  request.features = {{"present", "x"}};
  auto stream = engine_->GetHistoricalFeatures(defs_, request);
  ASSERT_FALSE(stream.ok());
  EXPECT_EQ(stream.status().code(), StatusCode::kNotFound) << stream.status().ToString();
  EXPECT_NE(stream.status().message().find("views present"), std::string::npos)
      << stream.status().message();
  EXPECT_NE(stream.status().message().find("data/nowhere"), std::string::npos)
      << stream.status().message();

  request.entities = Rows({{"driver", kInt64}, {"event_timestamp", kTime}}, {{"1", "2024-01-02"}});
  auto no_key = engine_->GetHistoricalFeatures(defs_, request);
  ASSERT_FALSE(no_key.ok());
  EXPECT_NE(no_key.status().message().find("no column 'driver_id'"), std::string::npos);
}

TEST_F(SparkEngineTest, LatestRowsPerEntityInTheInterval) {
  AddView("latest", Duration::Days(1), {{"v", kInt64}, {"w", kString}},
          {Rows({{"driver_id", kInt64},
                 {"event_timestamp", kTime},
                 {"created", kTime},
                 {"v", kInt64},
                 {"w", kString}},
                {{"1", "2024-01-01", "2024-01-01", "1", "a"},
                 {"1", "2024-01-02", "2024-01-02", "2", "b"},
                 {"1", "2024-01-05", "2024-01-05", "5", "e"},  // after the interval
                 {"2", "2024-01-02", "2024-01-03", "20", "x"},
                 {"2", "2024-01-02", "2024-01-02", "21", "y"},  // older created
                 {"3", "2023-12-01", "2023-12-01", "30", "z"},  // before the interval
                 {"null", "2024-01-02", "2024-01-02", "40", "n"}})},
          "created");
  LatestRowsRequest request;
  request.view = &defs_.feature_views.back();
  request.start = Timestamp::FromMicros(ParseTimestamp("2024-01-01").ValueOrDie().micros);
  request.end = ParseTimestamp("2024-01-04").ValueOrDie();
  auto stream = engine_->LatestRows(defs_, request);
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  EXPECT_EQ((*stream)->schema()->ToString(),
            "driver_id: int64\nevent_timestamp: timestamp[us, tz=UTC]\ncreated_timestamp: "
            "timestamp[us, tz=UTC]\nv: int64\nw: string");
  auto table = ReadAll(**stream).ValueOrDie();
  auto sorted = table->SelectColumns({0, 1, 3, 4}).ValueOrDie();
  std::map<std::string, std::string> by_driver;
  auto ids = Column(*table, "driver_id");
  auto ts = Column(*table, "event_timestamp");
  auto vs = Column(*table, "v");
  auto ws = Column(*table, "w");
  for (size_t i = 0; i < ids.size(); ++i) by_driver[ids[i]] = ts[i] + " " + vs[i] + " " + ws[i];
  EXPECT_EQ(by_driver, (std::map<std::string, std::string>{{"1", "2024-01-02T00:00:00Z 2 b"},
                                                           {"2", "2024-01-02T00:00:00Z 20 x"}}));
}

TEST_F(SparkEngineTest, DatePartitionsOutsideTheRangeAreNotRead) {
  defs_.entities.push_back(
      Entity{.name = "driver", .join_keys = {"driver_id"}, .join_key_types = {kInt64}});
  auto schema = std::vector<std::pair<std::string, ValueType>>{
      {"driver_id", kInt64}, {"event_timestamp", kTime}, {"v", kInt64}};
  std::filesystem::path root = dir_->path() / "parted";
  for (const char* day : {"2024-01-01", "2024-01-02", "2024-01-03"}) {
    std::filesystem::create_directories(root / (std::string("day=") + day));
    ASSERT_TRUE(WriteTableFile(*Rows(schema, {{"1", std::string(day) + "T12:00:00Z",
                                               std::string(day).substr(8)}}),
                               root / (std::string("day=") + day) / "part-0.parquet")
                    .ok());
  }
  // A partition that holds no row of the range and cannot be read at all: reading it fails.
  // (Last in path order: Spark infers the schema from the first file.)
  std::filesystem::create_directories(root / "day=2024-06-01");
  { std::ofstream(root / "day=2024-06-01" / "part-0.parquet") << "not parquet"; }
  defs_.data_sources.push_back(DataSource{.name = "parted_source",
                                          .path = "parted",
                                          .timestamp_field = "event_timestamp",
                                          .date_partition_column = "day"});
  FeatureView view;
  view.name = "parted";
  view.entities = {"driver"};
  view.source = "parted_source";
  view.ttl = Duration::Days(1);
  view.schema = {Field{.name = "v", .type = kInt64}};
  defs_.feature_views.push_back(view);
  HistoricalRequest request;
  request.entities = Rows({{"driver_id", kInt64}, {"event_timestamp", kTime}},
                          {{"1", "2024-01-02T13:00:00Z"}, {"1", "2024-01-03T11:00:00Z"}});
  request.features = {{"parted", "v"}};
  auto out = Historical(request);
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(Column(*out, "v"), (std::vector<std::string>{"2", "2"}));

  LatestRowsRequest latest;
  latest.view = &defs_.feature_views.back();
  latest.start = ParseTimestamp("2024-01-02").ValueOrDie();
  latest.end = ParseTimestamp("2024-01-03T23:00:00Z").ValueOrDie();
  auto stream = engine_->LatestRows(defs_, latest);
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  auto table = ReadAll(**stream);
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  EXPECT_EQ(Column(**table, "v"), (std::vector<std::string>{"3"}));
  // The cluster's own count: two of the four partition folders were read.
  auto stats = (*stream)->stats();
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].files_total, 2) << stats[0].engine_detail;
  EXPECT_NE(stats[0].engine_detail.find("2 partitions read"), std::string::npos)
      << stats[0].engine_detail;
}

TEST_F(SparkEngineTest, AppendsToADeltaTableAndWritesTrainingSetsInTheCluster) {
  defs_.entities.push_back(
      Entity{.name = "driver", .join_keys = {"driver_id"}, .join_key_types = {kInt64}});
  auto schema = std::vector<std::pair<std::string, ValueType>>{
      {"driver_id", kInt64}, {"event_timestamp", kTime}, {"v", kInt64}};
  std::filesystem::path table_dir = dir_->path() / "delta_stats";
  auto client = spark_connect::SparkConnectClient::Open(g_cluster->url()).ValueOrDie();
  ASSERT_TRUE(client
                  ->RunSql("CREATE TABLE delta.`" + table_dir.string() +
                           "` (driver_id BIGINT, event_timestamp TIMESTAMP, v BIGINT) USING delta")
                  .ok());
  ASSERT_TRUE(client
                  ->RunSql("INSERT INTO delta.`" + table_dir.string() +
                           "` VALUES (1, TIMESTAMP'2024-01-01 00:00:00', 1)")
                  .ok());
  DataSource source{.name = "delta_source",
                    .format = SourceFormat::kDelta,
                    .path = "delta_stats",
                    .timestamp_field = "event_timestamp"};
  defs_.data_sources.push_back(source);
  FeatureView view;
  view.name = "delta_view";
  view.entities = {"driver"};
  view.source = "delta_source";
  view.ttl = Duration::Days(7);
  view.schema = {Field{.name = "v", .type = kInt64}};
  defs_.feature_views.push_back(view);

  auto appended =
      engine_->Append(source, *Rows(schema, {{"1", "2024-01-02", "2"}, {"2", "2024-01-02", "3"}}),
                      SystemClock::Default());
  ASSERT_TRUE(appended.ok()) << appended.status().ToString();
  EXPECT_EQ(appended->rows, 2);
  EXPECT_EQ(appended->delta_version, 2);

  HistoricalRequest request;
  request.entities =
      Rows({{"driver_id", kInt64}, {"event_timestamp", kTime}, {"note", kString}},
           {{"1", "2024-01-03", "x"}, {"2", "2024-01-03", "y"}, {"3", "2024-01-03", "z"}});
  request.features = {{"delta_view", "v"}};
  auto out = Historical(request);
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(Column(*out, "v"), (std::vector<std::string>{"2", "3", "null"}));

  // The same training set written as a Delta table by the cluster, read back through Spark.
  std::string out_path = (dir_->path() / "training_set").string();
  auto written = engine_->WriteHistoricalFeatures(defs_, request, {.path = out_path});
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  auto rows =
      client->ExecuteSql("SELECT driver_id, note, v FROM delta.`" + out_path + "` ORDER BY note")
          .ValueOrDie();
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  while (auto batch = rows->Next().ValueOrDie()) batches.push_back(batch);
  auto back = arrow::Table::FromRecordBatches(rows->schema(), batches).ValueOrDie();
  EXPECT_EQ(Column(*back, "note"), (std::vector<std::string>{"x", "y", "z"}));
  EXPECT_EQ(Column(*back, "v"), (std::vector<std::string>{"2", "3", "null"}));
}

// The embedded engine's Delta writer and Spark's append to one table at the same time: Delta's
// optimistic concurrency (put-if-absent commits; each writer retries past a version another took)
// lands every commit, and both engines read every row.
TEST_F(SparkEngineTest, ConcurrentDeltaAppendsByBothEnginesAllLand) {
  defs_.entities.push_back(
      Entity{.name = "driver", .join_keys = {"driver_id"}, .join_key_types = {kInt64}});
  const std::filesystem::path table_dir = dir_->path() / "shared_delta";
  auto client = spark_connect::SparkConnectClient::Open(g_cluster->url()).ValueOrDie();
  ASSERT_TRUE(client
                  ->RunSql("CREATE TABLE delta.`" + table_dir.string() +
                           "` (driver_id BIGINT, event_timestamp TIMESTAMP, v BIGINT) USING delta")
                  .ok());
  DataSource source{.name = "shared_source",
                    .format = SourceFormat::kDelta,
                    .path = "shared_delta",
                    .timestamp_field = "event_timestamp"};
  defs_.data_sources.push_back(source);
  FeatureView view;
  view.name = "shared";
  view.entities = {"driver"};
  view.source = "shared_source";
  view.schema = {Field{.name = "v", .type = kInt64}};
  defs_.feature_views.push_back(view);
  auto embedded = MakeEmbeddedEngine(dir_->path());
  ASSERT_TRUE(embedded->capabilities().append);

  // Writer w appends `per_writer` commits of 2 rows each, ids w*1000 + 2i and + 2i + 1.
  constexpr int kWriters = 4;  // 0, 1: embedded; 2, 3: Spark
  constexpr int kPerWriter = 4;
  std::vector<std::string> errors(kWriters);
  std::vector<std::vector<int64_t>> versions(kWriters);
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      OfflineEngine& engine = w < 2 ? *embedded : *engine_;
      for (int i = 0; i < kPerWriter; ++i) {
        const int64_t id = w * 1000 + 2 * i;
        auto rows = Rows({{"driver_id", kInt64}, {"event_timestamp", kTime}, {"v", kInt64}},
                         {{std::to_string(id), "2024-01-01", std::to_string(id)},
                          {std::to_string(id + 1), "2024-01-01", std::to_string(id + 1)}});
        auto appended = engine.Append(source, *rows, SystemClock::Default());
        if (!appended.ok()) {
          errors[w] = appended.status().ToString();
          return;
        }
        versions[w].push_back(appended->delta_version);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int w = 0; w < kWriters; ++w) EXPECT_EQ(errors[w], "") << "writer " << w;

  std::vector<std::string> expected;
  for (int w = 0; w < kWriters; ++w) {
    for (int i = 0; i < 2 * kPerWriter; ++i) expected.push_back(std::to_string(w * 1000 + i));
  }
  std::sort(expected.begin(), expected.end());
  // Every commit is in the log: versions 1 .. 16 after the CREATE (0), none lost or doubled.
  auto history = client->ExecuteSql("DESCRIBE HISTORY delta.`" + table_dir.string() + "`");
  ASSERT_TRUE(history.ok()) << history.status().ToString();
  std::vector<int64_t> log_versions;
  for (;;) {
    auto batch = (*history)->Next();
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    if (*batch == nullptr) break;
    auto column = std::static_pointer_cast<arrow::Int64Array>((*batch)->GetColumnByName("version"));
    ASSERT_NE(column, nullptr);
    for (int64_t r = 0; r < column->length(); ++r) log_versions.push_back(column->Value(r));
  }
  std::sort(log_versions.begin(), log_versions.end());
  std::vector<int64_t> all_versions(kWriters * kPerWriter + 1);
  std::iota(all_versions.begin(), all_versions.end(), 0);
  EXPECT_EQ(log_versions, all_versions);
  // The embedded writer's answers name distinct versions (Spark's may name a later one).
  std::set<int64_t> embedded_versions;
  for (int w = 0; w < 2; ++w) embedded_versions.insert(versions[w].begin(), versions[w].end());
  EXPECT_EQ(embedded_versions.size(), 2u * kPerWriter);
  // Both engines read every row.
  for (OfflineEngine* engine : {embedded.get(), engine_.get()}) {
    SCOPED_TRACE(engine->Describe());
    LatestRowsRequest request;
    request.view = defs_.FindFeatureView("shared");
    request.end = ParseTimestamp("2024-01-02T00:00:00Z").ValueOrDie();
    auto stream = engine->LatestRows(defs_, request);
    ASSERT_TRUE(stream.ok()) << stream.status().ToString();
    auto table = ReadAll(**stream);
    ASSERT_TRUE(table.ok()) << table.status().ToString();
    auto ids = Column(**table, "v");
    std::sort(ids.begin(), ids.end());
    EXPECT_EQ(ids, expected);
  }
}

// Random cases against the rules written as plainly as possible (as pit_join_test.cc does for
// the embedded engine): ties on event and created times, null created times, several files, the
// cutoff, ttl 0, entity rows with null times and keys without feature rows. The feature value is
// the row's read index, so a wrong tie-break shows.
TEST_F(SparkEngineTest, AgreesWithABruteForceOracleOnRandomData) {
  constexpr int64_t kMinute = 60'000'000;
  constexpr int64_t kBase = 1'700'000'000'000'000;
  defs_.entities.push_back(
      Entity{.name = "driver", .join_keys = {"driver_id"}, .join_key_types = {kInt64}});
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    auto uniform = [&](int64_t lo, int64_t hi) {
      return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
    };
    const bool cutoff = seed % 2 == 0;
    const int64_t ttl = seed % 3 == 0 ? 0 : uniform(1, 20);
    const int files = static_cast<int>(uniform(1, 3));
    const int64_t keys = uniform(1, 10);
    // Feature rows in read order: file by file.
    struct Row {
      int64_t key, ts;
      std::optional<int64_t> created;
    };
    std::vector<std::vector<Row>> by_file(files);
    for (int64_t i = 0, n = uniform(50, 300); i < n; ++i) {
      std::optional<int64_t> created;
      if (uniform(0, 9) > 0) created = kBase + uniform(0, 40) * kMinute;
      by_file[uniform(0, files - 1)].push_back(
          {uniform(0, keys - 1), kBase + uniform(0, 40) * kMinute, created});
    }
    std::vector<Row> rows;
    std::string name = "random" + std::to_string(seed);
    std::filesystem::path folder = dir_->path() / "data" / name;
    std::filesystem::create_directories(folder);
    for (int f = 0; f < files; ++f) {
      arrow::Int64Builder k, v;
      arrow::TimestampBuilder t(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                                arrow::default_memory_pool());
      arrow::TimestampBuilder c(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                                arrow::default_memory_pool());
      for (const Row& r : by_file[f]) {
        ASSERT_TRUE(k.Append(r.key).ok());
        ASSERT_TRUE(t.Append(r.ts).ok());
        ASSERT_TRUE((r.created ? c.Append(*r.created) : c.AppendNull()).ok());
        ASSERT_TRUE(v.Append(static_cast<int64_t>(rows.size())).ok());
        rows.push_back(r);
      }
      auto table = arrow::Table::Make(
          arrow::schema({arrow::field("driver_id", arrow::int64()),
                         arrow::field("event_timestamp", t.type()),
                         arrow::field("created", c.type()), arrow::field("index", arrow::int64())}),
          {k.Finish().ValueOrDie(), t.Finish().ValueOrDie(), c.Finish().ValueOrDie(),
           v.Finish().ValueOrDie()});
      ASSERT_TRUE(WriteTableFile(*table, folder / fmt::format("part-{:03d}.parquet", f)).ok());
    }
    defs_.data_sources.push_back(DataSource{.name = name,
                                            .path = "data/" + name,
                                            .timestamp_field = "event_timestamp",
                                            .created_timestamp_column = "created"});
    FeatureView view;
    view.name = name;
    view.entities = {"driver"};
    view.source = name;
    view.ttl = Duration::Minutes(ttl);
    view.schema = {Field{.name = "index", .type = kInt64}};
    defs_.feature_views.push_back(view);

    std::vector<std::vector<std::string>> entity_rows;
    std::vector<std::string> expected;
    for (int64_t i = 0, n = uniform(20, 120); i < n; ++i) {
      int64_t key = uniform(0, keys + 1);
      std::optional<int64_t> t;
      if (uniform(0, 19) > 0) t = kBase + uniform(-5, 45) * kMinute;
      entity_rows.push_back(
          {std::to_string(key), t ? FormatTimestamp(Timestamp::FromMicros(*t)) : "null"});
      int64_t best = -1;
      auto created = [&](int64_t j) { return rows[j].created.value_or(INT64_MIN); };
      for (int64_t j = 0; t && j < static_cast<int64_t>(rows.size()); ++j) {
        if (rows[j].key != key || rows[j].ts > *t) continue;
        if (ttl > 0 && rows[j].ts < *t - ttl * kMinute) continue;
        if (cutoff && rows[j].created && *rows[j].created > *t) continue;
        if (best < 0 ||
            std::pair(rows[j].ts, created(j)) >= std::pair(rows[best].ts, created(best))) {
          best = j;  // ">=": the row read later wins a full tie
        }
      }
      expected.push_back(best < 0 ? "null" : std::to_string(best));
    }
    HistoricalRequest request;
    request.entities = Rows({{"driver_id", kInt64}, {"event_timestamp", kTime}}, entity_rows);
    request.features = {{name, "index"}};
    request.created_timestamp_cutoff = cutoff;
    auto out = Historical(request);
    ASSERT_NE(out, nullptr);
    EXPECT_EQ(Column(*out, "index"), expected) << "ttl " << ttl << " min, cutoff " << cutoff;
  }
}

}  // namespace
}  // namespace granary
