// FeatureSourceScan's readers: what they hold, how many decode at once, how they open files,
// and the gather mode's reads of chosen rows.
#include <arrow/api.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "granary/common/temp_dir.h"
#include "granary/offline/source_scan.h"
#include "granary/testing/source_scan_files.h"

namespace granary {
namespace {

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

  Definitions defs = testing::Load(
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
    EXPECT_EQ(testing::CountRows(scan->get()), kRows);
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
    testing::WriteHourly(dir.path() / fmt::format("data/part-{:04}.parquet", f), f * 10, 10, 5);
  }
  Definitions defs = testing::Load(testing::Defs("data"));
  auto scan = FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], {});
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  EXPECT_EQ((*scan)->stats().files_total, kFiles);
  EXPECT_EQ((*scan)->stats().row_groups_total, 2 * kFiles);
  EXPECT_EQ((*scan)->stats().rows_estimated, 10 * kFiles);
  // Small files are read whole (one unit each); the rows and their order are those of a read
  // of one row group at a time (a decoding bound of 1 KiB keeps files split).
  const auto whole = testing::RatesByPosition(scan->get());
  EXPECT_EQ(whole.size(), static_cast<size_t>(10 * kFiles));
  SourceScanOptions split;
  split.decode_memory_bytes = 1024;
  auto by_row_group = FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], split);
  ASSERT_TRUE(by_row_group.ok());
  EXPECT_EQ(testing::RatesByPosition(by_row_group->get()), whole);

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
  testing::WriteHourly(dir.path() / "data/a.parquet", 0, 1000, 100);  // 10 row groups
  testing::WriteHourly(dir.path() / "data/b.parquet", 0, 300, 1000);  // one row group
  Definitions defs = testing::Load(testing::Defs("data"));
  auto read = [&](int64_t decode_memory_bytes, int* readers) {
    SourceScanOptions options;
    options.decode_memory_bytes = decode_memory_bytes;
    options.batch_rows = 64;  // batches that do not follow row groups
    auto scan = FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], options);
    EXPECT_TRUE(scan.ok()) << scan.status().ToString();
    if (!scan.ok()) return std::map<int64_t, double>();
    auto rates = testing::RatesByPosition(scan->get());
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
  Definitions defs = testing::Load(testing::Defs("data"));
  for (const bool gather_mode : {false, true}) {
    SCOPED_TRACE(gather_mode ? "gather mode" : "whole row groups");
    testing::WriteHourly(file, 0, 1000, 100);  // 10 row groups
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
    const auto expected = testing::RatesByPosition(all->get());
    EXPECT_EQ(expected.size(), gather_mode ? 334u : 1000u);
    auto scan = FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], options);
    ASSERT_TRUE(scan.ok()) << scan.status().ToString();
    EXPECT_EQ(testing::RatesByPosition(scan->get(), [&] { std::filesystem::remove(file); }),
              expected);
    EXPECT_EQ((*scan)->stats().readers, 1);
    EXPECT_FALSE(std::filesystem::exists(file));
  }
  // Rewritten in place (same inode) once the first batch is in: the next row group's unit opens
  // the file again and its check against the plan names it (the kept footer would not fit).
  testing::WriteHourly(file, 0, 1000, 100);
  SourceScanOptions options;
  options.decode_memory_bytes = 256;
  auto scan = FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], options);
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  ASSERT_TRUE((*scan)->Next().ok());
  testing::WriteHourly(file, 0, 500, 100);
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
  testing::WriteHourly(dir.path() / "data/a.parquet", 0, 2'000'000, 1'000'000);
  testing::WriteHourly(dir.path() / "data/b.parquet", 0, 3000, 1000);
  Definitions defs = testing::Load(testing::Defs("data"));
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
    auto rates = testing::RatesByPosition(scan->get());
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
