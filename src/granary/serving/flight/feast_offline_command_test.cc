#include "granary/serving/flight/feast_offline_command.h"

#include <arrow/api.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/reader.h>
#include <gtest/gtest.h>

#include "granary/testing/arrow_ipc_stream.h"

namespace granary::serving {
namespace {

// As Feast 0.67's client writes it (remote.py: json.dumps of the command).
constexpr const char* kFeastCommand = R"({"command_id": "5f0c", "api": "get_historical_features",
  "feature_view_names": ["driver_hourly_stats", "driver_fresh_stats"],
  "feature_refs": ["driver_hourly_stats:conv_rate", "driver_fresh_stats:avg_daily_trips"],
  "project": "driver_compat", "full_feature_names": true, "name_aliases": [null, null]})";

TEST(FeastOfflineCommand, ParsesWhatFeastsClientSends) {
  auto command = ParseFeastOfflineCommand(kFeastCommand);
  ASSERT_TRUE(command.ok()) << command.status().ToString();
  EXPECT_EQ(command->api, "get_historical_features");
  ASSERT_TRUE(command->historical.has_value());
  const FeastHistoricalCommand& h = *command->historical;
  EXPECT_EQ(h.command_id, "5f0c");
  EXPECT_EQ(h.project, "driver_compat");
  ASSERT_EQ(h.features.size(), 2u);
  EXPECT_EQ(h.features[0].ToString(), "driver_hourly_stats:conv_rate");
  EXPECT_EQ(h.features[1].ToString(), "driver_fresh_stats:avg_daily_trips");
  EXPECT_EQ(h.feature_view_names.size(), 2u);
  EXPECT_TRUE(h.full_feature_names);
  EXPECT_TRUE(h.entity_df_sql.empty());
  EXPECT_FALSE(h.start_date.has_value());
}

TEST(FeastOfflineCommand, KeepsSqlEntityRowsAndDates) {
  auto command = ParseFeastOfflineCommand(
      R"({"api": "get_historical_features", "feature_view_names": ["v"], "name_aliases": [null],
          "feature_refs": ["v:f"], "project": "p", "full_feature_names": false,
          "entity_df_sql": "SELECT 1", "start_date": "2026-01-01T00:00:00+00:00"})");
  ASSERT_TRUE(command.ok()) << command.status().ToString();
  EXPECT_EQ(command->historical->entity_df_sql, "SELECT 1");
  EXPECT_EQ(command->historical->start_date.value_or(""), "2026-01-01T00:00:00+00:00");
  EXPECT_FALSE(command->historical->end_date.has_value());
}

TEST(FeastOfflineCommand, OtherApisComeBackUnparsed) {
  auto command = ParseFeastOfflineCommand(
      R"({"api": "pull_latest_from_table_or_query", "data_source_name": 3})");
  ASSERT_TRUE(command.ok()) << command.status().ToString();
  EXPECT_EQ(command->api, "pull_latest_from_table_or_query");
  EXPECT_FALSE(command->historical.has_value());
  const std::string message = UnsupportedFeastOfflineApi(command->api);
  EXPECT_NE(message.find("granary materialize"), std::string::npos) << message;
  EXPECT_NE(message.find("serves Feast's get_historical_features"), std::string::npos) << message;
}

void ExpectInvalid(std::string_view text, std::string_view expected) {
  auto command = ParseFeastOfflineCommand(text);
  ASSERT_FALSE(command.ok()) << text;
  EXPECT_EQ(command.status().code(), StatusCode::kInvalidArgument) << text;
  EXPECT_NE(command.status().message().find(expected), std::string::npos)
      << command.status().message();
}

TEST(FeastOfflineCommand, MalformedCommandsSayWhatIsWrong) {
  ExpectInvalid("", "not JSON");
  ExpectInvalid("{\"api\": ", "not JSON");
  ExpectInvalid("[1, 2]", "must be a JSON object, not an array");
  ExpectInvalid("{}", "'api' is missing");
  ExpectInvalid(R"({"api": 7})", "'api' must be a string");
  ExpectInvalid(R"({"api": "get_historical_features"})", "'project' is missing");
  ExpectInvalid(R"({"api": "get_historical_features", "project": "p"})",
                "'feature_refs' is missing");
  ExpectInvalid(R"({"api": "get_historical_features", "project": "p", "feature_refs": "v:f"})",
                "'feature_refs' must be a list");
  ExpectInvalid(R"({"api": "get_historical_features", "project": "p", "feature_refs": []})",
                "'feature_refs' is empty");
  ExpectInvalid(R"({"api": "get_historical_features", "project": "p", "feature_refs": [1]})",
                "must hold strings");
  ExpectInvalid(R"({"api": "get_historical_features", "project": "p",
                    "feature_refs": ["no_colon"], "feature_view_names": [], "name_aliases": []})",
                "no_colon");
  ExpectInvalid(R"({"api": "get_historical_features", "project": "p", "feature_refs": ["v:f"],
                    "feature_view_names": ["v"], "name_aliases": []})",
                "'name_aliases' has 0 items but 'feature_view_names' 1");
  ExpectInvalid(R"({"api": "get_historical_features", "project": "p", "feature_refs": ["v:f"],
                    "feature_view_names": ["v"], "name_aliases": [null],
                    "full_feature_names": "yes"})",
                "'full_feature_names' must be true or false");
  ExpectInvalid(R"({"api": "get_historical_features", "project": ["p"]})",
                "'project' must be a string");
  // Deeply nested input stops at the depth bound instead of recursing.
  ExpectInvalid(std::string(10000, '[') + std::string(10000, ']'), "not JSON");
}

TEST(FeastOfflineCommand, AliasedProjectionsAreNotImplemented) {
  auto command = ParseFeastOfflineCommand(
      R"({"api": "get_historical_features", "project": "p", "feature_refs": ["a:f"],
          "feature_view_names": ["v"], "name_aliases": ["a"]})");
  ASSERT_FALSE(command.ok());
  EXPECT_EQ(command.status().code(), StatusCode::kNotImplemented);
  EXPECT_NE(command.status().message().find("alias 'a'"), std::string::npos);
}

// The upload of an entity_df as a Flight client sends it (granary/testing/arrow_ipc_stream.h),
// read back with Arrow's IPC reader as the Flight server does.
Result<std::shared_ptr<arrow::Table>> Upload(bool damage_offsets) {
  const std::string bytes = granary::testing::CitiesIpcStream(damage_offsets);
  auto reader = arrow::ipc::RecordBatchStreamReader::Open(
                    std::make_shared<arrow::io::BufferReader>(arrow::Buffer::FromString(bytes)))
                    .ValueOrDie();
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  std::shared_ptr<arrow::RecordBatch> read;
  while (reader->ReadNext(&read).ok() && read != nullptr) batches.push_back(read);
  EXPECT_EQ(batches.size(), 1u) << "Arrow's IPC reader takes the damaged offsets as they are";
  return UploadedEntityTable(reader->schema(), batches);
}

TEST(UploadedEntityTable, TakesValidRows) {
  auto table = Upload(false);
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  EXPECT_EQ((*table)->num_rows(), 3);
  EXPECT_FALSE(IsFeastPlaceholder(**table));
}

// Found auditing the Flight upload; replayed by fuzz/flight_entities_fuzz.cc
// (fuzz/corpus/flight_entities/crash_string_offset_5000.arrows): a string offset past the
// column's data was kept, and the retrieval read past the upload's buffers.
TEST(UploadedEntityTable, RefusesOffsetsPastTheData) {
  auto table = Upload(true);
  ASSERT_FALSE(table.ok());
  EXPECT_EQ(table.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(table.status().message().find("not valid Arrow data"), std::string::npos)
      << table.status().message();
  EXPECT_NE(table.status().message().find("5000"), std::string::npos) << table.status().message();
}

}  // namespace
}  // namespace granary::serving
