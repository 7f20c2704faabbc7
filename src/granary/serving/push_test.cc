#include "granary/serving/push.h"

#include <arrow/api.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cmath>

#include "granary/offline/file_listing.h"
#include "granary/offline/table_io.h"
#include "granary/online/rocksdb/rocksdb_store.h"
#include "granary/serving/online_features.h"
#include "granary/testing/serving_definitions.h"

namespace granary {
namespace {

using testing::kPushDefinitions;
using testing::LoadValid;

const Timestamp kNow = ParseTimestamp("2027-01-15T08:00:00Z").ValueOrDie();

class PushTest : public ::testing::Test {
 protected:
  void SetUp() override {
    defs_ = std::make_shared<Definitions>(LoadValid(kPushDefinitions));
    RocksDbOnlineStore::Options options;
    options.clock = &clock_;
    store_ = RocksDbOnlineStore::Open(dir_.path() / "online", options).ValueOrDie();
    service_ = OnlineFeaturesService::Make(defs_, store_.get(), Duration::Days(90)).ValueOrDie();
    context_.definitions = defs_.get();
    context_.layouts = &service_->layouts();
    context_.store = store_.get();
    context_.repo_root = dir_.path();
    context_.clock = &clock_;
  }

  Result<PushResult> PushJson(const std::string& json) {
    GRANARY_ASSIGN_OR_RAISE(PushRequest request, ParsePushRequest(json, *defs_));
    return Push(context_, request.push_source_name, *request.rows, request.to);
  }

  std::string ParseError(const std::string& json) {
    auto request = ParsePushRequest(json, *defs_);
    EXPECT_FALSE(request.ok()) << json;
    EXPECT_EQ(request.status().code(), StatusCode::kInvalidArgument);
    return request.status().message();
  }

  // The online response for customers, as parsed JSON.
  rapidjson::Document Online(const std::string& features, const std::string& customers) {
    auto request = ParseOnlineFeaturesRequest(
        R"({"features": [)" + features + R"(], "entities": {"customer_id": [)" + customers + "]}}");
    EXPECT_TRUE(request.ok()) << request.status().ToString();
    std::string json;
    Status st = service_->GetOnlineFeatures(*request, &json);
    EXPECT_TRUE(st.ok()) << st.ToString();
    rapidjson::Document doc;
    doc.Parse(json.c_str());
    return doc;
  }

  TempDir dir_ = TempDir::Make("granary_push_").ValueOrDie();
  ManualClock clock_{kNow};
  std::shared_ptr<Definitions> defs_;
  std::unique_ptr<RocksDbOnlineStore> store_;
  std::unique_ptr<OnlineFeaturesService> service_;
  PushContext context_;
};

constexpr const char* kTwoRows = R"({
  "push_source_name": "payments_push",
  "df": {"customer_id": [1001, 1002],
         "event_timestamp": ["2027-01-15T07:00:00Z", "2027-01-15T07:30:00Z"],
         "score": [0.25, null], "failures": [3, 4], "labels": [["a", "b"], null]},
  "to": "online"})";

TEST_F(PushTest, OnlinePushWritesEveryViewOfThePushSource) {
  auto result = PushJson(kTwoRows);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->rows, 2);
  EXPECT_EQ(result->views, (std::vector<std::string>{"risk", "risk_counts"}));
  EXPECT_EQ(result->online.written, 4);
  EXPECT_TRUE(result->offline.files.empty());

  auto doc = Online(R"("risk:score", "risk:labels", "risk_counts:failures")", "1001, 1002, 7");
  const auto& results = doc["results"];
  EXPECT_EQ(results[1]["values"][0].GetDouble(), 0.25);
  EXPECT_STREQ(results[1]["statuses"][1].GetString(), "NULL_VALUE");
  EXPECT_STREQ(results[1]["statuses"][2].GetString(), "NOT_FOUND");
  EXPECT_STREQ(results[2]["values"][0][1].GetString(), "b");
  EXPECT_EQ(results[3]["values"][1].GetInt64(), 4);
  EXPECT_STREQ(results[3]["event_timestamps"][1].GetString(), "2027-01-15T07:30:00Z");
}

TEST_F(PushTest, AnOlderPushDoesNotOverwriteANewerRow) {
  ASSERT_TRUE(PushJson(kTwoRows).ok());
  auto older = PushJson(R"({"push_source_name": "payments_push",
    "df": {"customer_id": [1001], "event_timestamp": ["2027-01-15T06:00:00Z"],
           "score": [9.0], "failures": [9], "labels": [[]]}})");
  ASSERT_TRUE(older.ok()) << older.status().ToString();
  EXPECT_EQ(older->online.written, 0);
  EXPECT_EQ(older->online.skipped_older, 2);
  auto doc = Online(R"("risk:score")", "1001");
  EXPECT_EQ(doc["results"][1]["values"][0].GetDouble(), 0.25);
}

TEST_F(PushTest, OfflinePushAppendsAFileToTheBatchSourceAndWritesNothingOnline) {
  auto result = PushJson(R"({"push_source_name": "payments_push", "to": "offline",
    "df": {"customer_id": [5], "event_timestamp": ["2027-01-15T07:00:00Z"],
           "created": ["2027-01-15T07:01:00Z"], "score": [1.5], "failures": [1],
           "labels": [["x"]]}})");
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_EQ(result->offline.files.size(), 1u);
  EXPECT_TRUE(result->views.empty());
  auto files = ListDataFiles(dir_.path() / "data/payments", ".parquet").ValueOrDie();
  ASSERT_EQ(files.size(), 1u);
  auto table = ReadTableFile(files[0]).ValueOrDie();
  EXPECT_EQ(table->num_rows(), 1);
  EXPECT_EQ(table->schema()->GetFieldByName("created")->type()->id(), arrow::Type::TIMESTAMP);
  auto doc = Online(R"("risk:score")", "5");
  EXPECT_STREQ(doc["results"][1]["statuses"][0].GetString(), "NOT_FOUND");

  const std::string json =
      PushResultJson("payments_push", PushTarget::kOffline, *result, dir_.path());
  EXPECT_NE(json.find(R"("offline":{"files":["data/payments/part-)"), std::string::npos) << json;
}

TEST_F(PushTest, OnlineAndOfflineWritesBoth) {
  auto result = PushJson(std::string(kTwoRows).replace(std::string(kTwoRows).find("\"online\""), 8,
                                                       "\"online_and_offline\""));
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->online.written, 4);
  EXPECT_EQ(result->offline.files.size(), 1u);
}

TEST_F(PushTest, ABadRowWritesNothingAnywhere) {
  // failures is missing: the online views cannot be written, so the offline append is not made.
  auto result = PushJson(R"({"push_source_name": "payments_push", "to": "online_and_offline",
    "df": {"customer_id": [5], "event_timestamp": ["2027-01-15T07:00:00Z"], "score": [1.5],
           "labels": [null]}})");
  ASSERT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find("df: missing column 'failures' (a feature of feature "
                                           "view 'risk', which reads push source "
                                           "'payments_push')"),
            std::string::npos)
      << result.status().message();
  EXPECT_TRUE(ListDataFiles(dir_.path() / "data/payments", ".parquet").ValueOrDie().empty());
  // A null join key.
  result = PushJson(R"({"push_source_name": "payments_push",
    "df": {"customer_id": [5, null], "event_timestamp": ["2027-01-15T07:00:00Z", "2027-01-15T07:00:00Z"],
           "score": [1.5, 1], "failures": [1, 2], "labels": [null, null]}})");
  ASSERT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find("df.customer_id[1]: must not be null"),
            std::string::npos)
      << result.status().message();
  auto doc = Online(R"("risk:score")", "5");
  EXPECT_STREQ(doc["results"][1]["statuses"][0].GetString(), "NOT_FOUND");
}

TEST_F(PushTest, OfflinePushToASingleFileSourceSaysHowToFixIt) {
  auto result = PushJson(R"({"push_source_name": "single_push", "to": "offline",
    "df": {"customer_id": [5], "event_timestamp": ["2027-01-15T07:00:00Z"], "score": [1.5]}})");
  ASSERT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find(
                "offline append to data source 'single': data source 'single' is the single file "
                "data/single.parquet"),
            std::string::npos)
      << result.status().message();
  EXPECT_NE(result.status().message().find("set path: data/single"), std::string::npos);
}

TEST_F(PushTest, BadRequestsSayWhatAndWhere) {
  EXPECT_EQ(ParseError(R"({"push_source_name": "payments_push",
    "df": {"customer_id": [1, "abc"], "event_timestamp": ["2027-01-15T07:00:00Z", "x"]}})"),
            "df.customer_id[1]: expected int64, got \"abc\"; write the number without quotes");
  EXPECT_EQ(ParseError(R"({"push_source_name": "payments_push",
    "df": {"event_timestamp": ["yesterday"]}})")
                .substr(0, 42),
            "df.event_timestamp[0]: expected timestamp,");
  EXPECT_EQ(ParseError(R"({"push_source_name": "payments_push",
    "df": {"labels": [["a", null]]}})"),
            "df.labels[0]: element 1 of the list is null; list elements may not be null (the "
            "whole list may)");
  EXPECT_EQ(ParseError(R"({"push_source_name": "payments_push",
    "df": {"customer_id": [1, 2], "score": [1.0]}})"),
            "df.score has 1 values but df.customer_id has 2; give every column one value per row");
  EXPECT_EQ(ParseError(R"({"push_source_name": "payments_psh", "df": {"customer_id": [1]}})"),
            "push_source_name: 'payments_psh' is not a data source, did you mean "
            "'payments_push'?; the push sources are: payments_push, single_push");
  EXPECT_EQ(ParseError(R"({"push_source_name": "payments", "df": {"customer_id": [1]}})"),
            "push_source_name: 'payments' is not a push source (type: push), did you mean "
            "'payments_push'?; the push sources are: payments_push, single_push");
  EXPECT_EQ(ParseError(R"({"push_source_name": "payments_push", "df": {"customer_id": [1]},
                           "to": "disk"})"),
            "to: 'disk' is not a push target; use \"online\", \"offline\" or "
            "\"online_and_offline\"");
  EXPECT_EQ(ParseError(R"({"push_source_name": "payments_push", "df": {}})"),
            "df: has no rows; give at least one value per column");
  EXPECT_EQ(ParseError(R"({"push_source_name": "payments_push", "dff": {}})"),
            "unknown request field 'dff', did you mean 'df'?; the fields are push_source_name, "
            "df and to");
  EXPECT_EQ(ParseError(R"({"push_source_name": "payments_push", "df": {"customer_id": [1],)"),
            "the request is not valid JSON: line 1, column 65: Missing a name for object "
            "member.");
  EXPECT_EQ(ParseError(R"([1])").substr(0, 38), "the request must be a JSON object such");
  // Bytes that are not UTF-8 inside a string (found by the fuzzer: they made an invalid Arrow
  // string column of a column no view reads).
  EXPECT_EQ(
      ParseError("{\"push_source_name\": \"payments_push\", \"df\": {\"note\": [\"a\xff\"]}}"),
      "the request is not valid JSON: line 1, column 57: Invalid encoding in string.");
  // A non-finite token glued to an exponent (found by the fuzzer: RapidJSON read past its buffer).
  EXPECT_EQ(ParseError(R"({"push_source_name": "payments_push", "df": {"score": [NaNe299]}})"),
            "the request is not valid JSON: line 1, column 59: NaN cannot be followed by 'e'");
  // The same text inside a string is a string.
  EXPECT_TRUE(ParsePushRequest(
                  R"({"push_source_name": "payments_push", "df": {"note": ["NaNe299"]}})", *defs_)
                  .ok());
}

TEST_F(PushTest, NanAndInfinityAreAcceptedAsPythonWritesThem) {
  auto request = ParsePushRequest(R"({"push_source_name": "payments_push",
    "df": {"customer_id": [1, 2], "score": [NaN, -Infinity]}})",
                                  *defs_);
  ASSERT_TRUE(request.ok()) << request.status().ToString();
  auto score = std::static_pointer_cast<arrow::DoubleArray>(
      request->rows->GetColumnByName("score")->chunk(0));
  EXPECT_TRUE(std::isnan(score->Value(0)));
  EXPECT_TRUE(std::isinf(score->Value(1)));
}

TEST_F(PushTest, ArrowTablesOfWiderOrTextTypesArePushedAsTheViewsDeclare) {
  // The Python SDK's path: int32 keys, timestamps as text, a feature as float32.
  arrow::Int32Builder ids;
  ASSERT_TRUE(ids.AppendValues({42}).ok());
  arrow::StringBuilder times;
  ASSERT_TRUE(times.Append("2027-01-15T07:45:00Z").ok());
  arrow::FloatBuilder score;
  ASSERT_TRUE(score.Append(0.5f).ok());
  arrow::Int64Builder failures;
  ASSERT_TRUE(failures.Append(2).ok());
  auto labels_builder = std::make_shared<arrow::StringBuilder>();
  arrow::ListBuilder labels(arrow::default_memory_pool(), labels_builder);
  ASSERT_TRUE(labels.AppendNull().ok());
  auto table = arrow::Table::Make(
      arrow::schema({arrow::field("customer_id", arrow::int32()),
                     arrow::field("event_timestamp", arrow::utf8()),
                     arrow::field("score", arrow::float32()),
                     arrow::field("failures", arrow::int64()),
                     arrow::field("labels", arrow::list(arrow::utf8()))}),
      {ids.Finish().ValueOrDie(), times.Finish().ValueOrDie(), score.Finish().ValueOrDie(),
       failures.Finish().ValueOrDie(), labels.Finish().ValueOrDie()});
  auto result = Push(context_, "payments_push", *table, PushTarget::kOnline);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  auto doc = Online(R"("risk:score", "risk:failures")", "42");
  EXPECT_EQ(doc["results"][1]["values"][0].GetDouble(), 0.5);
  EXPECT_STREQ(doc["results"][1]["event_timestamps"][0].GetString(), "2027-01-15T07:45:00Z");
}

TEST_F(PushTest, APushSourceNoOnlineViewReadsCannotBePushedOnline) {
  DataSource lonely;
  lonely.name = "lonely_push";
  lonely.batch_source = "payments";
  defs_->data_sources.push_back(lonely);
  auto result = PushJson(R"({"push_source_name": "lonely_push",
    "df": {"customer_id": [1], "event_timestamp": ["2027-01-15T07:00:00Z"]}})");
  ASSERT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find("no online feature view reads push source "
                                           "'lonely_push'"),
            std::string::npos)
      << result.status().message();
}

}  // namespace
}  // namespace granary
