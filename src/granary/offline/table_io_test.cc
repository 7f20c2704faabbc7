// Reading and writing tables: CSV edge cases (a header-only file, values Arrow cannot convert,
// timestamps written as RFC 3339); the new file gets the mode the process's umask gives, and
// writing never changes the umask, even for a moment (other threads create files meanwhile).
#include "granary/offline/table_io.h"

#include <arrow/api.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "granary/common/temp_dir.h"
#include "granary/common/time.h"

namespace granary {
namespace {

std::shared_ptr<arrow::Table> SmallTable() {
  arrow::Int64Builder b;
  EXPECT_TRUE(b.AppendValues({1, 2, 3}).ok());
  return arrow::Table::Make(arrow::schema({arrow::field("x", arrow::int64())}),
                            {b.Finish().ValueOrDie()});
}

mode_t ModeOf(const std::filesystem::path& path) {
  struct stat st {};
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

// Sets the umask for a scope.
class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : saved_(umask(mask)) {}
  ~ScopedUmask() { umask(saved_); }

 private:
  mode_t saved_;
};

void WriteText(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path) << text;
}

TEST(ReadTableFile, AHeaderOnlyCsvIsAnEmptyTableOfStringColumns) {
  auto dir = TempDir::Make("granary-table-io-").ValueOrDie();
  WriteText(dir.path() / "e.csv", "customer_id,event_timestamp\n");
  auto table = ReadTableFile(dir.path() / "e.csv");
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  EXPECT_EQ((*table)->num_rows(), 0);
  EXPECT_EQ((*table)->schema()->ToString(), "customer_id: string\nevent_timestamp: string");
}

TEST(ReadTableFile, ACsvValueThatDoesNotConvertNamesTheFileColumnRowAndLine) {
  auto dir = TempDir::Make("granary-table-io-").ValueOrDie();
  const auto path = dir.path() / "e.csv";
  WriteText(path, "event_timestamp,customer_id\n2026-01-01,1\n2026-01-01,2\n2026-01-01,x3\n");
  auto table = ReadTableFile(path, {{"customer_id", arrow::int64()}});
  ASSERT_FALSE(table.ok());
  EXPECT_EQ(table.status().message(),
            path.string() +
                ": column 'customer_id', row 3 (line 4): 'x3' is not a valid int64; fix the "
                "value or the column's type");
}

TEST(WriteTableFile, CsvTimestampsAreRfc3339) {
  auto dir = TempDir::Make("granary-table-io-").ValueOrDie();
  arrow::TimestampBuilder utc(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                              arrow::default_memory_pool());
  const int64_t t = ParseTimestamp("2026-12-04T08:00:00Z").ValueOrDie().micros;
  ASSERT_TRUE(utc.AppendValues({t, t + 500000}).ok());
  ASSERT_TRUE(utc.AppendNull().ok());
  arrow::TimestampBuilder nanos(arrow::timestamp(arrow::TimeUnit::NANO),
                                arrow::default_memory_pool());
  ASSERT_TRUE(nanos.AppendValues({t * 1000 + 7, t * 1000, t * 1000}).ok());
  auto table = arrow::Table::Make(
      arrow::schema({arrow::field("at", utc.type()), arrow::field("naive", nanos.type())}),
      {utc.Finish().ValueOrDie(), nanos.Finish().ValueOrDie()});
  ASSERT_TRUE(WriteTableFile(*table, dir.path() / "o.csv").ok());
  std::ifstream in(dir.path() / "o.csv");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text,
            "\"at\",\"naive\"\n"
            "\"2026-12-04T08:00:00Z\",\"2026-12-04T08:00:00.000000007\"\n"
            "\"2026-12-04T08:00:00.500000Z\",\"2026-12-04T08:00:00\"\n"
            ",\"2026-12-04T08:00:00\"\n");
}

TEST(WriteTableFile, TheFileGetsTheModeOfTheUmask) {
  ScopedUmask mask(027);
  auto dir = TempDir::Make("granary-table-io-").ValueOrDie();
  for (const char* name : {"out.csv", "out.parquet"}) {
    ASSERT_TRUE(WriteTableFile(*SmallTable(), dir.path() / name).ok()) << name;
    EXPECT_EQ(ModeOf(dir.path() / name), 0640u) << name;
  }
  // And the umask is still the caller's.
  const mode_t now = umask(027);
  EXPECT_EQ(now, 027u);
}

TEST(WriteTableFile, OtherThreadsCreatingFilesMeanwhileKeepTheUmask) {
  ScopedUmask mask(022);
  auto dir = TempDir::Make("granary-table-io-race-").ValueOrDie();
  std::atomic<bool> stop{false};
  std::atomic<int64_t> created{0}, wrong{0};
  // Another thread of the process creates files all the time, as a server or a parallel writer
  // would; each must get 0644, never 0666 from a umask briefly set to 0.
  std::thread creator([&] {
    const auto path = dir.path() / "probe";
    while (!stop) {
      int fd = open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0666);
      if (fd < 0) continue;
      struct stat st {};
      if (fstat(fd, &st) == 0 && (st.st_mode & 0777) != 0644) ++wrong;
      close(fd);
      unlink(path.c_str());
      ++created;
    }
  });
  auto table = SmallTable();
  for (int i = 0; i < 3000; ++i) {
    ASSERT_TRUE(WriteTableFile(*table, dir.path() / "t.csv").ok());
  }
  stop = true;
  creator.join();
  EXPECT_GT(created.load(), 0);
  EXPECT_EQ(wrong.load(), 0) << "of " << created.load() << " files created meanwhile";
}

}  // namespace
}  // namespace granary
