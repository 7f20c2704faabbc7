#include "granary/serving/push.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

#include <cmath>

#include "granary/common/json.h"
#include "granary/offline/embedded/embedded_engine.h"
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
    engine_ = MakeEmbeddedEngine(dir_.path());
    context_.engine = engine_.get();
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
  boost::json::value Online(const std::string& features, const std::string& customers) {
    auto request = ParseOnlineFeaturesRequest(
        R"({"features": [)" + features + R"(], "entities": {"customer_id": [)" + customers + "]}}");
    EXPECT_TRUE(request.ok()) << request.status().ToString();
    std::string json;
    Status st = service_->GetOnlineFeatures(*request, &json);
    EXPECT_TRUE(st.ok()) << st.ToString();
    JsonParseOptions options;  // responses write NaN as Python does
    options.allow_non_finite = true;
    auto parsed = ParseJson(json, options);
    EXPECT_TRUE(parsed.ok()) << parsed.status().ToString() << ": " << json;
    boost::json::value doc = parsed.ok() ? std::move(*parsed) : boost::json::value();
    return doc;
  }

  TempDir dir_ = TempDir::Make("granary_push_").ValueOrDie();
  ManualClock clock_{kNow};
  std::shared_ptr<Definitions> defs_;
  std::unique_ptr<RocksDbOnlineStore> store_;
  std::unique_ptr<OnlineFeaturesService> service_;
  std::unique_ptr<OfflineEngine> engine_;
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
  const auto& results = doc.at("results");
  EXPECT_EQ(results.at(1).at("values").at(0).to_number<double>(), 0.25);
  EXPECT_STREQ(results.at(1).at("statuses").at(1).as_string().c_str(), "NULL_VALUE");
  EXPECT_STREQ(results.at(1).at("statuses").at(2).as_string().c_str(), "NOT_FOUND");
  EXPECT_STREQ(results.at(2).at("values").at(0).at(1).as_string().c_str(), "b");
  EXPECT_EQ(results.at(3).at("values").at(1).as_int64(), 4);
  EXPECT_STREQ(results.at(3).at("event_timestamps").at(1).as_string().c_str(),
               "2027-01-15T07:30:00Z");
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
  EXPECT_EQ(doc.at("results").at(1).at("values").at(0).to_number<double>(), 0.25);
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
  EXPECT_STREQ(doc.at("results").at(1).at("statuses").at(0).as_string().c_str(), "NOT_FOUND");

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
  EXPECT_STREQ(doc.at("results").at(1).at("statuses").at(0).as_string().c_str(), "NOT_FOUND");
}

// kNow is 08:00; the default tolerance is 5 minutes.
std::string OneRow(const std::string& to, const std::string& event, const std::string& created) {
  return R"({"push_source_name": "payments_push", "to": ")" + to + R"(",
    "df": {"customer_id": [7, 8], "event_timestamp": ["2027-01-15T07:00:00Z", ")" +
         event + R"("], "created": ["2027-01-15T07:00:00Z", ")" + created +
         R"("], "score": [1.5, 2.5], "failures": [1, 2], "labels": [null, null]}})";
}

TEST_F(PushTest, RowsBeyondTheClockSkewToleranceAreRefusedNamingTheRowAndWriteNothing) {
  for (const std::string to : {"online", "offline", "online_and_offline"}) {
    SCOPED_TRACE(to);
    auto result = PushJson(OneRow(to, "2036-01-01T00:00:00Z", "2027-01-15T07:00:00Z"));
    ASSERT_EQ(result.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(result.status().message().find(
                  "df.event_timestamp[1]: 2036-01-01T00:00:00Z is in the future (now is "
                  "2027-01-15T08:00:00Z; pushed times may be at most 5m ahead"),
              std::string::npos)
        << result.status().message();
    // The created time is checked too.
    result = PushJson(OneRow(to, "2027-01-15T07:00:00Z", "2027-01-15T08:05:01Z"));
    ASSERT_EQ(result.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(
        result.status().message().find("df.created[1]: 2027-01-15T08:05:01Z is in the future"),
        std::string::npos)
        << result.status().message();
  }
  EXPECT_TRUE(ListDataFiles(dir_.path() / "data/payments", ".parquet").ValueOrDie().empty());
  auto doc = Online(R"("risk:score")", "7, 8");
  EXPECT_STREQ(doc.at("results").at(1).at("statuses").at(0).as_string().c_str(), "NOT_FOUND");
  EXPECT_STREQ(doc.at("results").at(1).at("statuses").at(1).as_string().c_str(), "NOT_FOUND");

  // Up to the tolerance (inclusive) is a skewed clock, not a mistake.
  auto ok = PushJson(OneRow("online", "2027-01-15T08:05:00Z", "2027-01-15T08:05:00Z"));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->online.written, 4);
  // The tolerance is the caller's: none at all, or a wider one.
  context_.max_clock_skew = Duration::Seconds(0);
  auto strict = PushJson(OneRow("online", "2027-01-15T08:00:01Z", "2027-01-15T07:00:00Z"));
  EXPECT_EQ(strict.status().code(), StatusCode::kInvalidArgument);
  context_.max_clock_skew = Duration::Days(1);
  auto wide = PushJson(OneRow("online", "2027-01-16T07:00:00Z", "2027-01-15T07:00:00Z"));
  EXPECT_TRUE(wide.ok()) << wide.status().ToString();
  // Arrow tables from the SDK take the same path.
  context_.max_clock_skew = kDefaultPushMaxClockSkew;
  auto table =
      ParsePushRequest(OneRow("online", "2036-01-01T00:00:00Z", "2027-01-15T07:00:00Z"), *defs_)
          .ValueOrDie();
  auto arrow_push = Push(context_, "payments_push", *table.rows, PushTarget::kOnline);
  EXPECT_EQ(arrow_push.status().code(), StatusCode::kInvalidArgument);
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

TEST_F(PushTest, OnlineAndOfflinePushToASourceTheEngineCannotAppendToWritesNothing) {
  // The batch source as a catalog table: the embedded engine cannot append to it.
  Definitions defs = *defs_;
  for (DataSource& source : defs.data_sources) {
    if (source.name == "payments") {
      source.path.clear();
      source.table = "main.parking.payments";
    }
  }
  PushContext context = context_;
  context.definitions = &defs;
  auto request =
      ParsePushRequest(std::string(kTwoRows).replace(std::string(kTwoRows).find("\"online\""), 8,
                                                     "\"online_and_offline\""),
                       defs);
  ASSERT_TRUE(request.ok()) << request.status().ToString();
  auto result = Push(context, request->push_source_name, *request->rows, request->to);
  ASSERT_EQ(result.status().code(), StatusCode::kNotImplemented) << result.status().ToString();
  EXPECT_NE(result.status().message().find("offline_store: {type: spark"), std::string::npos)
      << result.status().message();
  auto doc = Online(R"("risk:score")", "1001");
  EXPECT_STREQ(doc.at("results").at(1).at("statuses").at(0).as_string().c_str(), "NOT_FOUND");
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
            "the request is not valid JSON: line 1, column 65: the text ends too early");
  EXPECT_EQ(ParseError(R"([1])").substr(0, 38), "the request must be a JSON object such");
  // Bytes that are not UTF-8 inside a string (found by the fuzzer: they made an invalid Arrow
  // string column of a column no view reads).
  EXPECT_EQ(
      ParseError("{\"push_source_name\": \"payments_push\", \"df\": {\"note\": [\"a\xff\"]}}"),
      "the request is not valid JSON: line 1, column 57: byte 0xff is not valid UTF-8");
  // A non-finite token glued to an exponent (found by the fuzzer: RapidJSON read past its buffer).
  EXPECT_EQ(ParseError(R"({"push_source_name": "payments_push", "df": {"score": [NaNe299]}})"),
            "the request is not valid JSON: line 1, column 56: not JSON: NaN, Infinity and "
            "-Infinity are read only as whole values");
  // RapidJSON 1.1 read past its buffer on "Infe2" and stored 0.0 as PRESENT.
  EXPECT_EQ(ParseError(R"({"push_source_name": "payments_push", "df": {"score": [Infe2]}})"),
            "the request is not valid JSON: line 1, column 56: not JSON: NaN, Infinity and "
            "-Infinity are read only as whole values");
  // 200,000 nested '[' overflowed its stack.
  EXPECT_EQ(ParseError(R"({"push_source_name": "payments_push", "df": {"score": )" +
                       std::string(200'000, '[')),
            "the request is not valid JSON: line 1, column 117: arrays and objects are nested "
            "more than 64 deep; Granary reads at most 64 levels");
  // A 137-byte number crashed its full-precision parser; it is a correctly rounded 0.0 (the
  // value is below the smallest double).
  std::string crash_number = "0.9995999999999";
  crash_number.append(137 - crash_number.size() - 6, '1');
  crash_number.append("5e-444");
  auto tiny = ParsePushRequest(
      R"({"push_source_name": "payments_push", "df": {"score": [)" + crash_number + "]}}", *defs_);
  ASSERT_TRUE(tiny.ok()) << tiny.status().ToString();
  EXPECT_EQ(std::static_pointer_cast<arrow::DoubleArray>(tiny->rows->column(0)->chunk(0))->Value(0),
            0.0);
  EXPECT_EQ(ParseError(R"({"push_source_name": "payments_push", "df": {"score": [1e999]}})"),
            "the request is not valid JSON: line 1, column 61: the number 1e999 is too large for "
            "a double");
  // A column given twice.
  EXPECT_EQ(
      ParseError(R"({"push_source_name": "payments_push", "df": {"score": [1], "score": [2]}})"),
      "the request is not valid JSON: line 1, column 72: the key \"score\" appears twice in "
      "the object that ends here");
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
  EXPECT_EQ(doc.at("results").at(1).at("values").at(0).to_number<double>(), 0.5);
  EXPECT_STREQ(doc.at("results").at(1).at("event_timestamps").at(0).as_string().c_str(),
               "2027-01-15T07:45:00Z");
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
