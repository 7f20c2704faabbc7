// The footer digests' cache (parquet_footers.h): found again for the same file only, read again
// after any rewrite, bounded, and equal to what the parsed footer says.
#include "granary/offline/parquet_footers.h"

#include <arrow/api.h>
#include <arrow/io/api.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <parquet/arrow/writer.h>
#include <parquet/file_reader.h>
#include <parquet/metadata.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "granary/common/temp_dir.h"
#include "granary/offline/source_fragment.h"
#include "granary/testing/testdata.h"

namespace granary {
namespace {

constexpr int64_t kMicrosPerDay = 86'400'000'000;

// A file of `rows` rows per row group in `row_groups` row groups: an int64 key (first + row), a
// timestamp (day `day` + row microseconds) and `extra` float64 columns. Plain encoding, no
// compression: files of equal shapes have equal sizes whatever their values.
void WriteFile(const std::filesystem::path& path, int64_t first, int64_t day, int rows = 4,
               int row_groups = 2, int extra = 1) {
  arrow::Int64Builder keys;
  arrow::TimestampBuilder times(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                                arrow::default_memory_pool());
  for (int i = 0; i < rows * row_groups; ++i) {
    ASSERT_TRUE(keys.Append(first + i).ok());
    ASSERT_TRUE(times.Append(day * kMicrosPerDay + i).ok());
  }
  arrow::FieldVector fields = {arrow::field("key", arrow::int64()),
                               arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"))};
  arrow::ArrayVector arrays = {*keys.Finish(), *times.Finish()};
  for (int c = 0; c < extra; ++c) {
    arrow::DoubleBuilder values;
    for (int i = 0; i < rows * row_groups; ++i) ASSERT_TRUE(values.Append(first * 0.5 + i).ok());
    fields.push_back(arrow::field("f" + std::to_string(c), arrow::float64()));
    arrays.push_back(*values.Finish());
  }
  auto table = arrow::Table::Make(arrow::schema(fields), arrays);
  auto out = arrow::io::FileOutputStream::Open(path.string());
  ASSERT_TRUE(out.ok());
  auto properties = parquet::WriterProperties::Builder()
                        .disable_dictionary()
                        ->compression(parquet::Compression::UNCOMPRESSED)
                        ->build();
  ASSERT_TRUE(
      parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), *out, rows, properties)
          .ok());
  ASSERT_TRUE((*out)->Close().ok());
}

std::string Bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class ParquetFootersTest : public ::testing::Test {
 protected:
  // Files written by a test are kept once they are kSettle old (the product waits 2 s).
  static constexpr auto kSettle = std::chrono::milliseconds(100);
  static void Settle() { std::this_thread::sleep_for(kSettle + std::chrono::milliseconds(20)); }

  void SetUp() override {
    SetParquetFooterSettleNanos(std::chrono::nanoseconds(kSettle).count());
    ClearParquetFooterCache();
    auto dir = TempDir::Make("granary-footers");
    ASSERT_TRUE(dir.ok());
    dir_ = std::make_unique<TempDir>(std::move(*dir));
  }
  void TearDown() override {
    SetParquetFooterSettleNanos(kParquetFooterSettleNanos);
    ClearParquetFooterCache();
  }
  std::filesystem::path Path(const std::string& name) const { return dir_->path() / name; }

  std::unique_ptr<TempDir> dir_;
};

TEST_F(ParquetFootersTest, AnUnchangedFileIsReadOnceAndItsDigestMatchesTheFooter) {
  const auto path = Path("a.parquet");
  WriteFile(path, 100, 10, /*rows=*/4, /*row_groups=*/3, /*extra=*/2);
  Settle();
  auto first = ReadParquetFooterDigest(path.string());
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = ReadParquetFooterDigest(path.string());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first->get(), second->get());
  const ParquetFooterCacheStats counts = ParquetFooterCacheCounts();
  EXPECT_EQ(counts.misses, 1);
  EXPECT_EQ(counts.hits, 1);
  EXPECT_EQ(counts.digests, 1);
  EXPECT_GT(counts.bytes, 0);

  const ParquetFooterDigest& d = **first;
  auto metadata = parquet::ParquetFileReader::OpenFile(path.string())->metadata();
  EXPECT_EQ(d.num_rows, 12);
  EXPECT_EQ(d.row_group_rows, (std::vector<int64_t>{4, 4, 4}));
  EXPECT_EQ(d.columns, (std::vector<std::string>{"key", "ts", "f0", "f1"}));
  ASSERT_EQ(d.leaves(), 4u);
  for (int rg = 0; rg < 3; ++rg) {
    for (int leaf = 0; leaf < 4; ++leaf) {
      EXPECT_EQ(d.leaf_bytes[static_cast<size_t>(rg * 4 + leaf)],
                metadata->RowGroup(rg)->ColumnChunk(leaf)->total_uncompressed_size());
    }
  }
  // The timestamp column's ranges, in microseconds, one row group after the other.
  ASSERT_EQ(d.time_leaves, (std::vector<int>{1}));
  ASSERT_EQ(d.time_ranges.size(), 3u);
  for (int rg = 0; rg < 3; ++rg) {
    ASSERT_TRUE(d.time_ranges[static_cast<size_t>(rg)].has_value());
    EXPECT_EQ(d.time_ranges[static_cast<size_t>(rg)]->first, 10 * kMicrosPerDay + rg * 4);
    EXPECT_EQ(d.time_ranges[static_cast<size_t>(rg)]->second, 10 * kMicrosPerDay + rg * 4 + 3);
  }
  EXPECT_NE(d.stored_hash, 0u);
  EXPECT_TRUE(d.leaf_bytes_failures.empty());
  EXPECT_TRUE(d.time_range_failures.empty());
}

TEST_F(ParquetFootersTest, AFileRewrittenInPlaceWithItsSizeAndTimeKeptIsReadAgain) {
  const auto path = Path("a.parquet");
  const auto other = Path("b.parquet");
  WriteFile(path, 100, 10);
  WriteFile(other, 900, 20);
  const std::string replacement = Bytes(other);
  ASSERT_EQ(replacement.size(), std::filesystem::file_size(path)) << "the shapes must match";
  Settle();
  auto before = ReadParquetFooterDigest(path.string());
  ASSERT_TRUE(before.ok());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  // From here a file must have settled for an hour to be kept: the digest read after the
  // rewrite is not, however slow the machine.
  SetParquetFooterSettleNanos(int64_t{3600} * 1'000'000'000);
  // Overwrite the bytes in place (same inode, same size), then set the modification time back:
  // only the change time, which no program can set, tells the rewrite.
  {
    const int fd = ::open(path.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, replacement.data(), replacement.size(), 0),
              static_cast<ssize_t>(replacement.size()));
    ::close(fd);
    const struct timespec times[2] = {st.st_atim, st.st_mtim};
    ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  }
  struct stat after_st {};
  ASSERT_EQ(::stat(path.c_str(), &after_st), 0);
  ASSERT_EQ(after_st.st_ino, st.st_ino);
  ASSERT_EQ(after_st.st_mtim.tv_nsec, st.st_mtim.tv_nsec);
  ASSERT_EQ(after_st.st_mtim.tv_sec, st.st_mtim.tv_sec);

  auto after = ReadParquetFooterDigest(path.string());
  ASSERT_TRUE(after.ok());
  EXPECT_NE((*after)->stored_hash, (*before)->stored_hash);
  ASSERT_TRUE((*after)->time_ranges[0].has_value());
  EXPECT_EQ((*after)->time_ranges[0]->first, 20 * kMicrosPerDay);
  EXPECT_EQ(ParquetFooterCacheCounts().misses, 2);
  // The stale digest is gone, and the new one not kept: the file changed a moment ago.
  EXPECT_EQ(ParquetFooterCacheCounts().digests, 0);
  SetParquetFooterSettleNanos(std::chrono::nanoseconds(kSettle).count());
  Settle();
  ASSERT_TRUE(ReadParquetFooterDigest(path.string()).ok());
  ASSERT_TRUE(ReadParquetFooterDigest(path.string()).ok());
  EXPECT_EQ(ParquetFooterCacheCounts().hits, 1);
}

TEST_F(ParquetFootersTest, AFileReplacedUnderItsNameIsReadAgain) {
  const auto path = Path("a.parquet");
  WriteFile(path, 100, 10);
  Settle();
  auto before = ReadParquetFooterDigest(path.string());
  ASSERT_TRUE(before.ok());
  ASSERT_EQ(ParquetFooterCacheCounts().digests, 1);
  WriteFile(Path("next.parquet"), 100, 30);
  std::filesystem::rename(Path("next.parquet"), path);
  auto after = ReadParquetFooterDigest(path.string());
  ASSERT_TRUE(after.ok());
  EXPECT_EQ((*after)->time_ranges[0]->first, 30 * kMicrosPerDay);
  EXPECT_EQ(ParquetFooterCacheCounts().hits, 0);
}

TEST_F(ParquetFootersTest, AFileThatChangedWithinTheSettleTimeIsNotKept) {
  ParquetFileIdentity id;
  id.changed_ns = 1'700'000'000'000'000'000;
  EXPECT_TRUE(id.Settled(id.changed_ns + 2'000'000'000, 2'000'000'000));
  EXPECT_FALSE(id.Settled(id.changed_ns + 1'999'999'999, 2'000'000'000));
  EXPECT_FALSE(id.Settled(id.changed_ns - 5, 0));  // a clock behind the file's time

  // A file written within the settle time (an hour here, whatever the machine's speed) is read
  // every time.
  SetParquetFooterSettleNanos(int64_t{3600} * 1'000'000'000);
  const auto path = Path("a.parquet");
  WriteFile(path, 100, 10);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(ReadParquetFooterDigest(path.string()).ok());
  EXPECT_EQ(ParquetFooterCacheCounts().misses, 3);
  EXPECT_EQ(ParquetFooterCacheCounts().digests, 0);
}

TEST_F(ParquetFootersTest, ErrorsNameTheFileAndAreNotKept) {
  const auto path = Path("a.parquet");
  auto missing = ReadParquetFooterDigest(path.string());
  ASSERT_TRUE(missing.status().code() == StatusCode::kIOError);
  EXPECT_NE(missing.status().message().find(path.string()), std::string::npos);
  EXPECT_NE(missing.status().message().find("does not exist"), std::string::npos);
  {
    std::ofstream out(path);
    out << "key,ts\n1,2\n";
  }
  auto text = ReadParquetFooterDigest(path.string());
  ASSERT_TRUE(text.status().code() == StatusCode::kInvalidArgument);
  EXPECT_NE(text.status().message().find(path.string() + " is not a readable Parquet file"),
            std::string::npos)
      << text.status().message();
  EXPECT_EQ(ParquetFooterCacheCounts().digests, 0);
  std::filesystem::remove(path);
  WriteFile(path, 1, 1);
  EXPECT_TRUE(ReadParquetFooterDigest(path.string()).ok());
}

TEST_F(ParquetFootersTest, TheCacheStaysWithinItsBoundAndKeepsAShareOfALargerScan) {
  // A wide file's digest (600 columns x 8 row groups: about 70 KB) under 300 names (hard links):
  // 19 MB of digests for a bound of 16 MiB.
  const auto wide = Path("wide.parquet");
  WriteFile(wide, 0, 1, /*rows=*/2, /*row_groups=*/8, /*extra=*/598);
  auto one = ReadParquetFooterDigest(wide.string());
  ASSERT_TRUE(one.ok());
  const int64_t each = (*one)->Footprint();
  ASSERT_GT(each * 300, kParquetDigestBytes) << "the test must overflow the bound";
  std::vector<std::string> names;
  for (int i = 0; i < 300; ++i) {
    names.push_back(Path("link-" + std::to_string(i) + ".parquet").string());
    std::filesystem::create_hard_link(wide, names.back());
  }
  Settle();  // a new link changes the file's change time
  ClearParquetFooterCache();
  for (int pass = 0; pass < 2; ++pass) {
    for (const std::string& name : names) ASSERT_TRUE(ReadParquetFooterDigest(name).ok());
    const ParquetFooterCacheStats counts = ParquetFooterCacheCounts();
    EXPECT_LE(counts.bytes, kParquetDigestBytes);
    EXPECT_LT(counts.digests, 300);
  }
  // The second pass found the share that stayed (random eviction), not none (as LRU would).
  const ParquetFooterCacheStats counts = ParquetFooterCacheCounts();
  EXPECT_GT(counts.hits, 300 / 10) << "hits " << counts.hits << " misses " << counts.misses;
  EXPECT_EQ(counts.hits + counts.misses, 600);
}

TEST_F(ParquetFootersTest, ThreadsReadingTheSameFilesAtOnceAgree) {
  std::vector<std::string> paths;
  for (int i = 0; i < 16; ++i) {
    paths.push_back(Path("t" + std::to_string(i) + ".parquet").string());
    WriteFile(paths.back(), i * 10, i + 1);
  }
  Settle();
  std::vector<std::thread> threads;
  std::vector<int> wrong(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round) {
        for (size_t i = 0; i < paths.size(); ++i) {
          auto d = ReadParquetFooterDigest(paths[(i + static_cast<size_t>(t)) % paths.size()]);
          const int64_t day = static_cast<int64_t>((i + static_cast<size_t>(t)) % paths.size()) + 1;
          if (!d.ok() || (*d)->time_ranges[0]->first != day * kMicrosPerDay) ++wrong[t];
        }
        if (t == 0 && round % 5 == 0) ClearParquetFooterCache();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong, (std::vector<int>(4, 0)));
}

// Planning a fragment from a digest found again is planning it from the file: every file of
// apache/parquet-testing that plans, planned twice, the second time from the cache.
TEST_F(ParquetFootersTest, APlanFromTheCacheEqualsThePlanFromTheFile) {
  const std::filesystem::path dir = testing::TestDataDir() / "parquet-testing";
  if (!std::filesystem::exists(dir)) {
    GTEST_SKIP() << "no " << dir << " (../shared/testdata is absent in a fresh clone)";
  }
  int planned = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (entry.path().extension() != ".parquet") continue;
    FragmentRequest request;
    auto digest = ReadParquetFooterDigest(entry.path().string());
    if (!digest.ok()) continue;
    for (const std::string& c : (*digest)->columns) request.columns.push_back(c);
    if (!(*digest)->time_leaves.empty()) {
      request.timestamp_column = (*digest)->columns[static_cast<size_t>(
          (*digest)->leaf_column[static_cast<size_t>((*digest)->time_leaves[0])])];
      request.start = Timestamp::FromMicros(0);
    }
    Fragment a, b;
    a.path = b.path = entry.path();
    int64_t total_a = 0, pruned_a = 0, total_b = 0, pruned_b = 0;
    ClearParquetFooterCache();
    const Status first = PlanParquetFragment(request, &a, &total_a, &pruned_a);
    const Status second = PlanParquetFragment(request, &b, &total_b, &pruned_b);
    EXPECT_EQ(ParquetFooterCacheCounts().hits, 1) << entry.path();
    ASSERT_EQ(first.ToString(), second.ToString()) << entry.path();
    if (!first.ok()) continue;
    ++planned;
    EXPECT_EQ(a.row_groups, b.row_groups) << entry.path();
    EXPECT_EQ(a.bytes_estimated, b.bytes_estimated) << entry.path();
    EXPECT_EQ(a.rows_estimated, b.rows_estimated) << entry.path();
    EXPECT_EQ(a.footer_hash, b.footer_hash) << entry.path();
    EXPECT_EQ(total_a, total_b);
    EXPECT_EQ(pruned_a, pruned_b);
    // And the plan's figures are the footer's: rows, and the bytes of every leaf in the row
    // groups kept.
    auto metadata = parquet::ParquetFileReader::OpenFile(entry.path().string())->metadata();
    EXPECT_EQ(a.num_rows, metadata->num_rows()) << entry.path();
    ASSERT_EQ(static_cast<int>(a.row_group_rows.size()), metadata->num_row_groups());
    int64_t bytes = 0, rows = 0;
    try {
      for (int rg : a.row_groups) {
        rows += metadata->RowGroup(rg)->num_rows();
        for (int leaf = 0; leaf < metadata->num_columns(); ++leaf) {
          bytes += metadata->RowGroup(rg)->ColumnChunk(leaf)->total_uncompressed_size();
        }
      }
    } catch (const std::exception&) {
      continue;  // a footer whose accessors throw (the plan read only what it needed)
    }
    EXPECT_EQ(a.rows_estimated, rows) << entry.path();
    EXPECT_EQ(a.bytes_estimated, bytes) << entry.path();
  }
  EXPECT_GT(planned, 50);
}

}  // namespace
}  // namespace granary
