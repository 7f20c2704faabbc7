// The gather pass in gather mode (SourceScanOptions::chosen_rows): only the chosen rows' values
// decoded from the pages (chosen_values.h), against the same join decoding every row of the row
// groups it reads (JoinOptions::TEST_read_whole_row_groups), over files written by Arrow's
// Parquet writer (pyarrow's) with V1 and V2 pages, dictionaries kept and fallen back to PLAIN,
// BYTE_STREAM_SPLIT, nulls at 0-90 %, row groups with no chosen row; and ReadChosenRows against
// Arrow's reader over the files of ../shared/testdata/parquet-testing.
#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/io/api.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <parquet/arrow/reader.h>
#include <parquet/arrow/writer.h>
#include <parquet/file_reader.h>
#include <parquet/properties.h>

#include <cstdio>
#include <cstdlib>
#include <random>

#include "granary/common/temp_dir.h"
#include "granary/offline/pit_join.h"
#include "granary/offline/pit_test_definitions.h"
#include "granary/offline/source_pick.h"

namespace granary {
namespace {

const std::filesystem::path kTestData = GRANARY_TESTDATA_DIR;
constexpr int64_t kHour = 3'600'000'000;  // in microseconds

uint64_t TestSeed() {
  const char* given = std::getenv("GRANARY_TEST_SEED");
  return given != nullptr ? std::strtoull(given, nullptr, 10) : std::random_device{}();
}

// How one file of the source is written.
struct FileLayout {
  std::string name;
  parquet::ParquetDataPageVersion pages;
  bool dictionary;         // dictionaries on (they fall back to PLAIN past 512 bytes)
  bool byte_stream_split;  // the column `split` in BYTE_STREAM_SPLIT (no dictionary)
  parquet::Compression::type compression;
};

// The features of the view, as declared: each numeric type at a rate of nulls, a column of ten
// values (its dictionary kept), a BYTE_STREAM_SPLIT one, an int32 column declared int64 (a
// conversion: Arrow's reader reads it), a bool and a string (put in entity order by a Take).
std::vector<Field> Features() {
  auto field = [](const char* name, ScalarType type) {
    return Field{name, ValueType::Scalar(type), "", {}};
  };
  return {field("i32", ScalarType::kInt32),   field("i64", ScalarType::kInt64),
          field("f32", ScalarType::kFloat32), field("f64", ScalarType::kFloat64),
          field("few", ScalarType::kFloat64), field("split", ScalarType::kFloat64),
          field("wide", ScalarType::kInt64),  field("flag", ScalarType::kBool),
          field("zone", ScalarType::kString)};
}

// Writes `rows` rows in row groups of 1,000: keys 0-299 at random hours, except the third row
// group of the file, whose keys (1,000,000 and up) no entity row asks for.
void WriteFile(const std::filesystem::path& path, const FileLayout& layout, int64_t rows,
               std::mt19937_64& rng) {
  arrow::Int64Builder key;
  arrow::TimestampBuilder ts(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                             arrow::default_memory_pool());
  arrow::Int32Builder i32, wide;
  arrow::Int64Builder i64;
  arrow::FloatBuilder f32;
  arrow::DoubleBuilder f64, few, split;
  arrow::BooleanBuilder flag;
  arrow::StringBuilder zone;
  auto chance = [&rng](double p) { return std::uniform_real_distribution<>(0, 1)(rng) < p; };
  for (int64_t r = 0; r < rows; ++r) {
    const bool cold = r / 1000 == 2;
    ASSERT_TRUE(key.Append(cold ? 1'000'000 + r : static_cast<int64_t>(rng() % 300)).ok());
    ASSERT_TRUE(ts.Append(static_cast<int64_t>(rng() % 1000) * kHour).ok());
    const auto v = static_cast<int64_t>(rng() % 2'000'000) - 1'000'000;
    ASSERT_TRUE(i32.Append(static_cast<int32_t>(v)).ok());
    ASSERT_TRUE((chance(0.05) ? i64.AppendNull() : i64.Append(v * 1'000'003)).ok());
    ASSERT_TRUE((chance(0.5) ? f32.AppendNull() : f32.Append(static_cast<float>(v) / 7)).ok());
    ASSERT_TRUE((chance(0.9) ? f64.AppendNull() : f64.Append(static_cast<double>(v) / 3)).ok());
    ASSERT_TRUE((chance(0.05) ? few.AppendNull() : few.Append(static_cast<double>(v % 10))).ok());
    ASSERT_TRUE(split.Append(static_cast<double>(v) * 1.25).ok());
    ASSERT_TRUE((chance(0.05) ? wide.AppendNull() : wide.Append(static_cast<int32_t>(-v))).ok());
    ASSERT_TRUE((chance(0.05) ? flag.AppendNull() : flag.Append(v % 3 == 0)).ok());
    ASSERT_TRUE(
        (chance(0.05) ? zone.AppendNull() : zone.Append(fmt::format("zone-{}", v % 37))).ok());
  }
  auto table = arrow::Table::Make(
      arrow::schema({arrow::field("driver_id", arrow::int64()),
                     arrow::field("event_timestamp", ts.type()),
                     arrow::field("i32", arrow::int32()), arrow::field("i64", arrow::int64()),
                     arrow::field("f32", arrow::float32()), arrow::field("f64", arrow::float64()),
                     arrow::field("few", arrow::float64()), arrow::field("split", arrow::float64()),
                     arrow::field("wide", arrow::int32()), arrow::field("flag", arrow::boolean()),
                     arrow::field("zone", arrow::utf8())}),
      {key.Finish().ValueOrDie(), ts.Finish().ValueOrDie(), i32.Finish().ValueOrDie(),
       i64.Finish().ValueOrDie(), f32.Finish().ValueOrDie(), f64.Finish().ValueOrDie(),
       few.Finish().ValueOrDie(), split.Finish().ValueOrDie(), wide.Finish().ValueOrDie(),
       flag.Finish().ValueOrDie(), zone.Finish().ValueOrDie()});
  parquet::WriterProperties::Builder props;
  props.data_page_version(layout.pages)
      ->data_pagesize(1024)
      ->dictionary_pagesize_limit(512)
      ->max_row_group_length(1000)
      ->compression(layout.compression);
  if (!layout.dictionary) props.disable_dictionary();
  if (layout.byte_stream_split) {
    props.disable_dictionary("split")->encoding("split", parquet::Encoding::BYTE_STREAM_SPLIT);
  }
  auto out = arrow::io::FileOutputStream::Open(path.string()).ValueOrDie();
  ASSERT_TRUE(
      parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), out, 1000, props.build())
          .ok());
  ASSERT_TRUE(out->Close().ok());
}

// `rows` entity rows: keys 0-319 (those past 299 match nothing) at random hours.
std::shared_ptr<arrow::RecordBatch> Entities(int64_t rows, std::mt19937_64& rng) {
  arrow::Int64Builder ids;
  arrow::TimestampBuilder ts(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                             arrow::default_memory_pool());
  for (int64_t i = 0; i < rows; ++i) {
    EXPECT_TRUE(ids.Append(static_cast<int64_t>(rng() % 320)).ok());
    EXPECT_TRUE(ts.Append(static_cast<int64_t>(rng() % 1100) * kHour).ok());
  }
  return arrow::RecordBatch::Make(arrow::schema({arrow::field("driver_id", arrow::int64()),
                                                 arrow::field("event_timestamp", ts.type())}),
                                  rows, {ids.Finish().ValueOrDie(), ts.Finish().ValueOrDie()});
}

TEST(GatherMode, PicksTheSameValuesAsDecodingWholeRowGroupsOverEveryPageLayout) {
  const uint64_t seed = TestSeed();
  SCOPED_TRACE(fmt::format("seed {} (GRANARY_TEST_SEED replays it)", seed));
  std::mt19937_64 rng(seed);
  auto dir = TempDir::Make("granary-gather-mode-").ValueOrDie();
  std::filesystem::create_directories(dir.path() / "src");
  const std::vector<FileLayout> layouts = {
      {"a-v1-dictionary", parquet::ParquetDataPageVersion::V1, true, false,
       parquet::Compression::SNAPPY},
      {"b-v2-dictionary", parquet::ParquetDataPageVersion::V2, true, false,
       parquet::Compression::UNCOMPRESSED},
      {"c-v1-plain-split", parquet::ParquetDataPageVersion::V1, false, true,
       parquet::Compression::SNAPPY},
      {"d-v2-plain-split", parquet::ParquetDataPageVersion::V2, false, true,
       parquet::Compression::SNAPPY},
  };
  for (const FileLayout& layout : layouts) {
    WriteFile(dir.path() / "src" / (layout.name + ".parquet"), layout, 6000, rng);
  }
  Definitions defs = DriverView(dir.path() / "src", Features());
  ViewSource source{dir.path(), &defs, &defs.feature_views[0], {}};
  // Few entity rows (a few % of the feature rows chosen) and many (most row groups dense).
  for (int64_t entity_rows : {40, 600, 20'000}) {
    SCOPED_TRACE(fmt::format("{} entity rows", entity_rows));
    auto entities = Entities(entity_rows, rng);
    ViewJoinStats picked_stats, whole_stats;
    auto picked = PointInTimeJoin(*entities, source, JoinOptions{}, &picked_stats);
    ASSERT_TRUE(picked.ok()) << picked.status().ToString();
    JoinOptions whole_options;
    whole_options.TEST_read_whole_row_groups = true;
    auto whole = PointInTimeJoin(*entities, source, whole_options, &whole_stats);
    ASSERT_TRUE(whole.ok()) << whole.status().ToString();
    // Every row group with a chosen row read in gather mode; the cold ones not at all.
    EXPECT_EQ(whole_stats.row_groups_picked, 0);
    EXPECT_GT(picked_stats.row_groups_picked, 0);
    EXPECT_GE(picked_stats.row_groups_skipped, static_cast<int64_t>(layouts.size()));
    EXPECT_EQ(picked_stats.row_groups_picked + picked_stats.row_groups_skipped, 24);
    EXPECT_EQ(picked_stats.rows_matched, whole_stats.rows_matched);
    EXPECT_GT(picked_stats.rows_matched, 0);
    ASSERT_EQ(picked->size(), Features().size());
    for (size_t c = 0; c < picked->size(); ++c) {
      EXPECT_TRUE((*picked)[c]->Equals(*(*whole)[c])) << Features()[c].name << ":\n"
                                                      << (*picked)[c]->ToString() << "\nagainst\n"
                                                      << (*whole)[c]->ToString();
    }
  }
}

TEST(GatherMode, ColumnGroupsWithinTheBudgetPickTheSameValues) {
  // The gather in several reads of a few columns each (a budget that does not hold them all).
  const uint64_t seed = TestSeed();
  SCOPED_TRACE(fmt::format("seed {} (GRANARY_TEST_SEED replays it)", seed));
  std::mt19937_64 rng(seed);
  auto dir = TempDir::Make("granary-gather-mode-groups-").ValueOrDie();
  std::filesystem::create_directories(dir.path() / "src");
  WriteFile(dir.path() / "src/a.parquet",
            {"a", parquet::ParquetDataPageVersion::V1, true, true, parquet::Compression::SNAPPY},
            5000, rng);
  Definitions defs = DriverView(dir.path() / "src", Features());
  ViewSource source{dir.path(), &defs, &defs.feature_views[0], {}};
  auto entities = Entities(3000, rng);
  auto gather = [&](bool whole, ViewJoinStats* stats) {
    JoinOptions options;
    options.memory_budget_bytes = 3000 * 16 * 3;
    options.TEST_read_whole_row_groups = whole;
    std::vector<std::shared_ptr<arrow::ChunkedArray>> columns;
    Status st = PointInTimeJoinInto(
        *entities, source, options,
        [&columns](int, std::vector<std::shared_ptr<arrow::ChunkedArray>> group) {
          for (auto& column : group) columns.push_back(std::move(column));
          return Status::OK();
        },
        stats);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return columns;
  };
  ViewJoinStats picked_stats, whole_stats;
  auto picked = gather(false, &picked_stats);
  auto whole = gather(true, &whole_stats);
  EXPECT_GT(picked_stats.gather_reads, 1);
  EXPECT_GT(picked_stats.row_groups_picked, 0);
  ASSERT_EQ(picked.size(), Features().size());
  ASSERT_EQ(whole.size(), Features().size());
  for (size_t c = 0; c < picked.size(); ++c) {
    EXPECT_TRUE(picked[c]->Equals(*whole[c])) << Features()[c].name;
  }
}

// The rows ReadChosenRows returns for random rows of each row group of `path`, against Arrow's
// reader decoding the row group and taking them. Returns the columns it compared; adds those whose
// values came from their pages to `from_pages_total`.
int CompareWithArrowsReader(const std::filesystem::path& path, std::mt19937_64& rng,
                            int* from_pages_total) {
  auto file = arrow::io::ReadableFile::Open(path.string());
  if (!file.ok()) return 0;
  std::unique_ptr<parquet::arrow::FileReader> arrow_reader;
  try {
    // INT96 times as the scan reads them (microseconds).
    parquet::ArrowReaderProperties props;
    props.set_coerce_int96_timestamp_unit(arrow::TimeUnit::MICRO);
    parquet::arrow::FileReaderBuilder builder;
    if (!builder.Open(*file).ok() || !builder.properties(props)->Build(&arrow_reader).ok()) {
      return 0;
    }
  } catch (const std::exception&) {
    return 0;  // a file Arrow's reader does not open: not this test's
  }
  std::shared_ptr<arrow::Schema> schema;
  if (!arrow_reader->GetSchema(&schema).ok()) return 0;
  FragmentRequest request;
  for (const auto& field : schema->fields()) {
    request.columns.push_back(field->name());
    switch (field->type()->id()) {
      case arrow::Type::INT32:
      case arrow::Type::INT64:
      case arrow::Type::FLOAT:
      case arrow::Type::DOUBLE:
        request.pick_types[field->name()] = field->type();
        break;
      default:
        break;
    }
  }
  if (request.pick_types.empty()) return 0;
  Fragment fragment;
  fragment.path = path;
  int64_t total = 0, pruned = 0;
  if (!PlanParquetFragment(request, &fragment, &total, &pruned).ok()) return 0;
  auto opened = OpenParquetFragment(fragment, request);
  EXPECT_TRUE(opened.ok()) << path.string() << ": " << opened.status().ToString();
  if (!opened.ok()) return 0;
  int compared = 0;
  for (int rg : fragment.row_groups) {
    std::shared_ptr<arrow::Table> decoded;
    try {
      if (!arrow_reader->ReadRowGroup(rg, &decoded).ok()) return compared;
    } catch (const std::exception&) {
      return compared;
    }
    const int64_t rows = fragment.row_group_rows[rg];
    if (rows == 0) continue;
    // At 2 %, 30 % and every row; the last row always.
    for (double density : {0.02, 0.3, 1.0}) {
      std::vector<int64_t> chosen;
      for (int64_t r = 0; r < rows; ++r) {
        if (r == rows - 1 || std::uniform_real_distribution<>(0, 1)(rng) < density) {
          chosen.push_back(r);
        }
      }
      int from_pages = 0;
      auto picked = ReadChosenRows(*opened, fragment, request, rg, chosen, &from_pages);
      *from_pages_total += from_pages;
      EXPECT_TRUE(picked.ok()) << path.string() << " row group " << rg << ": "
                               << picked.status().ToString();
      if (!picked.ok()) return compared;
      auto indices = arrow::Int64Builder();
      EXPECT_TRUE(indices.AppendValues(chosen).ok());
      auto taken = arrow::compute::Take(decoded, indices.Finish().ValueOrDie()).ValueOrDie();
      for (const auto& name : request.columns) {
        const auto got = (*picked)->GetColumnByName(name);
        const auto want = taken.table()->GetColumnByName(name);
        EXPECT_NE(got, nullptr) << path.string() << ": " << name;
        if (got == nullptr || want == nullptr) continue;
        EXPECT_TRUE(arrow::ChunkedArray(got).Equals(
            *want, arrow::EqualOptions::Defaults().nans_equal(true)))
            << path.string() << " row group " << rg << " column " << name << " at " << density;
        compared += request.pick_types.count(name) > 0;
      }
    }
  }
  return compared;
}

TEST(GatherMode, ReadChosenRowsAgreesWithArrowsReaderOnOtherWritersFiles) {
  const auto data = kTestData / "parquet-testing/data";
  if (!std::filesystem::is_directory(data)) {
    GTEST_SKIP() << "test data folder " << data.string()
                 << " is absent (shared/testdata beside the checkout); skipping other writers' "
                    "files";
  }
  const uint64_t seed = TestSeed();
  SCOPED_TRACE(fmt::format("seed {} (GRANARY_TEST_SEED replays it)", seed));
  std::mt19937_64 rng(seed);
  int compared = 0, picked = 0;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(data)) {
    if (entry.path().extension() == ".parquet") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& path : files) compared += CompareWithArrowsReader(path, rng, &picked);
  // alltypes_*, int32_with_null_pages, datapage_v2, byte_stream_split, delta_binary_packed...
  // About half from their pages; the others (BYTE_STREAM_SPLIT, DELTA_*: 198 of
  // delta_binary_packed's columns) by Arrow's reader.
  EXPECT_GT(compared, 400);
  EXPECT_GT(picked, 200);
  EXPECT_LT(picked, compared);
  std::printf("%d columns compared, %d of them picked from their pages\n", compared, picked);
}

}  // namespace
}  // namespace granary
