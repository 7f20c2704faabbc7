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
#include "granary/testing/source_scan_files.h"
#include "granary/testing/testdata.h"

namespace granary {
namespace {

// The helpers shared with source_scan_read_test.cc.
using testing::CountRows;
using testing::Defs;
using testing::Load;
using testing::RatesByPosition;
using testing::WriteHourly;
using testing::WriteHourlyWithNullTimes;

const std::filesystem::path kTestData = testing::TestDataDir();

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

}  // namespace
}  // namespace granary
