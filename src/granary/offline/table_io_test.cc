// Writing tables: the new file gets the mode the process's umask gives, and writing never
// changes the umask, even for a moment (other threads create files meanwhile).
#include "granary/offline/table_io.h"

#include <arrow/api.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "granary/common/temp_dir.h"

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
