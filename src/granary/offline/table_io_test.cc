// Reading and writing tables: CSV edge cases (a header-only file, values Arrow cannot convert,
// timestamps written as RFC 3339); the new file gets the mode the process's umask gives, and
// writing never changes the umask, even for a moment (other threads create files meanwhile); a
// table written batch by batch (TableFileWriter) equals the whole table, appears only on
// Commit() and leaves nothing behind (and an older file untouched) when abandoned; the next
// writer of an output removes the temporary file of a killed run, never a live writer's.
#include "granary/offline/table_io.h"

#include <arrow/api.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
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

// A CSV's timestamp in seconds beyond int64 microseconds was multiplied unchecked and written as
// some other time; it is now an error naming the column and the row, and no file is left.
TEST(WriteTableFile, CsvTimestampsBeyondInt64MicrosecondsAreErrorsNamingTheColumnAndRow) {
  auto dir = TempDir::Make("granary-table-io-").ValueOrDie();
  arrow::TimestampBuilder seconds(arrow::timestamp(arrow::TimeUnit::SECOND, "UTC"),
                                  arrow::default_memory_pool());
  ASSERT_TRUE(seconds.AppendValues({0, -1}).ok());
  auto first = seconds.Finish().ValueOrDie();
  ASSERT_TRUE(seconds.AppendValues({9'300'000'000'000'000}).ok());
  auto second = seconds.Finish().ValueOrDie();
  auto table = arrow::Table::Make(
      arrow::schema({arrow::field("at", first->type())}),
      {std::make_shared<arrow::ChunkedArray>(arrow::ArrayVector{first, second})});
  Status written = WriteTableFile(*table, dir.path() / "o.csv");
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(written.message().find("column 'at', row 2: 9300000000000000 seconds since "
                                   "1970-01-01 is beyond the times Granary holds"),
            std::string::npos)
      << written.ToString();
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "o.csv"));
  // In range, the same column is written.
  auto fine = arrow::Table::Make(arrow::schema({arrow::field("at", first->type())}), {first});
  ASSERT_TRUE(WriteTableFile(*fine, dir.path() / "o.csv").ok());
  std::ifstream in(dir.path() / "o.csv");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "\"at\"\n\"1970-01-01T00:00:00Z\"\n\"1969-12-31T23:59:59Z\"\n");
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

// Every file in `dir` (hidden ones too).
std::vector<std::string> FilesIn(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::shared_ptr<arrow::RecordBatch> Batch(int64_t first, int64_t rows) {
  arrow::Int64Builder x;
  arrow::TimestampBuilder at(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                             arrow::default_memory_pool());
  for (int64_t i = first; i < first + rows; ++i) {
    EXPECT_TRUE(x.Append(i).ok());
    EXPECT_TRUE((i % 7 == 0 ? at.AppendNull() : at.Append(i * 1000000)).ok());
  }
  return arrow::RecordBatch::Make(
      arrow::schema({arrow::field("x", arrow::int64()), arrow::field("at", at.type())}), rows,
      {x.Finish().ValueOrDie(), at.Finish().ValueOrDie()});
}

TEST(TableFileWriter, BatchesWrittenOneByOneReadBackAsTheWholeTable) {
  auto dir = TempDir::Make("granary-table-io-").ValueOrDie();
  for (const char* name : {"t.parquet", "t.csv"}) {
    SCOPED_TRACE(name);
    auto writer = TableFileWriter::Open(dir.path() / name, Batch(0, 1)->schema());
    ASSERT_TRUE(writer.ok()) << writer.status().ToString();
    std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
    for (int64_t first = 0; first < 1000; first += 250) {
      batches.push_back(Batch(first, 250));
      ASSERT_TRUE((*writer)->Write(*batches.back()).ok());
    }
    EXPECT_FALSE(std::filesystem::exists(dir.path() / name)) << "visible before the commit";
    ASSERT_TRUE((*writer)->Commit().ok());
    EXPECT_EQ((*writer)->rows(), 1000);
    auto expected = arrow::Table::FromRecordBatches(batches).ValueOrDie();
    auto back = ReadTableFile(dir.path() / name);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    ASSERT_EQ((*back)->num_rows(), 1000);
    auto x = (*back)->GetColumnByName("x");
    EXPECT_TRUE(x->Equals(*expected->GetColumnByName("x")));
    if (std::string(name) == "t.parquet") {
      EXPECT_TRUE((*back)->Equals(*expected)) << (*back)->ToString();
    }
  }
  EXPECT_EQ(FilesIn(dir.path()), (std::vector<std::string>{"t.csv", "t.parquet"}));
}

TEST(TableFileWriter, ManyColumnsOfSeveralRowGroupsEncodedInParallelReadBackEqual) {
  // Columns are encoded on Arrow's CPU pool: 600,000 rows (three row groups), eight columns of
  // four types with nulls, must read back value for value, in order.
  auto dir = TempDir::Make("granary-table-io-").ValueOrDie();
  constexpr int64_t kRows = 600'000;
  arrow::FieldVector fields;
  arrow::ArrayVector columns;
  for (int c = 0; c < 8; ++c) {
    std::shared_ptr<arrow::Array> array;
    switch (c % 4) {
      case 0: {
        arrow::DoubleBuilder b;
        for (int64_t i = 0; i < kRows; ++i) {
          (i + c) % 3 == 0 ? (void)b.AppendNull() : (void)b.Append(i * 0.5 + c);
        }
        array = b.Finish().ValueOrDie();
        break;
      }
      case 1: {
        arrow::Int64Builder b;
        for (int64_t i = 0; i < kRows; ++i) {
          (i + c) % 7 == 0 ? (void)b.AppendNull() : (void)b.Append(i * 31 + c);
        }
        array = b.Finish().ValueOrDie();
        break;
      }
      case 2: {
        arrow::StringBuilder b;
        for (int64_t i = 0; i < kRows; ++i) {
          i % 11 == 0 ? (void)b.AppendNull() : (void)b.Append(std::to_string(i % 1000 + c));
        }
        array = b.Finish().ValueOrDie();
        break;
      }
      default: {
        arrow::TimestampBuilder b(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                                  arrow::default_memory_pool());
        for (int64_t i = 0; i < kRows; ++i) (void)b.Append(int64_t{1'700'000'000'000'000} + i);
        array = b.Finish().ValueOrDie();
        break;
      }
    }
    fields.push_back(arrow::field("c" + std::to_string(c), array->type()));
    columns.push_back(array);
  }
  auto table = arrow::Table::Make(arrow::schema(fields), columns, kRows);
  const auto path = dir.path() / "wide.parquet";
  ASSERT_TRUE(WriteTableFile(*table, path).ok());
  auto back = ReadTableFile(path);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ((*back)->num_rows(), kRows);
  for (int c = 0; c < 8; ++c) {
    SCOPED_TRACE(fields[c]->name());
    EXPECT_TRUE((*back)->column(c)->Equals(*table->column(c)));
  }
}

TEST(TableFileWriter, AnEmptyStreamIsAFileWithTheSchemaAndNoRows) {
  auto dir = TempDir::Make("granary-table-io-").ValueOrDie();
  auto writer = TableFileWriter::Open(dir.path() / "e.parquet", Batch(0, 1)->schema());
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Commit().ok());
  auto back = ReadTableFile(dir.path() / "e.parquet").ValueOrDie();
  EXPECT_EQ(back->num_rows(), 0);
  EXPECT_EQ(back->schema()->field_names(), (std::vector<std::string>{"x", "at"}));
}

TEST(TableFileWriter, AbandonedMidwayLeavesNoFileAndAnOlderFileUntouched) {
  auto dir = TempDir::Make("granary-table-io-").ValueOrDie();
  const auto path = dir.path() / "train.parquet";
  ASSERT_TRUE(WriteTableFile(*SmallTable(), path).ok());  // yesterday's training set
  {
    auto writer = TableFileWriter::Open(path, Batch(0, 1)->schema());
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Write(*Batch(0, 100)).ok());
    ASSERT_TRUE((*writer)->Write(*Batch(100, 100)).ok());
    EXPECT_TRUE(std::filesystem::exists((*writer)->temp_path()));
    EXPECT_EQ((*writer)->temp_path().parent_path(), dir.path());
    // The stream fails here (a lost cluster): the writer is dropped without Commit().
  }
  EXPECT_EQ(FilesIn(dir.path()), (std::vector<std::string>{"train.parquet"}));
  EXPECT_TRUE(ReadTableFile(path).ValueOrDie()->Equals(*SmallTable()));
}

TEST(TableFileWriter, ABatchOfAnotherSchemaFailsAndNothingIsWritten) {
  auto dir = TempDir::Make("granary-table-io-").ValueOrDie();
  const auto path = dir.path() / "t.parquet";
  {
    auto writer = TableFileWriter::Open(path, Batch(0, 1)->schema());
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Write(*Batch(0, 10)).ok());
    auto other = SmallTable()->CombineChunksToBatch().ValueOrDie();
    Status st = (*writer)->Write(*other);
    EXPECT_EQ(st.code(), StatusCode::kIOError) << st.ToString();
    EXPECT_NE(st.message().find(path.string()), std::string::npos) << st.message();
    EXPECT_FALSE((*writer)->Commit().ok());
  }
  EXPECT_TRUE(FilesIn(dir.path()).empty());
}

// Makes `path` look written `seconds` ago.
void Age(const std::filesystem::path& path, int seconds) {
  std::filesystem::last_write_time(
      path, std::filesystem::file_time_type::clock::now() - std::chrono::seconds(seconds));
}

TEST(TableFileWriter, TheTemporaryFileOfAKilledRunIsRemovedByTheNextWriterOfThatOutput) {
  auto dir = TempDir::Make("granary-table-io-").ValueOrDie();
  const auto path = dir.path() / "train.parquet";
  // What a run killed while writing leaves: its temporary file, unlocked (the kernel dropped the
  // lock with the process). tests/test_cli_historical.py kills a real run for the same check.
  {
    std::string temp = (dir.path() / ".train.parquet.tmp-XXXXXX").string();
    const int fd = mkstemp(temp.data());
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "PAR1", 4), 4);
    ::close(fd);
  }
  auto left = FilesIn(dir.path());
  ASSERT_EQ(left.size(), 1u);
  const auto abandoned = dir.path() / left[0];
  EXPECT_EQ(left[0].rfind(".train.parquet.tmp-", 0), 0u) << left[0];

  // Too young to tell from a writer between creating and locking its file: kept.
  {
    auto writer = TableFileWriter::Open(path, Batch(0, 1)->schema());
    ASSERT_TRUE(writer.ok());
    EXPECT_TRUE((*writer)->removed_abandoned().empty());
    EXPECT_TRUE(std::filesystem::exists(abandoned));
  }
  Age(abandoned, 60);
  // Another output's writer in the same folder leaves it alone.
  {
    auto writer = TableFileWriter::Open(dir.path() / "other.parquet", Batch(0, 1)->schema());
    ASSERT_TRUE(writer.ok());
    EXPECT_TRUE((*writer)->removed_abandoned().empty());
  }
  EXPECT_TRUE(std::filesystem::exists(abandoned));
  auto writer = TableFileWriter::Open(path, Batch(0, 1)->schema());
  ASSERT_TRUE(writer.ok());
  EXPECT_EQ((*writer)->removed_abandoned(), std::vector<std::filesystem::path>{abandoned});
  EXPECT_FALSE(std::filesystem::exists(abandoned));
  ASSERT_TRUE((*writer)->Write(*Batch(0, 10)).ok());
  ASSERT_TRUE((*writer)->Commit().ok());
  EXPECT_EQ(FilesIn(dir.path()), (std::vector<std::string>{"train.parquet"}));
}

TEST(TableFileWriter, ALiveWritersTemporaryFileIsNeverRemovedHoweverOld) {
  auto dir = TempDir::Make("granary-table-io-").ValueOrDie();
  const auto path = dir.path() / "train.parquet";
  auto first = TableFileWriter::Open(path, Batch(0, 1)->schema());
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE((*first)->Write(*Batch(0, 100)).ok());
  // Still joining after a long while: old, but locked.
  Age((*first)->temp_path(), 3600);
  {
    auto second = TableFileWriter::Open(path, Batch(0, 1)->schema());
    ASSERT_TRUE(second.ok());
    EXPECT_TRUE((*second)->removed_abandoned().empty());
    EXPECT_TRUE(std::filesystem::exists((*first)->temp_path()));
  }
  ASSERT_TRUE((*first)->Write(*Batch(100, 100)).ok());
  ASSERT_TRUE((*first)->Commit().ok());
  EXPECT_EQ(ReadTableFile(path).ValueOrDie()->num_rows(), 200);
  EXPECT_EQ(FilesIn(dir.path()), (std::vector<std::string>{"train.parquet"}));
}

TEST(TableFileWriter, AnUnknownExtensionIsRefusedBeforeAnyFileIsMade) {
  auto dir = TempDir::Make("granary-table-io-").ValueOrDie();
  auto writer = TableFileWriter::Open(dir.path() / "t.json", Batch(0, 1)->schema());
  ASSERT_FALSE(writer.ok());
  EXPECT_EQ(writer.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(FilesIn(dir.path()).empty());
}

}  // namespace
}  // namespace granary
