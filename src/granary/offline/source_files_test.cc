// Parquet written by many writers (apache/parquet-testing in ../shared/testdata) through the same
// path the source scan uses: fragment planning, reading, and conversion to Granary's types.
#include <arrow/api.h>
#include <arrow/csv/api.h>
#include <arrow/io/api.h>
#include <gtest/gtest.h>
#include <parquet/arrow/reader.h>
#include <parquet/file_reader.h>
#include <parquet/metadata.h>
#include <parquet/schema.h>

#include <fstream>
#include <set>

#include "granary/offline/source_fragment.h"
#include "granary/testing/testdata.h"
#include "granary/types/arrow_convert.h"

namespace granary {
namespace {

const std::filesystem::path kParquetTesting = testing::TestDataDir() / "parquet-testing";

struct ReadResult {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;  // text cells, "" for null
  int64_t metadata_rows = 0;
  std::set<std::string> unsupported;  // read raw, not converted
};

// Reads every top-level column whose type Granary supports, as Granary's value types; with
// `all_columns`, the other columns too (as Arrow reads them, unconverted).
Result<ReadResult> ReadSupportedColumns(const std::filesystem::path& path,
                                        bool all_columns = false) {
  ReadResult out;
  std::shared_ptr<arrow::Schema> schema;
  try {
    auto in = arrow::io::ReadableFile::Open(path.string());
    if (!in.ok()) return Status::IOError(in.status().ToString());
    auto reader = parquet::arrow::OpenFile(*in, arrow::default_memory_pool());
    if (!reader.ok()) {
      return Status::InvalidArgument(path.string() + ": " + reader.status().message());
    }
    if (!(*reader)->GetSchema(&schema).ok()) {
      return Status::InvalidArgument(path.string() + ": unreadable schema");
    }
  } catch (const std::exception& e) {
    return Status::InvalidArgument(path.string() + ": " + e.what());
  }
  FragmentRequest request;
  std::vector<ValueType> types;
  for (const auto& field : schema->fields()) {
    auto type = FromArrowType(*field->type());
    if (!type.ok() && !all_columns) continue;
    request.columns.push_back(field->name());
    types.push_back(type.ok() ? *type : ValueType{});
    if (!type.ok()) out.unsupported.insert(field->name());
  }
  Fragment fragment;
  fragment.path = path;
  int64_t total = 0, pruned = 0;
  GRANARY_RETURN_NOT_OK(PlanParquetFragment(request, &fragment, &total, &pruned));
  out.metadata_rows = fragment.num_rows;
  out.columns = request.columns;
  GRANARY_ASSIGN_OR_RAISE(auto reader, OpenFragment(fragment, request));
  while (true) {
    std::shared_ptr<arrow::RecordBatch> batch;
    auto st = reader->ReadNext(&batch);
    if (!st.ok()) return Status::InvalidArgument(st.message());
    if (batch == nullptr) break;
    std::vector<std::shared_ptr<arrow::Array>> arrays;
    for (size_t c = 0; c < request.columns.size(); ++c) {
      auto raw = batch->GetColumnByName(request.columns[c]);
      if (out.unsupported.count(request.columns[c])) continue;
      GRANARY_ASSIGN_OR_RAISE(auto cast, CastToValueType(raw, types[c], request.columns[c]));
      arrays.push_back(cast);
    }
    for (int64_t i = 0; i < batch->num_rows(); ++i) {
      std::vector<std::string> row;
      for (size_t c = 0; c < arrays.size(); ++c) {
        GRANARY_ASSIGN_OR_RAISE(Value v, ValueAt(*arrays[c], i, types[c]));
        row.push_back(v.is_null() ? "" : v.is<std::string>() ? v.get<std::string>() : v.ToString());
      }
      out.rows.push_back(std::move(row));
    }
  }
  return out;
}

// Whether every column of the file is a top-level scalar (no lists, structs or maps).
bool IsFlatFile(const std::filesystem::path& path) {
  try {
    auto reader = parquet::ParquetFileReader::OpenFile(path.string());
    const auto* schema = reader->metadata()->schema();
    for (int i = 0; i < schema->num_columns(); ++i) {
      if (schema->Column(i)->path()->ToDotVector().size() != 1) return false;
    }
  } catch (const std::exception&) {
  }
  return true;
}

std::vector<std::vector<std::string>> ReadExpectCsv(const std::filesystem::path& path) {
  auto in = arrow::io::ReadableFile::Open(path.string()).ValueOrDie();
  auto convert = arrow::csv::ConvertOptions::Defaults();
  auto read = arrow::csv::ReadOptions::Defaults();
  // Every column as text, so numbers compare exactly as written.
  auto reader = arrow::csv::TableReader::Make(arrow::io::default_io_context(), in, read,
                                              arrow::csv::ParseOptions::Defaults(), convert)
                    .ValueOrDie();
  auto table = reader->Read().ValueOrDie();
  std::vector<std::vector<std::string>> rows(table->num_rows());
  for (int c = 0; c < table->num_columns(); ++c) {
    auto column = arrow::Concatenate(table->column(c)->chunks()).ValueOrDie();
    for (int64_t i = 0; i < table->num_rows(); ++i) {
      auto scalar = column->GetScalar(i).ValueOrDie();
      rows[i].push_back(scalar->is_valid ? scalar->ToString() : "");
    }
  }
  return rows;
}

TEST(ParquetTesting, EveryFlatFileWithSupportedTypesReadsCompletely) {
  GRANARY_REQUIRE_TESTDATA("parquet-testing");
  int read = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kParquetTesting / "data")) {
    const std::string name = entry.path().filename().string();
    if (entry.path().extension() != ".parquet" || !IsFlatFile(entry.path())) continue;
    auto result = ReadSupportedColumns(entry.path());
    if (result.ok() && result->columns.empty()) continue;  // no column of a supported type
    ASSERT_TRUE(result.ok()) << name << ": " << result.status().ToString();
    EXPECT_EQ(static_cast<int64_t>(result->rows.size()), result->metadata_rows) << name;
    ++read;
  }
  EXPECT_GE(read, 40);
}

TEST(ParquetTesting, ValuesMatchTheExpectCsvFiles) {
  GRANARY_REQUIRE_TESTDATA("parquet-testing");
  int compared = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kParquetTesting / "data")) {
    const std::string name = entry.path().filename().string();
    if (!name.ends_with("_expect.csv")) continue;
    const auto parquet = kParquetTesting / "data" / (name.substr(0, name.size() - 11) + ".parquet");
    auto result = ReadSupportedColumns(parquet);
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    auto expected = ReadExpectCsv(entry.path());
    ASSERT_EQ(result->rows.size(), expected.size()) << name;
    for (size_t i = 0; i < expected.size(); ++i) {
      ASSERT_EQ(result->rows[i], expected[i]) << name << " row " << i;
    }
    ++compared;
  }
  EXPECT_EQ(compared, 4);
}

TEST(ParquetTesting, KnownValuesOfSparkInt96AndPlainFiles) {
  GRANARY_REQUIRE_TESTDATA("parquet-testing");
  auto plain = ReadSupportedColumns(kParquetTesting / "data/alltypes_plain.parquet");
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  std::vector<std::string> ids;
  for (const auto& row : plain->rows) ids.push_back(row[0]);
  EXPECT_EQ(ids, (std::vector<std::string>{"4", "5", "6", "7", "2", "3", "0", "1"}));
  auto int96 = ReadSupportedColumns(kParquetTesting / "data/int96_from_spark.parquet");
  ASSERT_TRUE(int96.ok()) << int96.status().ToString();
  ASSERT_FALSE(int96->rows.empty());
  EXPECT_EQ(int96->columns, std::vector<std::string>{"a"});
}

TEST(ParquetTesting, BadFilesAndEncryptedFilesAreClearErrors) {
  GRANARY_REQUIRE_TESTDATA("parquet-testing");
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kParquetTesting / "bad_data")) {
    if (entry.path().extension() != ".parquet") continue;
    if (entry.path().filename() == "ARROW-GH-43605.parquet") {
      // Dictionary indices with an RLE bit width of 0: a defect of another reader, which Arrow
      // C++ reads correctly (every index is 0, so every value is the first dictionary entry).
      auto result = ReadSupportedColumns(entry.path());
      ASSERT_TRUE(result.ok()) << result.status().ToString();
      EXPECT_EQ(result->rows.size(), 21186u);
      for (const auto& row : result->rows) ASSERT_EQ(row, std::vector<std::string>{"0"});
      continue;
    }
    auto result = ReadSupportedColumns(entry.path(), /*all_columns=*/true);
    EXPECT_FALSE(result.ok()) << entry.path().filename() << " should be refused";
    if (!result.ok()) {
      EXPECT_NE(result.status().message().find(entry.path().filename().string()), std::string::npos)
          << "the message names the file: " << result.status().message();
    }
    ++checked;
  }
  EXPECT_GE(checked, 5);
  auto encrypted =
      ReadSupportedColumns(kParquetTesting / "data/uniform_encryption.parquet.encrypted");
  ASSERT_FALSE(encrypted.ok());
  EXPECT_NE(encrypted.status().message().find("uniform_encryption"), std::string::npos)
      << encrypted.status().message();
}

// Found by fuzz/parquet_source_fuzz.cc (fuzz/corpus/parquet_source/
// crash_size_statistics_histogram.parquet: a list column's size statistics with a definition-level
// histogram one entry too long): Parquet's footer accessor threw while a scan was planned, outside
// any handler, and the process ended. Now the file is an error naming it.
TEST(ParquetFooter, InconsistentSizeStatisticsAreAnErrorNamingTheFile) {
  FragmentRequest request;
  request.columns = {"driver_id", "tags", "scores"};
  request.timestamp_column = "event_timestamp";
  Fragment fragment;
  fragment.path = std::filesystem::path(GRANARY_SOURCE_DIR) /
                  "fuzz/corpus/parquet_source/crash_size_statistics_histogram.parquet";
  int64_t total = 0, pruned = 0;
  const Status st = PlanParquetFragment(request, &fragment, &total, &pruned);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  EXPECT_NE(st.message().find("crash_size_statistics_histogram.parquet is not a readable Parquet "
                              "file: Definition level histogram size mismatch"),
            std::string::npos)
      << st.message();
}

// Found by fuzz/parquet_source_fuzz.cc (fuzz/corpus/parquet_source/
// crash_footer_serialize_null_encryptor.parquet): planning hashed the footer by serializing the
// parsed one again (FileMetaData::SerializeToString), which dereferences a null pointer for this
// footer; the process ended with SIGSEGV. The hash is now of the footer's bytes as stored.
TEST(ParquetFooter, AFooterArrowCannotWriteAgainIsPlannedAndHashed) {
  const std::filesystem::path dir =
      std::filesystem::path(GRANARY_SOURCE_DIR) / "fuzz/corpus/parquet_source";
  FragmentRequest request;
  request.columns = {"driver_id", "trips"};
  request.timestamp_column = "event_timestamp";
  Fragment fragment;
  fragment.path = dir / "crash_footer_serialize_null_encryptor.parquet";
  int64_t total = 0, pruned = 0;
  const Status st = PlanParquetFragment(request, &fragment, &total, &pruned);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_NE(fragment.footer_hash, 0u);
  // Another file's footer hashes differently.
  Fragment other;
  other.path = dir / "every_type_us_row_groups_of_4.parquet";
  ASSERT_TRUE(PlanParquetFragment(request, &other, &total, &pruned).ok());
  EXPECT_NE(other.footer_hash, 0u);
  EXPECT_NE(other.footer_hash, fragment.footer_hash);
}

}  // namespace
}  // namespace granary
