#include "granary/serving/online_features.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "granary/serving/json_format.h"
#include "granary/testing/online_definitions.h"
#include "granary/testing/online_features_fixture.h"

namespace granary {
namespace {

using testing::kOnlineFeaturesDefinitions;
using testing::kT0;
using testing::MakeRows;
using testing::OnlineFeaturesTest;
using testing::Row;

TEST_F(OnlineFeaturesTest, AnswersInFeastsShapeWithEveryStatus) {
  std::string json = Get(R"({"features": ["risk:score", "risk:failures"],
                             "entities": {"customer_id": [1, 2, 3]}})");
  EXPECT_EQ(
      json,
      R"({"metadata":{"feature_names":["customer_id","score","failures"]},"results":[)"
      R"({"values":[1,2,3],"statuses":["PRESENT","PRESENT","PRESENT"],"event_timestamps":)"
      R"(["1970-01-01T00:00:00Z","1970-01-01T00:00:00Z","1970-01-01T00:00:00Z"]},)"
      R"({"values":[0.25,null,null],"statuses":["PRESENT","OUTSIDE_MAX_AGE","NOT_FOUND"],)"
      R"("event_timestamps":["2027-01-15T07:30:00Z","2027-01-15T06:00:00Z","1970-01-01T00:00:00Z"]},)"
      R"({"values":[null,null,null],"statuses":["NULL_VALUE","OUTSIDE_MAX_AGE","NOT_FOUND"],)"
      R"("event_timestamps":["2027-01-15T07:30:00Z","2027-01-15T06:00:00Z","1970-01-01T00:00:00Z"]}]})");
}

TEST_F(OnlineFeaturesTest, LeavesOutStatusesAndTimesOnlyWhenAsked) {
  // The compact form: each result is {"values": [...]}, the values as in Feast's shape (null for
  // anything not PRESENT); each array can also be left out alone. Asking for both is the
  // default's bytes.
  const std::string entities = R"("entities": {"customer_id": [1, 2, 3]})";
  const std::string features = R"("features": ["risk:score", "risk:failures"], )";
  EXPECT_EQ(Get("{" + features + entities +
                R"(, "include_statuses": false, "include_event_timestamps": false})"),
            R"({"metadata":{"feature_names":["customer_id","score","failures"]},"results":[)"
            R"({"values":[1,2,3]},{"values":[0.25,null,null]},{"values":[null,null,null]}]})");
  EXPECT_EQ(
      Get("{" + features + entities + R"(, "include_event_timestamps": false})"),
      R"({"metadata":{"feature_names":["customer_id","score","failures"]},"results":[)"
      R"({"values":[1,2,3],"statuses":["PRESENT","PRESENT","PRESENT"]},)"
      R"({"values":[0.25,null,null],"statuses":["PRESENT","OUTSIDE_MAX_AGE","NOT_FOUND"]},)"
      R"({"values":[null,null,null],"statuses":["NULL_VALUE","OUTSIDE_MAX_AGE","NOT_FOUND"]}]})");
  EXPECT_EQ(Get("{" + features + entities + R"(, "include_statuses": false})"),
            R"({"metadata":{"feature_names":["customer_id","score","failures"]},"results":[)"
            R"({"values":[1,2,3],"event_timestamps":)"
            R"(["1970-01-01T00:00:00Z","1970-01-01T00:00:00Z","1970-01-01T00:00:00Z"]},)"
            R"({"values":[0.25,null,null],"event_timestamps":)"
            R"(["2027-01-15T07:30:00Z","2027-01-15T06:00:00Z","1970-01-01T00:00:00Z"]},)"
            R"({"values":[null,null,null],"event_timestamps":)"
            R"(["2027-01-15T07:30:00Z","2027-01-15T06:00:00Z","1970-01-01T00:00:00Z"]}]})");
  EXPECT_EQ(Get("{" + features + entities +
                R"(, "include_statuses": true, "include_event_timestamps": true})"),
            Get("{" + features + entities + "}"));
  // With the views' metadata, and with a feature service.
  EXPECT_EQ(Get(R"({"feature_service": "risk_service", "entities": {"customer_id": [2],
                    "bay_id": ["b"]}, "include_feature_view_version_metadata": true,
                    "include_statuses": false, "include_event_timestamps": false})"),
            R"({"metadata":{"feature_names":["customer_id","bay_id","failures","occupancy",)"
            R"("score"],"feature_view_metadata":[{"name":"risk"},{"name":"bay_stats"}]},)"
            R"("results":[{"values":[2]},{"values":["b"]},{"values":[null]},{"values":[null]},)"
            R"({"values":[null]}]})");
}

TEST_F(OnlineFeaturesTest, TheFormsFieldsAreBooleansAndAPartialAnswerKeepsItsStatuses) {
  EXPECT_EQ(Error(R"({"features": ["risk:score"], "entities": {"customer_id": [1]},
                      "include_statuses": 0})"),
            "include_statuses: must be true or false, not a number");
  EXPECT_EQ(Error(R"({"features": ["risk:score"], "entities": {"customer_id": [1]},
                      "include_event_timestamps": "false"})"),
            "include_event_timestamps: must be true or false, not a string");
  EXPECT_EQ(Error(R"({"features": ["risk:score"], "entities": {"customer_id": [1]},
                      "include_status": false})"),
            "unknown request field 'include_status', did you mean 'include_statuses'?; the "
            "fields are features, feature_service, entities, full_feature_names, "
            "include_feature_view_version_metadata, partial, include_statuses and "
            "include_event_timestamps");
  // INVALID (a store node down) is only told from a missing value by its status.
  EXPECT_EQ(Error(R"({"features": ["risk:score"], "entities": {"customer_id": [1]},
                      "partial": true, "include_statuses": false})"),
            "partial: true needs the statuses (a value on a store node that is down is null with "
            "status INVALID, which only the statuses tell from a missing value); drop "
            "\"include_statuses\": false or \"partial\": true");
  // Without the event times a partial answer is fine: the statuses say what was not read.
  EXPECT_NE(Get(R"({"features": ["risk:score"], "entities": {"customer_id": [1]},
                    "partial": true, "include_event_timestamps": false})")
                .find(R"("statuses":["PRESENT"]})"),
            std::string::npos);
}

TEST_F(OnlineFeaturesTest, ListsTheViewsReadWhenAskedForTheirMetadataAsFeastDoes) {
  // Feast's SDK always sends include_feature_view_version_metadata; views in order of first use.
  std::string json = Get(R"({"features": ["bay_stats:occupancy", "risk:score", "risk:failures"],
                             "entities": {"customer_id": [1], "bay_id": ["b"]},
                             "include_feature_view_version_metadata": true})");
  EXPECT_EQ(json.substr(0, json.find("\"results\"")),
            R"({"metadata":{"feature_names":["customer_id","bay_id","occupancy","score",)"
            R"("failures"],"feature_view_metadata":[{"name":"bay_stats"},{"name":"risk"}]},)");
  json = Get(R"({"features": ["risk:score"], "entities": {"customer_id": [1]},
                 "include_feature_view_version_metadata": false})");
  EXPECT_EQ(json.find("feature_view_metadata"), std::string::npos) << json;
}

TEST_F(OnlineFeaturesTest, KeysAreTheSameFromJsonNumbersAndCommandLineText) {
  OnlineFeaturesRequest request;
  request.features = {"risk:score"};
  request.entities.push_back({"customer_id", {Value("1")}, /*from_text=*/true});
  std::string from_text;
  ASSERT_TRUE(service_->GetOnlineFeatures(request, &from_text).ok());
  EXPECT_EQ(from_text, Get(R"({"features": ["risk:score"], "entities": {"customer_id": [1]}})"));
  EXPECT_NE(from_text.find("0.25"), std::string::npos);
}

TEST_F(OnlineFeaturesTest, AFeatureServiceListsItsFeaturesInOrderAcrossEntities) {
  auto bays = layouts_.at("bay_stats");
  ASSERT_TRUE(
      store_->WriteBatch(*bays, *MakeRows(*bays, {Row{{Value("A1")}, kT0, {}, {Value(0.75)}}}))
          .ok());
  std::string json = Get(R"({"feature_service": "risk_service",
      "entities": {"customer_id": [1], "bay_id": ["A1"]}})");
  EXPECT_NE(json.find(R"("feature_names":["customer_id","bay_id","failures","occupancy","score"])"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find(R"({"values":[0.75],"statuses":["PRESENT"])"), std::string::npos) << json;
}

TEST_F(OnlineFeaturesTest, AsyncAnswersTheSameOnTheExecutor) {
  auto request = ParseOnlineFeaturesRequest(
      R"({"features": ["risk:score"], "entities": {"customer_id": [1, 2]}})");
  ASSERT_TRUE(request.ok());
  boost::asio::io_context io;
  std::optional<Result<std::string>> got;
  service_->AsyncGetOnlineFeatures(io.get_executor(), *request,
                                   [&](Result<std::string> r) { got.emplace(std::move(r)); });
  EXPECT_FALSE(got.has_value());
  io.run();
  ASSERT_TRUE(got.has_value() && got->ok());
  std::string sync;
  ASSERT_TRUE(service_->GetOnlineFeatures(*request, &sync).ok());
  EXPECT_EQ(**got, sync);

  // Errors arrive the same way.
  request->features = {"nope:x"};
  got.reset();
  service_->AsyncGetOnlineFeatures(io.get_executor(), *request,
                                   [&](Result<std::string> r) { got.emplace(std::move(r)); });
  io.restart();
  io.run();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->status().code(), StatusCode::kInvalidArgument);
}

TEST_F(OnlineFeaturesTest, BadJsonAndBadShapesSayWhere) {
  EXPECT_NE(Error("{\"features\": [\"risk:score\"]\n \"entities\": {}}")
                .find("not valid JSON: line 2, column 2: unexpected '\"'"),
            std::string::npos)
      << Error("{\"features\": [\"risk:score\"]\n \"entities\": {}}");
  EXPECT_NE(Error("[1]").find("must be a JSON object"), std::string::npos);
  // What RapidJSON 1.1 crashed on: a 137-byte number (SIGSEGV), an infinity glued to an exponent
  // (over-read), 200,000 nested '[' (stack overflow); and NaN, which is not JSON.
  std::string crash_number = "0.9995999999999";
  crash_number.append(137 - crash_number.size() - 6, '1');
  crash_number.append("5e-444");
  EXPECT_EQ(Error(crash_number),
            "the request must be a JSON object such as {\"features\": [\"view:feature\"], "
            "\"entities\": {\"customer_id\": [1001]}}");
  EXPECT_EQ(
      Error(R"({"features": ["risk:score"], "entities": {"customer_id": [)" + crash_number + "]}}"),
      "entities.customer_id[0]: 0 is not an int64 (join key 'customer_id' is int64)");
  EXPECT_EQ(Error(R"({"features": ["risk:score"], "entities": {"customer_id": [Infe2]}})"),
            "the request is not valid JSON: line 1, column 59: NaN and Infinity are not JSON; "
            "send null or a finite number");
  EXPECT_EQ(Error(R"({"features": ["risk:score"], "entities": {"customer_id": [NaN]}})"),
            "the request is not valid JSON: line 1, column 59: NaN and Infinity are not JSON; "
            "send null or a finite number");
  EXPECT_EQ(Error(std::string(200'000, '[')),
            "the request is not valid JSON: line 1, column 65: arrays and objects are nested "
            "more than 64 deep; Granary reads at most 64 levels");
  EXPECT_EQ(Error(R"({"features": ["risk:score"], "features": []})"),
            "the request is not valid JSON: line 1, column 44: the key \"features\" appears twice "
            "in the object that ends here");
  EXPECT_NE(Error(R"({"features": "risk:score"})").find("features: must be a list"),
            std::string::npos);
  EXPECT_NE(Error(R"({"features": ["risk:score", 3]})").find("features[1]: must be"),
            std::string::npos);
  EXPECT_NE(Error(R"({"features": [], "entities": {"customer_id": 1}})")
                .find("entities.customer_id: must be a list of values, not a number"),
            std::string::npos);
  EXPECT_NE(Error(R"({"features": [], "entities": {"customer_id": [[1]]}})")
                .find("entities.customer_id[0]: must be a number, string or boolean, not an array"),
            std::string::npos);
  EXPECT_NE(Error(R"({"feature": ["risk:score"]})")
                .find("unknown request field 'feature', did you mean 'features'?"),
            std::string::npos)
      << Error(R"({"feature": ["risk:score"]})");
  EXPECT_NE(Error(R"({"features": [], "entities": {"customer_id": [18446744073709551615]}})")
                .find("too large for an int64"),
            std::string::npos);
}

TEST_F(OnlineFeaturesTest, InvalidRequestsNameWhatAndWhereAndHowToFix) {
  auto expect = [&](std::string_view request, std::string_view message) {
    std::string error = Error(request);
    EXPECT_NE(error.find(message), std::string::npos)
        << "request: " << request << "\nerror: " << error;
  };
  const std::string ok_entities = R"("entities": {"customer_id": [1]})";
  expect(R"({"entities": {"customer_id": [1]}})", "the request names no features");
  expect(R"({"features": ["risk:score"]})", "the request has no entities");
  expect(R"({"features": ["risk:score"], "feature_service": "risk_service", )" + ok_entities + "}",
         "both features and a feature service");
  expect(R"({"features": ["rsk:score"], )" + ok_entities + "}",
         "unknown feature view 'rsk' in 'rsk:score', did you mean 'risk'?");
  expect(R"({"features": ["risk:scor"], )" + ok_entities + "}",
         "feature view 'risk' has no feature 'scor', did you mean 'score'?");
  expect(R"({"features": ["offline_only:x"], )" + ok_entities + "}",
         "feature view 'offline_only' is not online (online: false)");
  expect(R"({"features": ["riskscore"], )" + ok_entities + "}", "write it as view:feature");
  expect(R"({"feature_service": "risk_servce", )" + ok_entities + "}",
         "unknown feature service 'risk_servce', did you mean 'risk_service'?");
  expect(R"({"features": ["bay_stats:occupancy"], )" + ok_entities + "}",
         "feature view 'bay_stats' is keyed by 'bay_id', which the request does not give; add "
         "\"bay_id\": [...] to entities");
  expect(R"({"features": ["risk:score"], "entities": {"customer": [1]}})",
         "entities: 'customer' is not a join key of any entity");
  expect(R"({"features": ["risk:score"], "entities": {"customer_id": ["1"]}})",
         "entities.customer_id[0]: the string \"1\" is not an int64; write the number without "
         "quotes (join key 'customer_id' is int64)");
  expect(R"({"features": ["risk:score"], "entities": {"customer_id": [1.5]}})",
         "entities.customer_id[0]: 1.5 is not an int64");
  expect(R"({"features": ["risk:score"], "entities": {"customer_id": [null]}})",
         "must not be null");
  expect(R"({"features": ["risk:score", "bay_stats:occupancy"],
             "entities": {"customer_id": [1, 2], "bay_id": ["A"]}})",
         "entities: 'bay_id' has 1 values but 'customer_id' has 2");
  expect(R"({"features": ["risk:score"], "entities": {"customer_id": []}})",
         "'customer_id' has no values");
  expect(R"({"features": ["risk:score", "risk:score"], )" + ok_entities + "}",
         "feature 'risk:score' is requested twice");
  expect(R"({"features": ["trip_stats:minutes"], "entities": {"driver_id": [3000000000],
             "rider_id": ["r"]}})",
         "3000000000 is not an int32: it is out of the int32 range");
}

TEST_F(OnlineFeaturesTest, ARepeatedFeatureListIsAnsweredAsTheFirstTime) {
  // Feature lists are remembered per thread (ResolveFeatures): every request below is resolved
  // on this thread, after others that look alike.
  const std::string short_names = R"({"features": ["risk:score", "risk:failures"],
                                      "entities": {"customer_id": [1, 2]}})";
  const std::string first = Get(short_names);
  EXPECT_NE(first.find(R"("feature_names":["customer_id","score","failures"])"), std::string::npos)
      << first;
  EXPECT_EQ(Get(short_names), first);
  const std::string full = Get(R"({"features": ["risk:score", "risk:failures"],
                                   "entities": {"customer_id": [1, 2]},
                                   "full_feature_names": true})");
  EXPECT_NE(full.find(R"("feature_names":["customer_id","risk__score","risk__failures"])"),
            std::string::npos)
      << full;
  const std::string reordered = Get(R"({"features": ["risk:failures", "risk:score"],
                                        "entities": {"customer_id": [1, 2]}})");
  EXPECT_NE(reordered.find(R"("feature_names":["customer_id","failures","score"])"),
            std::string::npos)
      << reordered;
  EXPECT_EQ(Get(short_names), first);

  // Errors are not remembered, and a list that would read the same if its names were run
  // together is another list.
  const std::string unknown = R"({"features": ["risk:scorerisk:failures"],
                                  "entities": {"customer_id": [1]}})";
  EXPECT_NE(Error(unknown).find("scorerisk:failures"), std::string::npos) << Error(unknown);
  EXPECT_NE(Error(unknown).find("scorerisk:failures"), std::string::npos) << Error(unknown);
  // The entity columns' names take part: here one is also a feature's output name.
  EXPECT_NE(Error(R"({"features": ["risk:score", "risk:failures"],
                      "entities": {"customer_id": [1], "score": [1]}})")
                .find("has the name of the entity column 'score'"),
            std::string::npos);

  // Another service (a new registry snapshot) on the same thread resolves against its own
  // definitions, not what this thread remembered for the first one.
  Definitions renamed = testing::OnlineDefinitions(kOnlineFeaturesDefinitions);
  for (FeatureView& v : renamed.feature_views) {
    if (v.name == "risk") v.schema[0].name = "risk_score";
  }
  auto service = OnlineFeaturesService::Make(std::make_shared<Definitions>(renamed), store_.get(),
                                             Duration::Days(90))
                     .ValueOrDie();
  auto request = ParseOnlineFeaturesRequest(short_names);
  ASSERT_TRUE(request.ok());
  auto resolved = service->Resolve(*request);
  ASSERT_FALSE(resolved.ok());
  EXPECT_NE(resolved.status().message().find("has no feature 'score'"), std::string::npos)
      << resolved.status().ToString();
  EXPECT_EQ(Get(short_names), first);
}

TEST_F(OnlineFeaturesTest, SameFeatureNameInTwoViewsNeedsFullNames) {
  Definitions defs = testing::OnlineDefinitions(kOnlineFeaturesDefinitions);
  defs.feature_views[2].schema[0].name = "score";  // bay_stats.score
  auto store_defs = std::make_shared<Definitions>(defs);
  auto service =
      OnlineFeaturesService::Make(store_defs, store_.get(), Duration::Days(90)).ValueOrDie();
  auto request = ParseOnlineFeaturesRequest(
      R"({"features": ["risk:score", "bay_stats:score"],
          "entities": {"customer_id": [1], "bay_id": ["A"]}})");
  auto resolved = service->Resolve(*request);
  ASSERT_FALSE(resolved.ok());
  EXPECT_NE(resolved.status().message().find(
                "features 'risk:score' and 'bay_stats:score' would both be named 'score'; set "
                "full_feature_names to true"),
            std::string::npos)
      << resolved.status().ToString();
  request->full_feature_names = true;
  EXPECT_TRUE(service->Resolve(*request).ok());
}

}  // namespace
}  // namespace granary
