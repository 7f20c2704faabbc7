// FeatureSourceScan: pruning by the time range, typing by the definitions, Delta sources, errors.
#include "granary/offline/source_scan.h"

#include <arrow/api.h>
#include <arrow/io/api.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <parquet/arrow/writer.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <set>

#include "granary/common/temp_dir.h"
#include "granary/registry/loader.h"
#include "granary/testing/testdata.h"

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

std::string Defs(const std::string& path, const std::string& extra_source = "",
                 const std::string& format = "parquet") {
  return "entities:\n  - {name: driver, join_keys: [driver_id], value_type: int64}\n"
         "data_sources:\n  - {name: src, path: '" +
         path + "', format: " + format + ", timestamp_field: event_timestamp" + extra_source +
         "}\nfeature_views:\n  - name: v\n    entities: [driver]\n    source: src\n"
         "    ttl: 1d\n    schema:\n      - {name: rate, type: float64}\n";
}

// A Parquet file of `rows` rows in row groups of `group` rows: driver_id i % 5, one row per
// hour from `first_hour`, rate i * rate_scale; with `null_times`, every 7th row (i % 7 == 3) has
// no event time.
void WriteRates(const std::filesystem::path& path, int64_t first_hour, int rows, int group,
                float rate_scale, bool null_times) {
  arrow::Int32Builder ids;
  arrow::TimestampBuilder ts(arrow::timestamp(arrow::TimeUnit::MILLI),
                             arrow::default_memory_pool());
  arrow::FloatBuilder rate;
  for (int i = 0; i < rows; ++i) {
    ASSERT_TRUE(ids.Append(i % 5).ok());
    ASSERT_TRUE(
        (null_times && i % 7 == 3 ? ts.AppendNull() : ts.Append((first_hour + i) * 3'600'000))
            .ok());
    ASSERT_TRUE(rate.Append(static_cast<float>(i) * rate_scale).ok());
  }
  auto table = arrow::Table::Make(
      arrow::schema({arrow::field("driver_id", arrow::int32()),
                     arrow::field("event_timestamp", arrow::timestamp(arrow::TimeUnit::MILLI)),
                     arrow::field("rate", arrow::float32())}),
      {ids.Finish().ValueOrDie(), ts.Finish().ValueOrDie(), rate.Finish().ValueOrDie()});
  std::filesystem::create_directories(path.parent_path());
  auto out = arrow::io::FileOutputStream::Open(path.string()).ValueOrDie();
  ASSERT_TRUE(parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), out, group).ok());
  ASSERT_TRUE(out->Close().ok());
}

// One row per hour from `first_hour`, rate a quarter of the row's number.
void WriteHourly(const std::filesystem::path& path, int64_t first_hour, int rows, int group) {
  WriteRates(path, first_hour, rows, group, 0.25f, /*null_times=*/false);
}

int64_t CountRows(FeatureSourceScan* scan) {
  int64_t n = 0;
  while (true) {
    auto batch = scan->Next();
    EXPECT_TRUE(batch.ok()) << batch.status().ToString();
    if (!batch.ok() || *batch == nullptr) return n;
    n += (*batch)->num_rows();
  }
}

TEST(FeatureSourceScan, PrunesFilesAndRowGroupsByTheTimeRangeAndReadsExactlyTheRange) {
  auto dir = TempDir::Make("granary-scan-").ValueOrDie();
  WriteHourly(dir.path() / "data/a.parquet", 0, 100, 10);     // hours 0..99
  WriteHourly(dir.path() / "data/b.parquet", 1000, 100, 10);  // hours 1000..1099
  Definitions defs = Load(Defs("data"));
  SourceScanOptions options;
  options.start = Timestamp::FromSeconds(25 * 3600);  // hours 25..44 inclusive
  options.end = Timestamp::FromSeconds(44 * 3600);
  auto scan = FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], options);
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  EXPECT_EQ(CountRows(scan->get()), 20);
  const auto& stats = (*scan)->stats();
  EXPECT_EQ(stats.files_total, 2);
  EXPECT_EQ(stats.files_pruned, 1);  // b.parquet: every row group outside
  EXPECT_EQ(stats.row_groups_total, 20);
  EXPECT_EQ(stats.row_groups_pruned, 10 + 7);  // all of b, and a's groups 0,1,5..9
  EXPECT_EQ(stats.rows_scanned, 30);           // a's groups 2, 3, 4
  EXPECT_EQ(stats.rows_returned, 20);
}

// One row per hour from hour 0, every 7th without an event time; rate is the row's number.
void WriteHourlyWithNullTimes(const std::filesystem::path& path, int rows, int group) {
  WriteRates(path, 0, rows, group, 1.0f, /*null_times=*/true);
}

// Every row a scan returns, by read position: its `rate` (the row's number in the file).
// `after_first` (if set) runs once the first batch is in.
std::map<int64_t, double> RatesByPosition(FeatureSourceScan* scan,
                                          const std::function<void()>& after_first = nullptr) {
  std::map<int64_t, double> out;
  bool first = true;
  const int rate = scan->schema()->GetFieldIndex("rate");
  EXPECT_GE(rate, 0);
  while (true) {
    auto batch = scan->Next();
    EXPECT_TRUE(batch.ok()) << batch.status().ToString();
    if (!batch.ok() || *batch == nullptr || rate < 0) return out;
    const ReadPositions& at = scan->positions();
    const auto& values = static_cast<const arrow::DoubleArray&>(*(*batch)->column(rate));
    for (int64_t i = 0; i < (*batch)->num_rows(); ++i) {
      const int64_t position = at.rows == nullptr
                                   ? at.first + i
                                   : static_cast<const arrow::Int64Array&>(*at.rows).Value(i);
      EXPECT_TRUE(out.emplace(position, values.Value(i)).second) << "position " << position;
    }
    if (after_first && first) after_first();
    first = false;
  }
}

TEST(FeatureSourceScan, ReadPositionsFindTheSameRowsWithoutTheEventTime) {
  auto dir = TempDir::Make("granary-scan-").ValueOrDie();
  WriteHourlyWithNullTimes(dir.path() / "data/a.parquet", 100, 10);  // hours 0..99
  WriteHourlyWithNullTimes(dir.path() / "data/b.parquet", 30, 8);    // hours 0..29
  Definitions defs = Load(Defs("data"));
  SourceScanOptions options;
  options.start = Timestamp::FromSeconds(25 * 3600);  // hours 25..64
  options.end = Timestamp::FromSeconds(64 * 3600);
  auto filtered = FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], options);
  ASSERT_TRUE(filtered.ok()) << filtered.status().ToString();
  const std::map<int64_t, double> in_range = RatesByPosition(filtered->get());
  // Hours 25..64 of a.parquet less every 7th row (null time), and of b.parquet hours 25..29.
  int64_t want = 0;
  for (int i = 25; i <= 64; ++i) want += i % 7 != 3;
  for (int i = 25; i <= 29; ++i) want += i % 7 != 3;
  EXPECT_EQ(static_cast<int64_t>(in_range.size()), want);

  options.with_event_timestamp = false;
  options.with_join_keys = false;
  auto all = FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], options);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ((*all)->event_timestamp_index(), -1);
  EXPECT_EQ((*all)->schema()->num_fields(), 1);  // rate only
  const std::map<int64_t, double> every = RatesByPosition(all->get());
  // The same row groups (a's 2..6, b's 3), every row of them, at positions 0, 1, 2, ...
  EXPECT_EQ(every.size(), 50u + 6u);
  EXPECT_EQ(every.begin()->first, 0);
  EXPECT_EQ(every.rbegin()->first, 55);
  for (const auto& [position, rate] : in_range) {
    auto it = every.find(position);
    ASSERT_NE(it, every.end()) << "position " << position;
    EXPECT_EQ(it->second, rate) << "position " << position;
  }
  EXPECT_EQ((*all)->stats().row_groups_pruned, (*filtered)->stats().row_groups_pruned);
  EXPECT_EQ((*all)->FilesFingerprint(), (*filtered)->FilesFingerprint());
}

TEST(FeatureSourceScan, BatchesWithNoRowInRangeKeepTheNextRowsPositions) {
  // One row group whose times straddle the range (its statistics cannot prune it) with a single
  // row inside, read 2 rows a batch: every batch before that row keeps none.
  auto dir = TempDir::Make("granary-scan-").ValueOrDie();
  const std::vector<int64_t> hours = {0, 100, 1, 99, 2, 98, 3, 97, 4, 96, 55, 5};
  arrow::Int32Builder ids;
  arrow::TimestampBuilder ts(arrow::timestamp(arrow::TimeUnit::MILLI),
                             arrow::default_memory_pool());
  arrow::FloatBuilder rate;
  for (size_t i = 0; i < hours.size(); ++i) {
    ASSERT_TRUE(ids.Append(1).ok());
    ASSERT_TRUE(ts.Append(hours[i] * 3'600'000).ok());
    ASSERT_TRUE(rate.Append(static_cast<float>(i)).ok());
  }
  auto table = arrow::Table::Make(
      arrow::schema({arrow::field("driver_id", arrow::int32()),
                     arrow::field("event_timestamp", arrow::timestamp(arrow::TimeUnit::MILLI)),
                     arrow::field("rate", arrow::float32())}),
      {ids.Finish().ValueOrDie(), ts.Finish().ValueOrDie(), rate.Finish().ValueOrDie()});
  std::filesystem::create_directories(dir.path() / "data");
  auto out = arrow::io::FileOutputStream::Open((dir.path() / "data/a.parquet").string());
  ASSERT_TRUE(out.ok());
  ASSERT_TRUE(parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), *out, 100).ok());
  ASSERT_TRUE((*out)->Close().ok());
  Definitions defs = Load(Defs("data"));
  SourceScanOptions options;
  options.start = Timestamp::FromSeconds(50 * 3600);
  options.end = Timestamp::FromSeconds(60 * 3600);
  options.batch_rows = 2;
  auto scan = FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], options);
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  const std::map<int64_t, double> rows = RatesByPosition(scan->get());
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows.begin()->first, 10);
  EXPECT_EQ(rows.begin()->second, 10.0);
  EXPECT_EQ((*scan)->stats().rows_scanned, 12);
  EXPECT_EQ((*scan)->stats().rows_returned, 1);
}

TEST(FeatureSourceScan, RowGroupsWithoutAWantedRowAreNotReadAndPositionsHold) {
  auto dir = TempDir::Make("granary-scan-").ValueOrDie();
  WriteHourlyWithNullTimes(dir.path() / "data/a.parquet", 100, 10);
  WriteHourlyWithNullTimes(dir.path() / "data/b.parquet", 30, 8);
  Definitions defs = Load(Defs("data"));
  SourceScanOptions options;
  options.with_event_timestamp = false;
  auto full = FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], options);
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  const std::map<int64_t, double> every = RatesByPosition(full->get());
  ASSERT_EQ(every.size(), 130u);

  // Rows in a's row groups 0 and 9 and b's row group 1 (positions 100 + 8..15).
  const std::vector<int64_t> wanted = {3, 7, 95, 109};
  std::vector<std::pair<int64_t, int64_t>> asked;
  options.wants_rows = [&](int64_t begin, int64_t end) {
    asked.emplace_back(begin, end);
    auto it = std::lower_bound(wanted.begin(), wanted.end(), begin);
    return it != wanted.end() && *it < end;
  };
  auto some = FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], options);
  ASSERT_TRUE(some.ok()) << some.status().ToString();
  const std::map<int64_t, double> read = RatesByPosition(some->get());
  EXPECT_EQ((*some)->stats().row_groups_skipped, 10 + 4 - 3);
  EXPECT_EQ((*some)->stats().rows_scanned, 10 + 10 + 8);
  EXPECT_EQ(asked.size(), 14u);  // every row group, with its positions
  EXPECT_EQ(asked.back(), (std::pair<int64_t, int64_t>(124, 130)));
  ASSERT_EQ(read.size(), 28u);
  for (int64_t position : wanted) {
    ASSERT_EQ(read.count(position), 1u) << "position " << position;
    EXPECT_EQ(read.at(position), every.at(position)) << "position " << position;
  }
  for (const auto& [position, rate] : read) EXPECT_EQ(rate, every.at(position));

  // CSV: rows are counted only as they are read, so nothing is skipped.
  std::ofstream(dir.path() / "c.csv") << "driver_id,event_timestamp,rate\n1,2024-01-01,1.5\n"
                                         "2,2024-01-02,2.5\n";
  Definitions csv = Load(Defs("c.csv", "", "csv"));
  options.wants_rows = [](int64_t, int64_t) { return false; };
  auto text = FeatureSourceScan::Open(dir.path(), csv, csv.feature_views[0], options);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(RatesByPosition(text->get()).size(), 2u);
  EXPECT_EQ((*text)->stats().row_groups_skipped, 0);
}

TEST(SourceSnapshot, CheckUnchangedNamesAFileRewrittenOrRemovedSinceItWasListed) {
  auto dir = TempDir::Make("granary-scan-").ValueOrDie();
  WriteHourly(dir.path() / "data/a.parquet", 0, 100, 10);
  WriteHourly(dir.path() / "data/b.parquet", 0, 100, 10);
  Definitions defs = Load(Defs("data"));
  auto files = SourceSnapshot::Read(dir.path(), defs, defs.feature_views[0]);
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  EXPECT_TRUE(files->CheckUnchanged("feature view 'v'").ok());
  WriteHourly(dir.path() / "data/b.parquet", 0, 120, 10);  // rewritten, larger
  Status rewritten = files->CheckUnchanged("feature view 'v'");
  EXPECT_EQ(rewritten.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(rewritten.message().find("b.parquet was rewritten"), std::string::npos)
      << rewritten.message();
  std::filesystem::remove(dir.path() / "data/a.parquet");
  Status removed = files->CheckUnchanged("feature view 'v'");
  EXPECT_NE(removed.message().find("a.parquet was removed"), std::string::npos)
      << removed.message();
  EXPECT_NE(removed.message().find("run the retrieval again"), std::string::npos);
}

TEST(FeatureSourceScan, ColumnsAreNamedAndTypedByTheDefinitions) {
  auto dir = TempDir::Make("granary-scan-").ValueOrDie();
  WriteHourly(dir.path() / "data.parquet", 0, 10, 5);
  Definitions defs =
      Load(Defs("data.parquet", ", field_mapping: {rate: speed}")
               .replace(Defs("data.parquet", ", field_mapping: {rate: speed}").find("name: rate"),
                        10, "name: speed"));
  auto scan = FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], {});
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  EXPECT_EQ((*scan)->schema()->ToString(),
            "driver_id: int64\nevent_timestamp: timestamp[us, tz=UTC]\nspeed: double");
  auto batch = (*scan)->Next().ValueOrDie();
  ASSERT_NE(batch, nullptr);
  EXPECT_TRUE(batch->schema()->Equals(*(*scan)->schema()));
  EXPECT_EQ(static_cast<const arrow::TimestampArray&>(*batch->column(1)).Value(1), 3'600'000'000);
  // The same scan as an arrow::RecordBatchReader.
  const SourceScanStats* stats = nullptr;
  auto reader = FeatureSourceScan::ToReader(
      FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], {}).MoveValueUnsafe(),
      &stats);
  auto table = reader->ToTable().ValueOrDie();
  EXPECT_EQ(table->num_rows(), 10);
  EXPECT_EQ(stats->rows_returned, 10);
}

TEST(FeatureSourceScan, DatePartitionFoldersArePrunedWithoutOpeningFiles) {
  auto dir = TempDir::Make("granary-scan-").ValueOrDie();
  WriteHourly(dir.path() / "data/day=1970-01-01/p.parquet", 0, 24, 24);
  WriteHourly(dir.path() / "data/day=1970-01-02/p.parquet", 24, 24, 24);
  WriteHourly(dir.path() / "data/day=1970-01-03/p.parquet", 48, 24, 24);
  Definitions defs = Load(Defs("data", ", date_partition_column: day"));
  SourceScanOptions options;
  options.start = Timestamp::FromSeconds(30 * 3600);
  options.end = Timestamp::FromSeconds(31 * 3600);
  auto scan = FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], options);
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  EXPECT_EQ(CountRows(scan->get()), 2);
  EXPECT_EQ((*scan)->stats().files_pruned, 2);
}

TEST(FeatureSourceScan, HivePartitionValuesAreColumnsTypedByTheView) {
  auto dir = TempDir::Make("granary-scan-").ValueOrDie();
  WriteHourly(dir.path() / "data/zone=7/region=eu%2Fwest/p.parquet", 0, 3, 3);
  WriteHourly(dir.path() / "data/zone=__HIVE_DEFAULT_PARTITION__/region=us/p.parquet", 0, 2, 2);
  std::string yaml = Defs("data");
  yaml += "      - {name: zone, type: int64}\n      - {name: region, type: string}\n";
  Definitions defs = Load(yaml);
  auto scan = FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], {});
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  auto table = FeatureSourceScan::ToReader(scan.MoveValueUnsafe(), nullptr)->ToTable().ValueOrDie();
  ASSERT_EQ(table->num_rows(), 5);
  auto zone = arrow::Concatenate(table->GetColumnByName("zone")->chunks()).ValueOrDie();
  auto region = arrow::Concatenate(table->GetColumnByName("region")->chunks()).ValueOrDie();
  EXPECT_EQ(zone->type()->id(), arrow::Type::INT64);
  // Files in path order: "zone=7/..." sorts before "zone=__HIVE...".
  const auto& zones = static_cast<const arrow::Int64Array&>(*zone);
  EXPECT_EQ(zones.Value(0), 7);
  EXPECT_EQ(zones.Value(2), 7);
  EXPECT_EQ(zones.null_count(), 2);
  EXPECT_TRUE(zones.IsNull(3) && zones.IsNull(4));
  EXPECT_EQ(static_cast<const arrow::StringArray&>(*region).GetString(0), "eu/west");
  EXPECT_EQ(static_cast<const arrow::StringArray&>(*region).GetString(4), "us");
}

TEST(FeatureSourceScan, CsvIsTypedByTheViewAndBadValuesNameTheFile) {
  auto dir = TempDir::Make("granary-scan-").ValueOrDie();
  std::ofstream(dir.path() / "a.csv") << "driver_id,event_timestamp,rate\n"
                                         "1,2024-01-01T00:00:00+01:00,0.5\n"
                                         "2,2024-01-01 00:00:00,1\n";
  Definitions defs = Load(Defs("a.csv", "", "csv"));
  auto scan = FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], {});
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  auto batch = (*scan)->Next().ValueOrDie();
  ASSERT_NE(batch, nullptr);
  EXPECT_EQ(batch->column(0)->type()->id(), arrow::Type::INT64);
  EXPECT_EQ(batch->column(2)->type()->id(), arrow::Type::DOUBLE);
  EXPECT_EQ(static_cast<const arrow::TimestampArray&>(*batch->column(1)).Value(0),
            Timestamp::FromSeconds(1704063600).micros);

  std::ofstream(dir.path() / "a.csv") << "driver_id,event_timestamp,rate\n1,yesterday,0.5\n";
  auto bad = FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], {});
  ASSERT_TRUE(bad.ok());
  auto next = (*bad)->Next();
  ASSERT_FALSE(next.ok());
  EXPECT_NE(next.status().message().find("a.csv"), std::string::npos) << next.status().message();
  EXPECT_NE(next.status().message().find("'yesterday' is not a timestamp"), std::string::npos)
      << next.status().message();
}

TEST(FeatureSourceScan, MissingAndCorruptFilesAreClearErrors) {
  auto dir = TempDir::Make("granary-scan-").ValueOrDie();
  Definitions defs = Load(Defs("nothing_here"));
  auto missing = FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], {});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("no parquet files at"), std::string::npos);

  std::ofstream(dir.path() / "broken.parquet") << "PAR1 this is not parquet";
  Definitions broken = Load(Defs("broken.parquet"));
  auto corrupt = FeatureSourceScan::Open(dir.path(), broken, broken.feature_views[0], {});
  ASSERT_FALSE(corrupt.ok());
  EXPECT_NE(corrupt.status().message().find("broken.parquet is not a readable Parquet file"),
            std::string::npos)
      << corrupt.status().message();
}

TEST(FeatureSourceScan, FilesRemovedOrDamagedAfterPlanningAreIOErrorOrCorruption) {
  auto dir = TempDir::Make("granary-scan-damaged-").ValueOrDie();
  const auto file = dir.path() / "src/a.parquet";
  Definitions defs = Load(Defs("src"));
  // Removed (vacuumed) between planning and reading: the file system's answer.
  WriteHourly(file, 0, 100, 50);
  auto scan = FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], {});
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  std::filesystem::remove(file);
  auto gone = (*scan)->Next();
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().code(), StatusCode::kIOError) << gone.status().ToString();
  EXPECT_NE(gone.status().message().find(file.string()), std::string::npos)
      << gone.status().message();
  // Damaged: the data pages overwritten, the footer intact.
  WriteHourly(file, 0, 100, 50);
  scan = FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], {});
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  {
    std::fstream bytes(file, std::ios::in | std::ios::out | std::ios::binary);
    bytes.seekp(4);
    const std::string garbage(200, '\xff');
    bytes.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  auto damaged = (*scan)->Next();
  ASSERT_FALSE(damaged.ok());
  EXPECT_EQ(damaged.status().code(), StatusCode::kCorruption) << damaged.status().ToString();
  EXPECT_NE(damaged.status().message().find(file.string()), std::string::npos)
      << damaged.status().message();
}

TEST(FeatureSourceScan, DeltaSourcePrunesFilesByLogStatisticsAndTypesPartitionValues) {
  GRANARY_REQUIRE_TESTDATA("delta-golden");
  const std::string yaml =
      "entities:\n  - {name: thing, join_keys: [id], value_type: int64}\n"
      "data_sources:\n  - {name: src, path: delta-golden/kernel-timestamp-timestamp_micros/delta,"
      " type: delta, timestamp_field: time}\n"
      "feature_views:\n  - name: v\n    entities: [thing]\n    source: src\n    ttl: 0\n"
      "    schema:\n      - {name: part, type: timestamp}\n";
  Definitions defs = Load(yaml);
  SourceScanOptions options;
  options.start = ParseTimestamp("1999-06-01").ValueOrDie();
  options.end = ParseTimestamp("2021-01-01").ValueOrDie();
  auto scan = FeatureSourceScan::Open(kTestData, defs, defs.feature_views[0], options);
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  auto table = FeatureSourceScan::ToReader(scan.MoveValueUnsafe(), nullptr)->ToTable().ValueOrDie();
  ASSERT_EQ(table->num_rows(), 2);  // ids 2 (2000-01-01) and 0 (2020-02-01)
  auto scan_again = FeatureSourceScan::Open(kTestData, defs, defs.feature_views[0], options);
  EXPECT_EQ((*scan_again)->stats().files_total, 5);
  EXPECT_GE((*scan_again)->stats().files_pruned, 2);  // 1969 and 1999-01-01 by their stats
  std::set<int64_t> ids;
  auto id_column = arrow::Concatenate(table->GetColumnByName("id")->chunks()).ValueOrDie();
  for (int64_t i = 0; i < id_column->length(); ++i) {
    ids.insert(static_cast<const arrow::Int64Array&>(*id_column).Value(i));
  }
  EXPECT_EQ(ids, (std::set<int64_t>{0, 2}));
  EXPECT_EQ(table->GetColumnByName("part")->type()->ToString(), "timestamp[us, tz=UTC]");
}

TEST(FeatureSourceScan, DeltaColumnMappingReadsPhysicalColumnsUnderLogicalNames) {
  GRANARY_REQUIRE_TESTDATA("delta-golden");
  const std::string yaml =
      "entities:\n  - {name: thing, join_keys: [LongType], value_type: int64}\n"
      "data_sources:\n  - {name: src, path: delta-golden/table-with-columnmapping-mode-name/delta,"
      " type: delta, timestamp_field: TimestampType}\n"
      "feature_views:\n  - name: v\n    entities: [thing]\n    source: src\n    ttl: 0\n"
      "    schema:\n      - {name: DoubleType, type: float64}\n";
  Definitions defs = Load(yaml);
  auto scan = FeatureSourceScan::Open(kTestData, defs, defs.feature_views[0], {});
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  auto table = FeatureSourceScan::ToReader(scan.MoveValueUnsafe(), nullptr)->ToTable().ValueOrDie();
  ASSERT_EQ(table->num_rows(), 5);  // the sixth row has a null time
  std::map<int64_t, double> values;
  auto keys = arrow::Concatenate(table->GetColumnByName("LongType")->chunks()).ValueOrDie();
  auto doubles = arrow::Concatenate(table->GetColumnByName("DoubleType")->chunks()).ValueOrDie();
  for (int64_t i = 0; i < keys->length(); ++i) {
    values[static_cast<const arrow::Int64Array&>(*keys).Value(i)] =
        static_cast<const arrow::DoubleArray&>(*doubles).Value(i);
  }
  EXPECT_EQ(values, (std::map<int64_t, double>{{0, 0.0}, {1, 1.0}, {2, 2.0}, {3, 3.0}, {4, 4.0}}));
}

// A file whose needed bytes are far larger than what a scan may hold: the readers keep a read
// buffer and a page per column and the batches in flight, never a whole row group or file. (The
// Parquet reader's pre-buffering kept every column chunk read until the file was done: 900 MiB
// for a 790 MB file.) Not a timing test: it counts the bytes the scan's readers allocate.
TEST(FeatureSourceScan, ReadersHoldPagesAndBatchesNotRowGroups) {
  auto dir = TempDir::Make("granary-scan-").ValueOrDie();
  constexpr int kRows = 600'000;
  constexpr int kGroup = 300'000;
  constexpr int kFeatures = 8;
  arrow::Int64Builder ids;
  arrow::TimestampBuilder ts(arrow::timestamp(arrow::TimeUnit::MICRO),
                             arrow::default_memory_pool());
  std::vector<arrow::DoubleBuilder> features(kFeatures);
  uint64_t state = 88172645463325252ull;  // xorshift: incompressible values
  auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  for (int i = 0; i < kRows; ++i) {
    ASSERT_TRUE(ids.Append(static_cast<int64_t>(next() % 100'000)).ok());
    ASSERT_TRUE(ts.Append(int64_t{1'700'000'000'000'000} + i * int64_t{1'000'000}).ok());
    for (auto& f : features) ASSERT_TRUE(f.Append(static_cast<double>(next() >> 11)).ok());
  }
  arrow::FieldVector fields = {
      arrow::field("driver_id", arrow::int64()),
      arrow::field("event_timestamp", arrow::timestamp(arrow::TimeUnit::MICRO))};
  arrow::ArrayVector columns = {ids.Finish().ValueOrDie(), ts.Finish().ValueOrDie()};
  std::string schema;
  for (int k = 0; k < kFeatures; ++k) {
    fields.push_back(arrow::field("f" + std::to_string(k), arrow::float64()));
    columns.push_back(features[k].Finish().ValueOrDie());
    schema += "      - {name: f" + std::to_string(k) + ", type: float64}\n";
  }
  auto table = arrow::Table::Make(arrow::schema(fields), columns);
  const auto path = dir.path() / "wide.parquet";
  {
    auto out = arrow::io::FileOutputStream::Open(path.string()).ValueOrDie();
    // Pages of 256 KiB without a dictionary: what the reader must hold per column is then its
    // own buffer and a page, not the writer's choices.
    auto props = parquet::WriterProperties::Builder()
                     .disable_dictionary()
                     ->data_pagesize(256 << 10)
                     ->build();
    ASSERT_TRUE(
        parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), out, kGroup, props).ok());
    ASSERT_TRUE(out->Close().ok());
  }
  table.reset();
  const int64_t file_bytes = static_cast<int64_t>(std::filesystem::file_size(path));
  ASSERT_GT(file_bytes, 40 << 20);  // 48 MB of needed bytes, 24 MB a row group

  Definitions defs = Load(
      "entities:\n  - {name: driver, join_keys: [driver_id], value_type: int64}\n"
      "data_sources:\n  - {name: src, path: wide.parquet, timestamp_field: event_timestamp}\n"
      "feature_views:\n  - name: v\n    entities: [driver]\n    source: src\n    ttl: 1d\n"
      "    schema:\n" +
      schema);
  arrow::ProxyMemoryPool pool(arrow::default_memory_pool());
  SourceScanOptions options;
  options.pool = &pool;
  options.batch_rows = 16 * 1024;
  {
    auto scan = FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], options);
    ASSERT_TRUE(scan.ok()) << scan.status().ToString();
    EXPECT_EQ(CountRows(scan->get()), kRows);
  }
  // Two readers, one a row group, of 10 columns: a 400 KiB buffer and a 256 KiB page a column
  // each, and up to 4 batches of 16Ki rows (1.3 MB each) each decoded ahead: about 24 MiB.
  // Pre-buffering held 49 MiB here (the whole file).
  EXPECT_LT(pool.max_memory(), 32 << 20) << "the scan's readers held " << (pool.max_memory() >> 20)
                                         << " MiB of a " << (file_bytes >> 20) << " MiB file";
  EXPECT_GT(pool.max_memory(), 0);  // the readers did allocate from the pool given
  EXPECT_EQ(pool.bytes_allocated(), 0);
}

// Planning reads footers a window at a time on several threads (16 files first, growing to
// 256): every file of a source of 600 is planned once and read, in path order, the same read
// whole or by row groups, and of two bad files the first in path order is the one reported.
TEST(FeatureSourceScan, ASourceOfManyFilesIsPlannedInOrderAndItsFirstBadFileReported) {
  auto dir = TempDir::Make("granary-scan-").ValueOrDie();
  constexpr int kFiles = 600;
  for (int f = 0; f < kFiles; ++f) {
    WriteHourly(dir.path() / fmt::format("data/part-{:04}.parquet", f), f * 10, 10, 5);
  }
  Definitions defs = Load(Defs("data"));
  auto scan = FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], {});
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  EXPECT_EQ((*scan)->stats().files_total, kFiles);
  EXPECT_EQ((*scan)->stats().row_groups_total, 2 * kFiles);
  EXPECT_EQ((*scan)->stats().rows_estimated, 10 * kFiles);
  // Small files are read whole (one unit each); the rows and their order are those of a read
  // of one row group at a time (a decoding bound of 1 KiB keeps files split).
  const auto whole = RatesByPosition(scan->get());
  EXPECT_EQ(whole.size(), static_cast<size_t>(10 * kFiles));
  SourceScanOptions split;
  split.decode_memory_bytes = 1024;
  auto by_row_group = FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], split);
  ASSERT_TRUE(by_row_group.ok());
  EXPECT_EQ(RatesByPosition(by_row_group->get()), whole);

  // Two bad files in one window (files 240-495): the first in path order is named.
  for (int f : {450, 303}) {
    std::ofstream(dir.path() / fmt::format("data/part-{:04}.parquet", f), std::ios::trunc)
        << "not parquet";
  }
  auto bad = FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], {});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("part-0303.parquet is not a readable Parquet file"),
            std::string::npos)
      << bad.status().message();
}

TEST(FeatureSourceScan, ABoundOnDecodingReadsOneRowGroupAtATimeAndTheSameRows) {
  auto dir = TempDir::Make("granary-scan-").ValueOrDie();
  WriteHourly(dir.path() / "data/a.parquet", 0, 1000, 100);  // 10 row groups
  WriteHourly(dir.path() / "data/b.parquet", 0, 300, 1000);  // one row group
  Definitions defs = Load(Defs("data"));
  auto read = [&](int64_t decode_memory_bytes, int* readers) {
    SourceScanOptions options;
    options.decode_memory_bytes = decode_memory_bytes;
    options.batch_rows = 64;  // batches that do not follow row groups
    auto scan = FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], options);
    EXPECT_TRUE(scan.ok()) << scan.status().ToString();
    if (!scan.ok()) return std::map<int64_t, double>();
    auto rates = RatesByPosition(scan->get());
    *readers = (*scan)->stats().readers;
    return rates;
  };
  int unbounded = 0, roomy = 0, tight = 0;
  const auto all = read(0, &unbounded);
  EXPECT_EQ(all.size(), 1300u);
  EXPECT_EQ(unbounded, 2);
  // The largest row group to read is b's, 300 rows of three columns: a few KiB.
  EXPECT_EQ(read(int64_t{1} << 20, &roomy), all);
  EXPECT_EQ(roomy, 2);
  EXPECT_EQ(read(1024, &tight), all);
  EXPECT_EQ(tight, 1);
}

// A unit is a row group, and an open parses the whole footer (a file of 1,000 columns in 20 row
// groups was parsed 20 times a pass): a reader keeps its file open for its next unit of the same
// file. One reader (a tight bound); the file removed once the first batch is in is still read to
// its end, whole or picked (a new open per row group would fail).
TEST(FeatureSourceScan, AReaderReadsAFilesRowGroupsThroughOneOpen) {
  auto dir = TempDir::Make("granary-scan-").ValueOrDie();
  const auto file = dir.path() / "data/a.parquet";
  Definitions defs = Load(Defs("data"));
  for (const bool gather_mode : {false, true}) {
    SCOPED_TRACE(gather_mode ? "gather mode" : "whole row groups");
    WriteHourly(file, 0, 1000, 100);  // 10 row groups
    SourceScanOptions options;
    options.decode_memory_bytes = 256;
    options.batch_rows = 64;
    if (gather_mode) {
      options.with_join_keys = options.with_created_timestamp = false;
      options.with_event_timestamp = false;
      options.chosen_rows = [](int64_t begin, int64_t end, std::vector<int64_t>* rows) {
        rows->clear();
        for (int64_t p = begin + (3 - begin % 3) % 3; p < end; p += 3) rows->push_back(p);
      };
    }
    auto all = FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], options);
    ASSERT_TRUE(all.ok()) << all.status().ToString();
    const auto expected = RatesByPosition(all->get());
    EXPECT_EQ(expected.size(), gather_mode ? 334u : 1000u);
    auto scan = FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], options);
    ASSERT_TRUE(scan.ok()) << scan.status().ToString();
    EXPECT_EQ(RatesByPosition(scan->get(), [&] { std::filesystem::remove(file); }), expected);
    EXPECT_EQ((*scan)->stats().readers, 1);
    EXPECT_FALSE(std::filesystem::exists(file));
  }
  // Rewritten in place (same inode) once the first batch is in: the next row group's unit opens
  // the file again and its check against the plan names it (the kept footer would not fit).
  WriteHourly(file, 0, 1000, 100);
  SourceScanOptions options;
  options.decode_memory_bytes = 256;
  auto scan = FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], options);
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  ASSERT_TRUE((*scan)->Next().ok());
  WriteHourly(file, 0, 500, 100);
  Result<std::shared_ptr<arrow::RecordBatch>> next = std::shared_ptr<arrow::RecordBatch>();
  while ((next = (*scan)->Next()).ok() && *next != nullptr) {
  }
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.status().code(), StatusCode::kIOError) << next.status().ToString();
  EXPECT_NE(next.status().message().find("changed while it was read"), std::string::npos);
}

TEST(FeatureSourceScan, GatherModeReturnsOnlyTheChosenRowsAndCountsWhatAPickedRowGroupHolds) {
  // a: two row groups of 1,000,000 rates (float32 in the file, read by Arrow's reader and
  // converted: 4 MB decoded each); b: three of 1,000, the middle one without a chosen row.
  // Chosen: every 997th row of a, b's first and last rows.
  auto dir = TempDir::Make("granary-scan-").ValueOrDie();
  WriteHourly(dir.path() / "data/a.parquet", 0, 2'000'000, 1'000'000);
  WriteHourly(dir.path() / "data/b.parquet", 0, 3000, 1000);
  Definitions defs = Load(Defs("data"));
  std::vector<int64_t> chosen;
  for (int64_t p = 0; p < 2'000'000; p += 997) chosen.push_back(p);
  chosen.push_back(2'000'000);
  chosen.push_back(2'000'000 + 2999);
  auto first_at_or_after = [&chosen](int64_t position) {
    return std::lower_bound(chosen.begin(), chosen.end(), position);
  };
  auto read = [&](bool gather_mode, SourceScanStats* stats) {
    SourceScanOptions options;
    options.with_join_keys = false;
    options.with_created_timestamp = false;
    options.with_event_timestamp = false;
    // Two whole row groups of a do not fit; two picked ones (their chosen share, and a page
    // and a dictionary a column: 2 MiB) do.
    options.decode_memory_bytes = int64_t{6} << 20;
    options.wants_rows = [&](int64_t begin, int64_t end) {
      auto it = first_at_or_after(begin);
      return it != chosen.end() && *it < end;
    };
    if (gather_mode) {
      options.chosen_rows = [&](int64_t begin, int64_t end, std::vector<int64_t>* rows) {
        rows->clear();
        for (auto it = first_at_or_after(begin); it != chosen.end() && *it < end; ++it) {
          rows->push_back(*it);
        }
      };
    }
    auto scan = FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], options);
    EXPECT_TRUE(scan.ok()) << scan.status().ToString();
    if (!scan.ok()) return std::map<int64_t, double>();
    auto rates = RatesByPosition(scan->get());
    *stats = (*scan)->stats();
    return rates;
  };
  SourceScanStats whole_stats, picked_stats;
  const auto whole = read(false, &whole_stats);
  const auto picked = read(true, &picked_stats);
  std::map<int64_t, double> expected;
  for (int64_t position : chosen) expected[position] = whole.at(position);
  EXPECT_EQ(picked, expected);
  EXPECT_EQ(whole_stats.readers, 1);
  EXPECT_EQ(picked_stats.readers, 2);
  EXPECT_EQ(whole_stats.row_groups_picked, 0);
  EXPECT_EQ(picked_stats.row_groups_picked, 4);
  EXPECT_EQ(picked_stats.row_groups_skipped, 1);
  EXPECT_EQ(picked_stats.rows_returned, static_cast<int64_t>(chosen.size()));
  EXPECT_EQ(picked_stats.rows_scanned, whole_stats.rows_scanned);
}

}  // namespace
}  // namespace granary
