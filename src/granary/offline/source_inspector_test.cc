#include "granary/offline/source_inspector.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

#include "granary/offline/delta_log.h"
#include "granary/registry/loader.h"
#include "granary/testing/testdata.h"

namespace granary {
namespace {

const std::filesystem::path kTestData = testing::TestDataDir();

// Definitions over Feast's driver_stats.parquet; `avg_type` is the declared type of
// avg_daily_trips (int32 in the file).
std::string DriverDefs(const std::string& avg_type, const std::string& path) {
  return "entities:\n  - {name: driver, join_keys: [driver_id], value_type: int64}\n"
         "data_sources:\n  - {name: driver_stats, path: " +
         path +
         ", timestamp_field: event_timestamp, created_timestamp_column: created}\n"
         "feature_views:\n  - name: driver_hourly\n    entities: [driver]\n"
         "    source: driver_stats\n    ttl: 1d\n    schema:\n"
         "      - {name: conv_rate, type: float32}\n"
         "      - {name: acc_rate, type: float64}\n"
         "      - {name: avg_daily_trips, type: " +
         avg_type + "}\n";
}

Diagnostics Validate(const std::string& text) {
  Diagnostics diag;
  Definitions defs;
  LoadDefinitionsText("defs.yaml", text, &defs, &diag);
  EXPECT_FALSE(diag.has_errors()) << diag.ToStatus().ToString();
  FileSourceInspector inspector(kTestData);
  ValidateDefinitions(defs, &inspector, &diag);
  return diag;
}

TEST(SourceValidation, AcceptsMatchingAndWideningTypesOnRealParquet) {
  GRANARY_REQUIRE_TESTDATA("feast");
  Diagnostics diag = Validate(DriverDefs("int64", "feast/driver_stats.parquet"));
  EXPECT_FALSE(diag.has_errors()) << diag.ToStatus().ToString();
  EXPECT_TRUE(diag.Warnings().empty());
}

TEST(SourceValidation, FieldTypeNotMatchingTheSourceColumnIsAnError) {
  GRANARY_REQUIRE_TESTDATA("feast");
  Diagnostics diag = Validate(DriverDefs("string", "feast/driver_stats.parquet"));
  ASSERT_EQ(diag.error_count(), 1);
  EXPECT_EQ(diag.ToStatus().message(),
            "defs.yaml:13: feature view 'driver_hourly': field 'avg_daily_trips' is string but "
            "source column is int32 'avg_daily_trips'; change the field's type to match the data");
}

TEST(SourceValidation, MissingColumnsAndTimestampFieldAreErrors) {
  GRANARY_REQUIRE_TESTDATA("feast");
  std::string text = DriverDefs("int32", "feast/driver_stats.parquet");
  text.replace(text.find("timestamp_field: event_timestamp"), 32, "timestamp_field: event_ts");
  text += "      - {name: rating, type: float64}\n";
  Diagnostics diag = Validate(text);
  ASSERT_EQ(diag.error_count(), 2) << diag.ToStatus().message();
  const std::string msg = diag.ToStatus().message();
  EXPECT_NE(msg.find("timestamp_field 'event_ts' is not a column of feast/driver_stats.parquet, "
                     "did you mean 'event_timestamp'?"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("feature 'rating' has no column 'rating'"), std::string::npos) << msg;
}

TEST(SourceValidation, MissingDataIsAWarningNotAnError) {
  GRANARY_REQUIRE_TESTDATA("feast");
  Diagnostics diag = Validate(DriverDefs("int32", "feast/not_there_yet.parquet"));
  EXPECT_FALSE(diag.has_errors());
  ASSERT_EQ(diag.Warnings().size(), 1u);
  EXPECT_NE(diag.Warnings()[0].find("no data at 'feast/not_there_yet.parquet' yet"),
            std::string::npos);
}

TEST(SourceValidation, UnreadableParquetIsAClearError) {
  GRANARY_REQUIRE_TESTDATA("feast");
  Diagnostics diag = Validate(DriverDefs("int32", "feast/bookings.csv, format: parquet"));
  ASSERT_TRUE(diag.has_errors());
  EXPECT_NE(diag.ToStatus().message().find("is not a readable Parquet file"), std::string::npos)
      << diag.ToStatus().message();
}

TEST(SourceInspector, ReadsCsvHeaderUntyped) {
  GRANARY_REQUIRE_TESTDATA("feast");
  FileSourceInspector inspector(kTestData);
  DataSource s;
  s.name = "bookings";
  s.format = SourceFormat::kCsv;
  s.path = "feast/bookings.csv";
  auto schema = inspector.Inspect(s).ValueOrDie();
  ASSERT_TRUE(schema.has_value());
  EXPECT_FALSE(schema->typed);
  EXPECT_EQ(schema->schema->field_names(),
            (std::vector<std::string>{"driver_id", "event_timestamp", "created_timestamp",
                                      "completed_bookings"}));
}

TEST(DeltaLog, ReadsSchemaFromCommitsWithPartitionColumns) {
  GRANARY_REQUIRE_TESTDATA("delta-golden");
  auto schema = ReadDeltaSchema(kTestData / "delta-golden/data-reader-partition-values/delta");
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  EXPECT_NE((*schema)->GetFieldByName("as_int"), nullptr);
  EXPECT_EQ((*schema)->GetFieldByName("as_int")->type()->id(), arrow::Type::INT32);
}

TEST(DeltaLog, ReadsSchemaOfTablesWithCheckpoints) {
  GRANARY_REQUIRE_TESTDATA("delta-golden");
  GRANARY_REQUIRE_TESTDATA("delta-rs");
  for (const char* table : {"delta-golden/only-checkpoint-files/delta",
                            "delta-golden/basic-with-inserts-deletes-checkpoint/delta",
                            "delta-rs/simple_table_with_checkpoint"}) {
    auto schema = ReadDeltaSchema(kTestData / table);
    ASSERT_TRUE(schema.ok()) << table << ": " << schema.status().ToString();
    EXPECT_GT((*schema)->num_fields(), 0) << table;
  }
}

TEST(DeltaLog, ValidationReadsTheSchemaByTheSameReplayAsTheScan) {
  GRANARY_REQUIRE_TESTDATA("delta-golden");
  GRANARY_REQUIRE_TESTDATA("delta-rs");
  // No _last_checkpoint and no commit with a metaData action: the schema is in the checkpoint
  // found by listing the log.
  auto vacuumed = ReadDeltaSchema(kTestData / "delta-rs/checkpoints_vacuumed");
  ASSERT_TRUE(vacuumed.ok()) << vacuumed.status().ToString();
  EXPECT_GT((*vacuumed)->num_fields(), 0);
  auto no_pointer = ReadDeltaSchema(kTestData / "delta-rs/with_checkpoint_no_last_checkpoint");
  ASSERT_TRUE(no_pointer.ok()) << no_pointer.status().ToString();
  EXPECT_GT((*no_pointer)->num_fields(), 0);
  // A corrupt _last_checkpoint is ignored, as the scan ignores it.
  auto corrupt = ReadDeltaSchema(kTestData / "delta-golden/corrupted-last-checkpoint-kernel/delta");
  ASSERT_TRUE(corrupt.ok()) << corrupt.status().ToString();
  // The protocol is checked: a table the scan refuses fails validation too.
  auto protocol =
      ReadDeltaSchema(kTestData / "delta-golden/deltalog-invalid-protocol-version/delta");
  ASSERT_FALSE(protocol.ok());
  EXPECT_NE(protocol.status().message().find("needs reader version 99"), std::string::npos)
      << protocol.status().message();
  // Through the inspector that `granary apply` uses.
  DataSource source;
  source.name = "vacuumed";
  source.path = "delta-rs/checkpoints_vacuumed";
  source.format = SourceFormat::kDelta;
  FileSourceInspector inspector(kTestData);
  auto inspected = inspector.Inspect(source);
  ASSERT_TRUE(inspected.ok()) << inspected.status().ToString();
  ASSERT_TRUE(inspected->has_value());
  EXPECT_EQ((*inspected)->schema->ToString(), (*vacuumed)->ToString());
}

TEST(DeltaLog, AFolderWithoutALogIsNotADeltaTable) {
  GRANARY_REQUIRE_TESTDATA("delta-golden");
  auto schema = ReadDeltaSchema(kTestData / "delta-golden/no-delta-log-folder/delta");
  ASSERT_FALSE(schema.ok());
  EXPECT_NE(schema.status().message().find("has no _delta_log folder"), std::string::npos);
  EXPECT_EQ(ReadDeltaSchema(kTestData / "delta-golden/absent").status().code(),
            StatusCode::kNotFound);
}

TEST(DeltaLog, MapsDeltaTypesToArrow) {
  auto schema = DeltaSchemaToArrow(
      R"json({"type":"struct","fields":[{"name":"id","type":"long","nullable":false,"metadata":{}},
      {"name":"ts","type":"timestamp","nullable":true,"metadata":{}},
      {"name":"emb","type":{"type":"array","elementType":"float","containsNull":false},"nullable":true,"metadata":{}},
      {"name":"price","type":"decimal(10,2)","nullable":true,"metadata":{}}]})json");
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  EXPECT_EQ((*schema)->ToString(),
            "id: int64 not null\nts: timestamp[us, tz=UTC]\nemb: list<element: float not null>\n"
            "price: decimal128(10, 2)");
  EXPECT_FALSE(
      DeltaSchemaToArrow(R"({"type":"struct","fields":[{"name":"x","type":"variant"}]})").ok());
}

}  // namespace
}  // namespace granary
