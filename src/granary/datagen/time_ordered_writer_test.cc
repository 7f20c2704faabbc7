#include "granary/datagen/time_ordered_writer.h"

#include <arrow/api.h>
#include <arrow/io/file.h>
#include <gtest/gtest.h>
#include <parquet/arrow/reader.h>
#include <parquet/file_reader.h>
#include <parquet/statistics.h>

#include "granary/common/temp_dir.h"

namespace granary::datagen {
namespace {

std::shared_ptr<arrow::Schema> EventSchema() {
  return arrow::schema(
      {arrow::field("id", arrow::int64(), false),
       arrow::field("event_timestamp", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"), false)});
}

std::shared_ptr<arrow::RecordBatch> Events(const std::vector<std::pair<int64_t, int64_t>>& rows) {
  arrow::Int64Builder ids;
  arrow::TimestampBuilder times(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                                arrow::default_memory_pool());
  for (auto [id, day] : rows) {
    EXPECT_TRUE(ids.Append(id).ok());
    EXPECT_TRUE(times.Append(Duration::Days(day).micros).ok());
  }
  return arrow::RecordBatch::Make(EventSchema(), static_cast<int64_t>(rows.size()),
                                  {ids.Finish().ValueOrDie(), times.Finish().ValueOrDie()});
}

TEST(TimeOrderedTableWriter, WritesRowsInTimeOrderKeepingArrivalOrderOfTiesInShortRowGroups) {
  auto dir = TempDir::Make("granary-time-ordered-").ValueOrDie();
  const auto path = dir.path() / "events.parquet";
  auto writer = TimeOrderedTableWriter::Open(path, EventSchema(), "event_timestamp",
                                             Timestamp::FromMicros(0), Duration::Days(7), 4)
                    .ValueOrDie();
  // Customer by customer, as the generator makes them: each batch spans every week.
  ASSERT_TRUE(writer->Append(*Events({{1, 20}, {1, 3}, {1, 10}, {1, 3}})).ok());
  ASSERT_TRUE(writer->Append(*Events({{2, 3}, {2, 0}, {2, 15}})).ok());
  ASSERT_TRUE(writer->Append(*Events({{3, 10}, {3, 1}, {3, 20}})).ok());
  EXPECT_TRUE(std::filesystem::exists(path.string() + ".spill.arrow"));
  EXPECT_EQ(writer->rows(), 10);
  auto bytes = writer->Close();
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EXPECT_EQ(*bytes, static_cast<int64_t>(std::filesystem::file_size(path)));
  EXPECT_FALSE(std::filesystem::exists(path.string() + ".spill.arrow"));

  auto file = arrow::io::ReadableFile::Open(path.string()).ValueOrDie();
  auto reader = parquet::arrow::OpenFile(file, arrow::default_memory_pool()).ValueOrDie();
  std::shared_ptr<arrow::Table> table = reader->ReadTable().ValueOrDie();
  auto combined = table->CombineChunksToBatch().ValueOrDie();
  const auto& ids = static_cast<const arrow::Int64Array&>(*combined->column(0));
  const auto& times = static_cast<const arrow::TimestampArray&>(*combined->column(1));
  std::vector<std::pair<int64_t, int64_t>> got;
  for (int64_t i = 0; i < combined->num_rows(); ++i) {
    got.emplace_back(ids.Value(i), times.Value(i) / Duration::Days(1).micros);
  }
  // Sorted by time; ties (day 3: customers 1, 1, 2) in the order they were appended.
  EXPECT_EQ(
      got,
      (std::vector<std::pair<int64_t, int64_t>>{
          {2, 0}, {3, 1}, {1, 3}, {1, 3}, {2, 3}, {1, 10}, {3, 10}, {2, 15}, {1, 20}, {3, 20}}));
  // Row groups of at most 4 rows, each spanning a short time range.
  auto metadata = reader->parquet_reader()->metadata();
  ASSERT_EQ(metadata->num_row_groups(), 3);
  auto stats = metadata->RowGroup(0)->ColumnChunk(1)->statistics();
  auto typed = std::static_pointer_cast<parquet::Int64Statistics>(stats);
  EXPECT_EQ(typed->min(), 0);
  EXPECT_EQ(typed->max(), Duration::Days(3).micros);
}

TEST(TimeOrderedTableWriter, RefusesATableWithoutItsTimeColumn) {
  auto dir = TempDir::Make("granary-time-ordered-").ValueOrDie();
  auto writer = TimeOrderedTableWriter::Open(dir.path() / "x.parquet", EventSchema(), "ts",
                                             Timestamp::FromMicros(0), Duration::Days(7), 4);
  EXPECT_FALSE(writer.ok());
}

}  // namespace
}  // namespace granary::datagen
