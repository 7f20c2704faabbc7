// Delta Lake log replay on tables written by Spark and delta-rs (../shared/testdata).
#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/io/api.h>
#include <gtest/gtest.h>
#include <parquet/arrow/reader.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <regex>

#include "granary/common/temp_dir.h"
#include "granary/offline/delta_log.h"
#include "granary/offline/file_listing.h"
#include "granary/testing/testdata.h"

namespace granary {
namespace {

const std::filesystem::path kTestData = testing::TestDataDir();
const std::filesystem::path kGolden = kTestData / "delta-golden";

std::shared_ptr<arrow::Table> ReadExpected(const std::filesystem::path& folder) {
  auto files = ListDataFiles(folder, ".parquet").ValueOrDie();
  std::vector<std::shared_ptr<arrow::Table>> tables;
  for (const auto& f : files) {
    auto in = arrow::io::ReadableFile::Open(f.string()).ValueOrDie();
    auto reader = parquet::arrow::OpenFile(in, arrow::default_memory_pool()).ValueOrDie();
    tables.push_back(reader->ReadTable().ValueOrDie());
  }
  if (tables.empty()) return nullptr;
  auto options = arrow::ConcatenateTablesOptions::Defaults();
  options.unify_schemas = true;
  return arrow::ConcatenateTables(tables, options).ValueOrDie();
}

// Columns whose expected values depend on something the log does not record: Spark wrote this
// table's naive partition timestamp ("2021-09-08 11:11:11") in its session time zone
// (America/Los_Angeles); Granary reads naive partition timestamps as UTC, as it reads every naive
// timestamp (docs/POINT_IN_TIME.md).
const std::map<std::string, std::string> kSessionTimeZoneColumns = {
    {"data-reader-partition-values", "as_timestamp"}};

// Every row as text ("col=value|..."), sorted: tables compare as multisets of rows. Columns of
// `expected` are cast to the types of `actual` first (Spark's expected files use other units).
std::vector<std::string> CanonicalRows(const arrow::Table& table, const arrow::Schema& types,
                                       const std::string& skip = "") {
  std::vector<std::string> rows(table.num_rows());
  for (const auto& field : types.fields()) {
    if (field->name() == skip) continue;
    auto column = table.GetColumnByName(field->name());
    if (column == nullptr) {
      for (auto& r : rows) r += field->name() + "=<missing>|";
      continue;
    }
    auto combined = column->num_chunks() == 0
                        ? arrow::MakeArrayOfNull(column->type(), 0).ValueOrDie()
                        : arrow::Concatenate(column->chunks()).ValueOrDie();
    if (!combined->type()->Equals(*field->type())) {
      auto cast = arrow::compute::Cast(*combined, field->type());
      if (cast.ok()) combined = *cast;
    }
    for (int64_t i = 0; i < table.num_rows(); ++i) {
      auto scalar = combined->GetScalar(i).ValueOrDie();
      // Values only: type annotations such as a map's entries name ('map_of_prims') differ
      // between writers.
      static const std::regex kAnnotation(R"( \('[^']*'\))");
      rows[i] +=
          field->name() + "=" +
          (scalar->is_valid ? std::regex_replace(scalar->ToString(), kAnnotation, "") : "null") +
          "|";
    }
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

TEST(DeltaSnapshot, EveryGoldenTableWithExpectedRowsScansToExactlyThem) {
  GRANARY_REQUIRE_TESTDATA("delta-golden");
  int compared = 0;
  std::vector<std::string> refused;
  for (const auto& entry : std::filesystem::directory_iterator(kGolden)) {
    const auto expected_dir = entry.path() / "expected";
    if (!std::filesystem::is_directory(expected_dir)) continue;
    const std::string name = entry.path().filename().string();
    auto snapshot = ReadDeltaSnapshot(entry.path() / "delta");
    if (!snapshot.ok()) {
      // Only tables that need a feature Granary refuses may fail, with a message naming it.
      refused.push_back(name + ": " + snapshot.status().message());
      const std::string msg = snapshot.status().message();
      EXPECT_NE(msg.find("v2Checkpoint"), std::string::npos) << name << ": " << msg;
      continue;
    }
    auto table = ReadDeltaTable(*snapshot);
    ASSERT_TRUE(table.ok()) << name << ": " << table.status().ToString();
    auto expected = ReadExpected(expected_dir);
    ASSERT_NE(expected, nullptr) << name;
    EXPECT_EQ((*table)->num_rows(), expected->num_rows()) << name;
    auto skip = kSessionTimeZoneColumns.find(name);
    const std::string skipped = skip == kSessionTimeZoneColumns.end() ? "" : skip->second;
    EXPECT_EQ(CanonicalRows(**table, *(*table)->schema(), skipped),
              CanonicalRows(*expected, *(*table)->schema(), skipped))
        << name;
    ++compared;
  }
  EXPECT_GE(compared, 50);
  // The tables with deletion vectors are among those compared (Spark's, with checkpoints,
  // partitions and column mapping).
  for (const char* dv_table :
       {"dv-partitioned-with-checkpoint", "dv-with-columnmapping", "log-replay-dv-key-cases"}) {
    for (const auto& r : refused) EXPECT_FALSE(r.starts_with(dv_table)) << r;
  }
  for (const auto& r : refused) std::cout << "refused: " << r << "\n";
}

TEST(DeltaSnapshot, ReplaysCheckpointsAndLaterCommitsOfDeltaRsTables) {
  GRANARY_REQUIRE_TESTDATA("delta-rs");
  struct Case {
    const char* table;
    int64_t version;
    size_t files;
  };
  // Versions and live files counted independently from the logs.
  for (const Case& c :
       {Case{"simple_table_with_checkpoint", 10, 11}, Case{"checkpoints", 12, 12},
        Case{"with_checkpoint_no_last_checkpoint", 3, 1}, Case{"latest_not_checkpointed", 3, 1},
        Case{"delta-0.8.0-partitioned", 0, 6}, Case{"delta-0.8.0-null-partition", 0, 2},
        Case{"table-without-dv-small", 0, 1}}) {
    auto snapshot = ReadDeltaSnapshot(kTestData / "delta-rs" / c.table);
    ASSERT_TRUE(snapshot.ok()) << c.table << ": " << snapshot.status().ToString();
    EXPECT_EQ(snapshot->version, c.version) << c.table;
    EXPECT_EQ(snapshot->files.size(), c.files) << c.table;
  }
}

TEST(DeltaSnapshot, PartitionValuesAreTypedByTheSchemaAndNullPartitionsAreNull) {
  GRANARY_REQUIRE_TESTDATA("delta-rs");
  auto snapshot = ReadDeltaSnapshot(kTestData / "delta-rs/delta-0.8.0-null-partition");
  ASSERT_TRUE(snapshot.ok()) << snapshot.status().ToString();
  auto table = ReadDeltaTable(*snapshot);
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  EXPECT_EQ((*table)->num_rows(), 2);
  EXPECT_EQ(snapshot->partition_columns, std::vector<std::string>{"k"});
  EXPECT_EQ((*table)->GetColumnByName("k")->null_count(), 1);
}

TEST(DeltaSnapshot, ADataFileRemovedByVacuumIsAClearError) {
  GRANARY_REQUIRE_TESTDATA("delta-rs");
  auto snapshot = ReadDeltaSnapshot(kTestData / "delta-rs/checkpoints");
  ASSERT_TRUE(snapshot.ok()) << snapshot.status().ToString();
  auto table = ReadDeltaTable(*snapshot);
  ASSERT_FALSE(table.ok());
  EXPECT_NE(table.status().message().find("the file does not exist"), std::string::npos)
      << table.status().message();
}

TEST(DeltaSnapshot, TablesThatMustFailGiveClearErrors) {
  GRANARY_REQUIRE_TESTDATA("delta-golden");
  GRANARY_REQUIRE_TESTDATA("delta-rs");
  struct Case {
    const char* table;
    const char* message;
  };
  for (const Case& c : {
           Case{"delta-golden/deltalog-invalid-protocol-version/delta",
                "needs reader version 99; Granary reads versions 1 to 3"},
           Case{"delta-golden/versions-not-contiguous/delta",
                "the log jumps from version 0 to 2 (a commit file is missing)"},
           Case{"delta-golden/no-delta-log-folder/delta", "has no _delta_log folder"},
           Case{"delta-golden/deltalog-state-reconstruction-without-metadata/delta",
                "has no metaData action"},
           Case{"delta-golden/deltalog-state-reconstruction-without-protocol/delta",
                "has no protocol action"},
           Case{"delta-golden/deltalog-state-reconstruction-from-checkpoint-missing-metadata/delta",
                "has no metaData action"},
           Case{"delta-golden/deltalog-state-reconstruction-from-checkpoint-missing-protocol/delta",
                "has no protocol action"},
           Case{"delta-golden/v2-checkpoint-json/delta", "reader feature 'v2Checkpoint'"},
       }) {
    auto snapshot = ReadDeltaSnapshot(kTestData / c.table);
    ASSERT_FALSE(snapshot.ok()) << c.table;
    EXPECT_NE(snapshot.status().message().find(c.message), std::string::npos)
        << c.table << ": " << snapshot.status().message();
  }
}

TEST(DeltaSnapshot, MultiPartCheckpointAndCorruptLastCheckpoint) {
  GRANARY_REQUIRE_TESTDATA("delta-golden");
  auto multi = ReadDeltaSnapshot(kGolden / "multi-part-checkpoint/delta");
  ASSERT_TRUE(multi.ok()) << multi.status().ToString();
  EXPECT_EQ(multi->version, 1);
  // An unreadable _last_checkpoint is ignored: the checkpoint is found by listing.
  auto corrupt = ReadDeltaSnapshot(kGolden / "corrupted-last-checkpoint-kernel/delta");
  ASSERT_TRUE(corrupt.ok()) << corrupt.status().ToString();
}

TEST(DeltaSnapshot, PercentDecodesPaths) {
  EXPECT_EQ(PercentDecode("a%20b%253A/c%2"), "a b%3A/c%2");
}

// A minimal Delta table: one commit with protocol, metaData and an add per path (the data files
// need not exist to replay the log).
void WriteLog(const std::filesystem::path& table, const std::vector<std::string>& paths) {
  std::filesystem::create_directories(table / "_delta_log");
  std::ofstream commit(table / "_delta_log/00000000000000000000.json");
  commit << R"({"protocol":{"minReaderVersion":1,"minWriterVersion":2}})"
         << "\n"
         << R"({"metaData":{"id":"t","format":{"provider":"parquet","options":{}},)"
         << R"("schemaString":"{\"type\":\"struct\",\"fields\":[{\"name\":\"x\",)"
         << R"(\"type\":\"long\",\"nullable\":true,\"metadata\":{}}]}",)"
         << R"("partitionColumns":[],"configuration":{}}})"
         << "\n";
  for (const std::string& path : paths) {
    commit << R"({"add":{"path":")" << path
           << R"(","partitionValues":{},"size":1,"modificationTime":0,"dataChange":true}})"
           << "\n";
  }
}

TEST(DeltaSnapshot, LiveFilesAreInByteWisePathOrder) {
  auto dir = TempDir::Make("granary-delta-order-").ValueOrDie();
  WriteLog(dir.path(), {"region=us/part-0.parquet", "region=us-east/part-0.parquet"});
  auto snapshot = ReadDeltaSnapshot(dir.path());
  ASSERT_TRUE(snapshot.ok()) << snapshot.status().ToString();
  ASSERT_EQ(snapshot->files.size(), 2u);
  // '-' (0x2d) sorts before '/' (0x2f): us-east first, as docs/POINT_IN_TIME.md says.
  EXPECT_EQ(snapshot->files[0].path, dir.path() / "region=us-east/part-0.parquet");
  EXPECT_EQ(snapshot->files[1].path, dir.path() / "region=us/part-0.parquet");
}

TEST(DeltaSnapshot, AVersionTooLargeForSixtyFourBitsIsCorruptionNamingTheFile) {
  auto dir = TempDir::Make("granary-delta-version-").ValueOrDie();
  WriteLog(dir.path(), {});
  std::ofstream(dir.path() / "_delta_log/99999999999999999999.json") << "{}\n";
  auto snapshot = ReadDeltaSnapshot(dir.path());
  ASSERT_FALSE(snapshot.ok());
  EXPECT_EQ(snapshot.status().code(), StatusCode::kCorruption) << snapshot.status().ToString();
  EXPECT_NE(snapshot.status().message().find("99999999999999999999.json"), std::string::npos)
      << snapshot.status().message();
  EXPECT_NE(snapshot.status().message().find("does not fit in 64 bits"), std::string::npos)
      << snapshot.status().message();
  // Validation reads the same log and fails the same way, without an exception.
  EXPECT_EQ(ReadDeltaSchema(dir.path()).status().code(), StatusCode::kCorruption);
}

TEST(DeltaSnapshot, ALogThatCannotBeListedIsAnIOErrorNamingIt) {
  auto dir = TempDir::Make("granary-delta-unlistable-").ValueOrDie();
  WriteLog(dir.path(), {});
  const std::string log = (dir.path() / "_delta_log").string();
  auto expect_io_error = [&](const Result<DeltaSnapshot>& snapshot, const char* why) {
    ASSERT_FALSE(snapshot.ok()) << why;
    EXPECT_EQ(snapshot.status().code(), StatusCode::kIOError)
        << why << ": " << snapshot.status().ToString();
    EXPECT_NE(snapshot.status().message().find("cannot list the Delta log " + log),
              std::string::npos)
        << why << ": " << snapshot.status().message();
  };
  // No file descriptor left for opendir: the lowest free descriptor is the soft limit. Works as
  // root too, which permission bits do not stop.
  {
    rlimit saved{};
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
    const int lowest_free = dup(0);
    ASSERT_GE(lowest_free, 0);
    close(lowest_free);
    rlimit tight = saved;
    tight.rlim_cur = static_cast<rlim_t>(lowest_free);
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &tight), 0);
    auto snapshot = ReadDeltaSnapshot(dir.path());
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
    expect_io_error(snapshot, "no descriptors");
  }
  // A log folder without read permission (root ignores permission bits: only checked as others).
  if (geteuid() != 0) {
    std::filesystem::permissions(log, std::filesystem::perms::none);
    auto snapshot = ReadDeltaSnapshot(dir.path());
    std::filesystem::permissions(log, std::filesystem::perms::owner_all);
    expect_io_error(snapshot, "chmod 000");
  }
}

TEST(DeltaSnapshot, DeletionVectorsAreAcceptedAndOtherUnknownReaderFeaturesRefused) {
  auto dir = TempDir::Make("granary-delta-features-").ValueOrDie();
  auto write = [&](const std::string& features) {
    WriteLog(dir.path(), {});
    std::ofstream(dir.path() / "_delta_log/00000000000000000001.json")
        << R"({"protocol":{"minReaderVersion":3,"minWriterVersion":7,"readerFeatures":[)"
        << features << R"(],"writerFeatures":[)" << features << "]}}\n";
  };
  write(R"("deletionVectors")");
  auto accepted = ReadDeltaSnapshot(dir.path());
  ASSERT_TRUE(accepted.ok()) << accepted.status().ToString();
  EXPECT_EQ(accepted->min_writer_version, 7);
  EXPECT_EQ(accepted->writer_features, std::vector<std::string>{"deletionVectors"});
  write(R"("deletionVectors","madeUpFeature")");
  auto refused = ReadDeltaSnapshot(dir.path());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("reader feature 'madeUpFeature'"), std::string::npos)
      << refused.status().message();
}

TEST(DeltaSnapshot, OfTwoLiveEntriesForOnePathTheNewerDeletionVectorWins) {
  auto dir = TempDir::Make("granary-delta-dv-key-").ValueOrDie();
  WriteLog(dir.path(), {});
  // A second commit that gives the file a new DV without removing the old (path, DV) pair.
  std::ofstream(dir.path() / "_delta_log/00000000000000000001.json")
      << R"({"add":{"path":"f.parquet","partitionValues":{},"size":1,"modificationTime":0,)"
      << R"("dataChange":true,"deletionVector":{"storageType":"u","pathOrInlineDv":)"
      << R"("^-aqEH.-t@S}K{vb[*k^","offset":1,"sizeInBytes":30,"cardinality":1}}})"
      << "\n"
      << R"({"add":{"path":"f.parquet","partitionValues":{},"size":1,"modificationTime":0,)"
      << R"("dataChange":true,"deletionVector":{"storageType":"u","pathOrInlineDv":)"
      << R"("^-aqEH.-t@S}K{vb[*k^","offset":40,"sizeInBytes":32,"cardinality":2}}})"
      << "\n";
  auto snapshot = ReadDeltaSnapshot(dir.path());
  ASSERT_TRUE(snapshot.ok()) << snapshot.status().ToString();
  ASSERT_EQ(snapshot->files.size(), 1u);
  ASSERT_TRUE(snapshot->files[0].deletion_vector.has_value());
  EXPECT_EQ(snapshot->files[0].deletion_vector->offset, 40);
  EXPECT_EQ(snapshot->files[0].deletion_vector->cardinality, 2);
}

}  // namespace
}  // namespace granary
