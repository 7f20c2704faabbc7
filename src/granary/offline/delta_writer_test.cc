#include "granary/offline/delta_writer.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

#include <fstream>

#include "granary/common/temp_dir.h"
#include "granary/offline/delta_log.h"

namespace granary {
namespace {

TEST(DeltaWriter, TimestampStatisticsUseMillisecondsAndZ) {
  EXPECT_EQ(DeltaTimestampJson(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(DeltaTimestampJson(1'767'226'500'123'456), "2026-01-01T00:15:00.123Z");
  EXPECT_EQ(DeltaTimestampJson(-1), "1969-12-31T23:59:59.999Z");
}

TEST(DeltaWriter, UuidsHaveTheVersionAndVariantBits) {
  const std::string id = UuidFromBits(0, 0);
  EXPECT_EQ(id, "00000000-0000-4000-8000-000000000000");
  EXPECT_EQ(UuidFromBits(~0ULL, ~0ULL), "ffffffff-ffff-4fff-bfff-ffffffffffff");
}

TEST(DeltaWriter, SchemaStringRoundTripsThroughTheReader) {
  auto schema =
      arrow::schema({arrow::field("id", arrow::int64(), false), arrow::field("n", arrow::int32()),
                     arrow::field("x", arrow::float64()), arrow::field("ok", arrow::boolean()),
                     arrow::field("s", arrow::utf8()), arrow::field("d", arrow::date32(), false),
                     arrow::field("t", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"), false)});
  auto text = DeltaSchemaString(*schema);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  auto back = DeltaSchemaToArrow(*text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE((*back)->Equals(*schema)) << (*back)->ToString();

  auto bad = DeltaSchemaString(*arrow::schema({arrow::field("u", arrow::uint64())}));
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("uint64"), std::string::npos);
}

TEST(DeltaWriter, WritesOneCommitAndRefusesToOverwriteIt) {
  auto dir = TempDir::Make("granary-delta-").ValueOrDie();
  DeltaTableSpec spec;
  spec.id = UuidFromBits(1, 2);
  spec.name = "t";
  spec.schema = arrow::schema(
      {arrow::field("id", arrow::int64()), arrow::field("event_date", arrow::date32())});
  spec.partition_columns = {"event_date"};
  DeltaAddFile add;
  add.path = "event_date=2026-01-01/part-00000.parquet";
  add.partition_values["event_date"] = "2026-01-01";
  add.size = 10;
  add.num_records = 3;
  add.stats.push_back({"id", "1", "3", 0});
  ASSERT_TRUE(WriteDeltaLog(dir.path(), spec, {add}).ok());

  std::ifstream in(dir.path() / "_delta_log" / "00000000000000000000.json");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0].rfind("{\"commitInfo\":", 0), 0u);
  EXPECT_EQ(lines[1], "{\"protocol\":{\"minReaderVersion\":1,\"minWriterVersion\":2}}");
  EXPECT_NE(lines[2].find("\"partitionColumns\":[\"event_date\"]"), std::string::npos);
  EXPECT_NE(lines[3].find("\"stats\":\"{\\\"numRecords\\\":3,\\\"minValues\\\":{\\\"id\\\":1}"),
            std::string::npos)
      << lines[3];
  auto schema = ReadDeltaSchema(dir.path());
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  EXPECT_TRUE((*schema)->Equals(*spec.schema));

  EXPECT_EQ(WriteDeltaLog(dir.path(), spec, {add}).code(), StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace granary
