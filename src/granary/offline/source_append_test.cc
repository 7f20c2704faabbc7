#include "granary/offline/source_append.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <thread>

#include "granary/common/temp_dir.h"
#include "granary/offline/delta_log.h"
#include "granary/offline/delta_writer.h"
#include "granary/offline/file_listing.h"
#include "granary/offline/source_inspector.h"
#include "granary/offline/source_scan.h"
#include "granary/offline/table_io.h"

namespace granary {
namespace {

namespace fs = std::filesystem;

const auto kUtcMicros = arrow::timestamp(arrow::TimeUnit::MICRO, "UTC");
constexpr int64_t kDay = 86'400'000'000;
const int64_t kT0 = ParseTimestamp("2026-01-01T00:00:00Z").ValueOrDie().micros;

std::shared_ptr<arrow::Array> Int64s(const std::vector<int64_t>& v) {
  arrow::Int64Builder b;
  EXPECT_TRUE(b.AppendValues(v).ok());
  return b.Finish().ValueOrDie();
}
std::shared_ptr<arrow::Array> Int32s(const std::vector<int32_t>& v) {
  arrow::Int32Builder b;
  EXPECT_TRUE(b.AppendValues(v).ok());
  return b.Finish().ValueOrDie();
}
std::shared_ptr<arrow::Array> Doubles(const std::vector<double>& v) {
  arrow::DoubleBuilder b;
  EXPECT_TRUE(b.AppendValues(v).ok());
  return b.Finish().ValueOrDie();
}
std::shared_ptr<arrow::Array> Times(const std::vector<int64_t>& micros) {
  arrow::TimestampBuilder b(kUtcMicros, arrow::default_memory_pool());
  EXPECT_TRUE(b.AppendValues(micros).ok());
  return b.Finish().ValueOrDie();
}
std::shared_ptr<arrow::Array> Strings(const std::vector<std::string>& v) {
  arrow::StringBuilder b;
  EXPECT_TRUE(b.AppendValues(v).ok());
  return b.Finish().ValueOrDie();
}

std::shared_ptr<arrow::Table> MakeTable(
    const std::vector<std::pair<std::string, std::shared_ptr<arrow::Array>>>& columns) {
  arrow::FieldVector fields;
  arrow::ArrayVector arrays;
  for (const auto& [name, array] : columns) {
    fields.push_back(arrow::field(name, array->type()));
    arrays.push_back(array);
  }
  return arrow::Table::Make(arrow::schema(fields), arrays);
}

DataSource Source(const std::string& path, SourceFormat format = SourceFormat::kParquet) {
  DataSource s;
  s.name = "payments";
  s.path = path;
  s.format = format;
  s.timestamp_field = "event_timestamp";
  return s;
}

class SourceAppendTest : public ::testing::Test {
 protected:
  TempDir dir_ = TempDir::Make("granary-append-").ValueOrDie();
  const fs::path root_ = dir_.path();
};

TEST_F(SourceAppendTest, FolderGetsANewFileTypedAsTheExistingOnes) {
  fs::create_directories(root_ / "data/payments");
  ASSERT_TRUE(WriteTableFile(*MakeTable({{"customer_id", Int64s({1})},
                                         {"event_timestamp", Times({kT0})},
                                         {"amount", Doubles({1.5})}}),
                             root_ / "data/payments/part-0.parquet")
                  .ok());
  // int32 ids and a missing column: cast to int64, and a null column.
  auto rows = MakeTable(
      {{"event_timestamp", Times({kT0 + kDay, kT0 + 2 * kDay})}, {"customer_id", Int32s({2, 3})}});
  auto result = AppendToSource(root_, Source("data/payments"), *rows);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->rows, 2);
  EXPECT_EQ(result->delta_version, -1);
  ASSERT_EQ(result->files.size(), 1u);
  EXPECT_EQ(result->files[0].parent_path(), root_ / "data/payments");

  auto back = ReadTableFile(result->files[0]);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  auto existing = ReadParquetSchema(root_ / "data/payments/part-0.parquet").ValueOrDie();
  EXPECT_TRUE((*back)->schema()->Equals(*existing)) << (*back)->schema()->ToString();
  EXPECT_EQ((*back)->GetColumnByName("amount")->null_count(), 2);
  EXPECT_EQ(ListDataFiles(root_ / "data/payments", ".parquet").ValueOrDie().size(), 2u);
}

TEST_F(SourceAppendTest, FolderRefusesAColumnItsDataDoesNotHave) {
  fs::create_directories(root_ / "data/payments");
  ASSERT_TRUE(
      WriteTableFile(*MakeTable({{"customer_id", Int64s({1})}, {"event_timestamp", Times({kT0})}}),
                     root_ / "data/payments/part-0.parquet")
          .ok());
  auto rows = MakeTable({{"customer_id", Int64s({2})},
                         {"event_timestamp", Times({kT0})},
                         {"custmer_id", Int64s({2})}});
  auto result = AppendToSource(root_, Source("data/payments"), *rows);
  ASSERT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find("column 'custmer_id' is not a column of data source "
                                           "'payments' (the files under data/payments), did you "
                                           "mean 'customer_id'?"),
            std::string::npos)
      << result.status().message();
  EXPECT_EQ(ListDataFiles(root_ / "data/payments", ".parquet").ValueOrDie().size(), 1u);
}

TEST_F(SourceAppendTest, AMissingFolderIsCreatedWithTheRowsOwnColumns) {
  auto rows = MakeTable({{"customer_id", Int64s({7})}, {"event_timestamp", Times({kT0})}});
  auto result = AppendToSource(root_, Source("data/new_source"), *rows);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  auto back = ReadTableFile(result->files.at(0)).ValueOrDie();
  EXPECT_TRUE(back->Equals(*rows)) << back->ToString();
}

TEST_F(SourceAppendTest, SingleFileAndGlobSourcesSayHowToMakeThemAppendable) {
  fs::create_directories(root_ / "data");
  auto rows = MakeTable({{"customer_id", Int64s({1})}, {"event_timestamp", Times({kT0})}});
  ASSERT_TRUE(WriteTableFile(*rows, root_ / "data/payments.parquet").ok());
  auto single = AppendToSource(root_, Source("data/payments.parquet"), *rows);
  ASSERT_EQ(single.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(single.status().message().find(
                "data source 'payments' is the single file data/payments.parquet: rows cannot be "
                "appended to a Parquet file in place; make the source a folder: move the data "
                "into a folder (e.g. data/payments/part-0.parquet) and set path: data/payments"),
            std::string::npos)
      << single.status().message();
  auto glob = AppendToSource(root_, Source("data/*.parquet"), *rows);
  ASSERT_EQ(glob.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(glob.status().message().find("is a glob"), std::string::npos);
}

TEST_F(SourceAppendTest, HivePartitionedFolderGetsAFilePerPartition) {
  fs::create_directories(root_ / "data/p/region=eu");
  ASSERT_TRUE(
      WriteTableFile(*MakeTable({{"customer_id", Int64s({1})}, {"event_timestamp", Times({kT0})}}),
                     root_ / "data/p/region=eu/part-0.parquet")
          .ok());
  auto rows = MakeTable({{"customer_id", Int64s({2, 3, 4})},
                         {"event_timestamp", Times({kT0, kT0, kT0})},
                         {"region", Strings({"eu", "us", "eu"})}});
  auto result = AppendToSource(root_, Source("data/p"), *rows);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_EQ(result->files.size(), 2u);
  EXPECT_EQ(result->files[0].parent_path().filename(), "region=eu");
  EXPECT_EQ(result->files[1].parent_path().filename(), "region=us");
  EXPECT_EQ(ReadTableFile(result->files[0]).ValueOrDie()->num_rows(), 2);
  EXPECT_EQ(ReadTableFile(result->files[0]).ValueOrDie()->num_columns(), 2);

  auto no_region = MakeTable({{"customer_id", Int64s({5})}, {"event_timestamp", Times({kT0})}});
  auto missing = AppendToSource(root_, Source("data/p"), *no_region);
  ASSERT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("is partitioned by 'region', which the pushed rows "
                                            "lack; add a 'region' column"),
            std::string::npos)
      << missing.status().message();
}

// Every row a scan of the source returns for a view with `features`, as "key@time=value" text.
std::vector<std::string> Scan(const fs::path& root, const DataSource& source,
                              const std::string& feature) {
  Definitions defs;
  defs.entities.push_back(
      Entity{"customer", {"customer_id"}, {ValueType::Scalar(ScalarType::kInt64)}, "", {}, {}});
  defs.data_sources.push_back(source);
  FeatureView view;
  view.name = "v";
  view.entities = {"customer"};
  view.source = source.name;
  if (!feature.empty())
    view.schema.push_back(Field{feature, ValueType::Scalar(ScalarType::kFloat64), "", {}});
  defs.feature_views.push_back(view);
  auto scan = FeatureSourceScan::Open(root, defs, defs.feature_views[0], {});
  EXPECT_TRUE(scan.ok()) << scan.status().ToString();
  std::vector<std::string> rows;
  if (!scan.ok()) return rows;
  while (true) {
    auto batch = (*scan)->Next();
    EXPECT_TRUE(batch.ok()) << batch.status().ToString();
    if (!batch.ok() || *batch == nullptr) break;
    for (int64_t i = 0; i < (*batch)->num_rows(); ++i) {
      std::string row =
          (*batch)->column(0)->GetScalar(i).ValueOrDie()->ToString() + "@" +
          FormatTimestamp(Timestamp::FromMicros(
              static_cast<const arrow::TimestampArray&>(*(*batch)->column(1)).Value(i)));
      if (!feature.empty()) {
        row += "=" + (*batch)->GetColumnByName(feature)->GetScalar(i).ValueOrDie()->ToString();
      }
      rows.push_back(row);
    }
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

TEST_F(SourceAppendTest, AppendedParquetRowsAreReadByTheScan) {
  fs::create_directories(root_ / "data/payments");
  ASSERT_TRUE(WriteTableFile(*MakeTable({{"customer_id", Int64s({1})},
                                         {"event_timestamp", Times({kT0})},
                                         {"amount", Doubles({1.5})}}),
                             root_ / "data/payments/part-0.parquet")
                  .ok());
  auto rows = MakeTable({{"customer_id", Int32s({2})},
                         {"event_timestamp", Times({kT0 + kDay})},
                         {"amount", Doubles({2.5})}});
  ASSERT_TRUE(AppendToSource(root_, Source("data/payments"), *rows).ok());
  EXPECT_EQ(Scan(root_, Source("data/payments"), "amount"),
            (std::vector<std::string>{"1@2026-01-01T00:00:00Z=1.5", "2@2026-01-02T00:00:00Z=2.5"}));
}

TEST_F(SourceAppendTest, CsvFolderGetsACsvFileTheScanCanRead) {
  fs::create_directories(root_ / "data/c");
  ASSERT_TRUE(
      WriteTableFile(*MakeTable({{"customer_id", Int64s({1})}, {"event_timestamp", Times({kT0})}}),
                     root_ / "data/c/a.csv")
          .ok());
  auto rows = MakeTable({{"customer_id", Int64s({2})}, {"event_timestamp", Times({kT0 + kDay})}});
  auto result = AppendToSource(root_, Source("data/c", SourceFormat::kCsv), *rows);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_EQ(result->files.at(0).extension(), ".csv");
  auto back = ReadTableFile(result->files[0]).ValueOrDie();
  EXPECT_EQ(back->num_rows(), 1);
  EXPECT_EQ(back->schema()->field_names(),
            (std::vector<std::string>{"customer_id", "event_timestamp"}));
  EXPECT_EQ(Scan(root_, Source("data/c", SourceFormat::kCsv), ""),
            (std::vector<std::string>{"1@2026-01-01T00:00:00Z", "2@2026-01-02T00:00:00Z"}));
}

// A partitioned Delta table as the data generator writes one: event_date partitions.
class DeltaAppendTest : public SourceAppendTest {
 protected:
  void SetUp() override {
    table_ = root_ / "data/occupancy";
    DeltaTableSpec spec;
    spec.id = UuidFromBits(1, 2);
    spec.name = "occupancy";
    spec.schema = arrow::schema(
        {arrow::field("bay_id", arrow::int64()), arrow::field("event_timestamp", kUtcMicros),
         arrow::field("occupancy", arrow::float64()), arrow::field("event_date", arrow::date32())});
    spec.partition_columns = {"event_date"};
    auto first = MakeTable({{"bay_id", Int64s({1})},
                            {"event_timestamp", Times({kT0})},
                            {"occupancy", Doubles({0.5})}});
    fs::create_directories(table_ / "event_date=2026-01-01");
    const fs::path file = table_ / "event_date=2026-01-01/part-0.parquet";
    ASSERT_TRUE(WriteTableFile(*first, file).ok());
    DeltaAddFile add;
    add.path = "event_date=2026-01-01/part-0.parquet";
    add.partition_values["event_date"] = "2026-01-01";
    add.size = static_cast<int64_t>(fs::file_size(file));
    add.num_records = 1;
    ASSERT_TRUE(WriteDeltaLog(table_, spec, {add}).ok());
    source_ = Source("data/occupancy", SourceFormat::kDelta);
    source_.date_partition_column = "event_date";
  }
  fs::path table_;
  DataSource source_;
};

TEST_F(DeltaAppendTest, AppendIsOneCommitWithAFilePerDerivedDatePartition) {
  // event_date is not given: it is the UTC date of event_timestamp. bay_id comes as int32.
  auto rows = MakeTable({{"bay_id", Int32s({2, 3, 4})},
                         {"event_timestamp", Times({kT0 + 5, kT0 + kDay + 1500, kT0 + 7})},
                         {"occupancy", Doubles({0.1, 0.2, 0.3})}});
  auto result = AppendToSource(root_, source_, *rows);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->delta_version, 1);
  EXPECT_EQ(result->files.size(), 2u);

  auto snapshot = ReadDeltaSnapshot(table_);
  ASSERT_TRUE(snapshot.ok()) << snapshot.status().ToString();
  EXPECT_EQ(snapshot->version, 1);
  ASSERT_EQ(snapshot->files.size(), 3u);
  int with_stats = 0;
  for (const DeltaDataFile& f : snapshot->files) {
    if (f.stats_json.find("\"event_timestamp\":\"2026-01-02T00:00:00.001Z\"") !=
        std::string::npos) {
      // The one row of 2 January at +1500 us: minimum rounded down, maximum up.
      EXPECT_NE(f.stats_json.find("\"minValues\":{\"bay_id\":3,\"event_timestamp\":\"2026-01-02T"
                                  "00:00:00.001Z\""),
                std::string::npos)
          << f.stats_json;
      EXPECT_NE(f.stats_json.find("\"maxValues\":{\"bay_id\":3,\"event_timestamp\":\"2026-01-02T"
                                  "00:00:00.002Z\""),
                std::string::npos)
          << f.stats_json;
      ++with_stats;
    }
  }
  EXPECT_EQ(with_stats, 1);
  auto table = ReadDeltaTable(*snapshot);
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  EXPECT_EQ((*table)->num_rows(), 4);
  EXPECT_TRUE((*table)->schema()->Equals(*snapshot->schema));
  DataSource as_customers = source_;
  as_customers.field_mapping["bay_id"] = "customer_id";
  EXPECT_EQ(Scan(root_, as_customers, "occupancy"),
            (std::vector<std::string>{
                "1@2026-01-01T00:00:00Z=0.5", "2@2026-01-01T00:00:00.000005Z=0.1",
                "3@2026-01-02T00:00:00.001500Z=0.2", "4@2026-01-01T00:00:00.000007Z=0.3"}));
}

// A date32 partition value was multiplied into microseconds unchecked, naming a folder after a
// wrapped date; a date beyond int64 microseconds is now an error naming the column and the row,
// and nothing is written.
TEST_F(DeltaAppendTest, ADatePartitionBeyondInt64MicrosecondsIsAnErrorAndNothingIsWritten) {
  arrow::Date32Builder dates;
  ASSERT_TRUE(dates.AppendValues({20454, std::numeric_limits<int32_t>::max()}).ok());
  auto rows = MakeTable({{"bay_id", Int64s({2, 3})},
                         {"event_timestamp", Times({kT0, kT0 + 1})},
                         {"occupancy", Doubles({0.1, 0.2})},
                         {"event_date", dates.Finish().ValueOrDie()}});
  auto result = AppendToSource(root_, source_, *rows);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find(
                "partition column 'event_date', row 1: 2147483647 days since 1970-01-01 is "
                "beyond the times Granary holds"),
            std::string::npos)
      << result.status().ToString();
  auto snapshot = ReadDeltaSnapshot(table_);
  ASSERT_TRUE(snapshot.ok()) << snapshot.status().ToString();
  EXPECT_EQ(snapshot->version, 0);
  EXPECT_EQ(snapshot->files.size(), 1u);
}

TEST_F(DeltaAppendTest, ConcurrentAppendsEachGetTheirOwnVersion) {
  constexpr int kThreads = 4, kEach = 5;
  std::vector<std::thread> threads;
  std::vector<std::vector<int64_t>> versions(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto rows = MakeTable({{"bay_id", Int64s({t * 100 + i})},
                               {"event_timestamp", Times({kT0})},
                               {"occupancy", Doubles({0.5})}});
        auto r = AppendToSource(root_, source_, *rows);
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        versions[t].push_back(r->delta_version);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<int64_t> all;
  for (const auto& v : versions) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kEach));
  EXPECT_EQ(*all.rbegin(), kThreads * kEach);
  auto snapshot = ReadDeltaSnapshot(table_).ValueOrDie();
  EXPECT_EQ(ReadDeltaTable(snapshot).ValueOrDie()->num_rows(), 1 + kThreads * kEach);
}

TEST_F(DeltaAppendTest, AColumnTheTableLacksIsRefusedAndNothingIsWritten) {
  auto rows = MakeTable(
      {{"bay_id", Int64s({2})}, {"event_timestamp", Times({kT0})}, {"price", Doubles({2.0})}});
  auto result = AppendToSource(root_, source_, *rows);
  ASSERT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find("column 'price' is not a column of the Delta table of "
                                           "data source 'payments'"),
            std::string::npos)
      << result.status().message();
  EXPECT_EQ(LatestDeltaVersion(table_).ValueOrDie(), 0);
}

TEST_F(DeltaAppendTest, AMissingTableIsAnErrorThatSaysToCreateIt) {
  DataSource missing = Source("data/none", SourceFormat::kDelta);
  auto rows = MakeTable({{"bay_id", Int64s({2})}});
  auto result = AppendToSource(root_, missing, *rows);
  ASSERT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find("does not exist; create it"), std::string::npos)
      << result.status().message();
}

// Databricks' defaults: a DELETE left a deletion vector on the existing file (its one row), and
// the protocol moved to reader 3 / writer 7 with the deletionVectors feature.
void UpgradeToDeletionVectors(const fs::path& table, const std::string& writer_features,
                              const std::string& configuration = "") {
  std::ofstream commit(table / "_delta_log/00000000000000000001.json");
  commit << R"({"protocol":{"minReaderVersion":3,"minWriterVersion":7,)"
         << R"("readerFeatures":["deletionVectors"],"writerFeatures":[)" << writer_features
         << "]}}\n";
  if (!configuration.empty()) {
    const std::string log0 = [&] {
      std::ifstream in(table / "_delta_log/00000000000000000000.json");
      std::stringstream buf;
      buf << in.rdbuf();
      return buf.str();
    }();
    // The first commit's metaData with the table properties replaced.
    const size_t meta = log0.find("{\"metaData\"");
    std::string line = log0.substr(meta, log0.find('\n', meta) - meta);
    const size_t config = line.find("\"configuration\":{}");
    ASSERT_NE(config, std::string::npos) << line;
    line.replace(config, 18, "\"configuration\":{" + configuration + "}");
    commit << line << "\n";
  }
  commit << R"({"remove":{"path":"event_date=2026-01-01/part-0.parquet","dataChange":true}})"
         << "\n"
         << R"({"add":{"path":"event_date=2026-01-01/part-0.parquet",)"
         << R"("partitionValues":{"event_date":"2026-01-01"},"size":1,"modificationTime":0,)"
         << R"("dataChange":true,"stats":"{\"numRecords\":1}","deletionVector":{)"
         << R"("storageType":"i","pathOrInlineDv":"^Bg9^0rr910000000000iXQKl0rr91000005c8Xg00000",)"
         << R"("sizeInBytes":34,"cardinality":1}}})"
         << "\n";
}

TEST_F(DeltaAppendTest, AppendsToATableWithDeletionVectorsKeepTheDeletedRowsDeleted) {
  UpgradeToDeletionVectors(table_, R"("deletionVectors","appendOnly","invariants")");
  DataSource as_customers = source_;
  as_customers.field_mapping["bay_id"] = "customer_id";
  EXPECT_TRUE(Scan(root_, as_customers, "").empty());  // the one row is deleted
  auto rows = MakeTable({{"bay_id", Int64s({2})},
                         {"event_timestamp", Times({kT0 + 5})},
                         {"occupancy", Doubles({0.1})}});
  auto result = AppendToSource(root_, source_, *rows);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->delta_version, 2);
  EXPECT_EQ(Scan(root_, as_customers, "occupancy"),
            (std::vector<std::string>{"2@2026-01-01T00:00:00.000005Z=0.1"}));
  // The append's commit only adds files: the protocol and the old file's vector stand.
  auto snapshot = ReadDeltaSnapshot(table_).ValueOrDie();
  EXPECT_EQ(snapshot.min_writer_version, 7);
  int with_vector = 0;
  for (const auto& f : snapshot.files) with_vector += f.deletion_vector.has_value();
  EXPECT_EQ(with_vector, 1);
}

TEST_F(DeltaAppendTest, WriterFeaturesAppendsWouldBreakAreRefusedAndNothingIsWritten) {
  auto rows = MakeTable({{"bay_id", Int64s({2})}, {"event_timestamp", Times({kT0})}});
  struct Case {
    const char* features;
    const char* configuration;
    const char* message;
  };
  for (const Case& c : {
           Case{R"("deletionVectors","rowTracking")", "", "writer feature 'rowTracking'"},
           Case{R"("deletionVectors","inCommitTimestamp")",
                R"("delta.enableInCommitTimestamps":"true")", "writer feature 'inCommitTimestamp'"},
           Case{R"("deletionVectors","checkConstraints")",
                R"("delta.constraints.positive":"x > 0")", "writer feature 'checkConstraints'"},
           Case{R"("deletionVectors","someFutureFeature")", "", "'someFutureFeature'"},
       }) {
    UpgradeToDeletionVectors(table_, c.features, c.configuration);
    auto result = AppendToSource(root_, source_, *rows);
    ASSERT_EQ(result.status().code(), StatusCode::kInvalidArgument) << c.features;
    EXPECT_NE(result.status().message().find(c.message), std::string::npos)
        << result.status().message();
    EXPECT_NE(result.status().message().find("appending could corrupt it"), std::string::npos)
        << result.status().message();
    EXPECT_EQ(LatestDeltaVersion(table_).ValueOrDie(), 1) << c.features;
  }
  // Supported but inactive (no property turns it on): appends go ahead.
  UpgradeToDeletionVectors(table_, R"("deletionVectors","inCommitTimestamp","checkConstraints")");
  EXPECT_TRUE(AppendToSource(root_, source_, *rows).ok());
}

}  // namespace
}  // namespace granary
