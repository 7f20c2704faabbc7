// The gRPC answer written as bytes (WriteFeastResponse) against protobuf's own serialization of
// the message ToFeastProto fills: the same bytes for every value type, nulls, empty and long
// lists and strings, every status, join keys of several types, with and without view metadata;
// large answers written in parts on two threads give the same bytes.
#include "granary/serving/grpc/feast_wire.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <random>

#include "granary/serving/grpc/feast_proto.h"
#include "granary/testing/online_definitions.h"
#include "granary/testing/online_features_fixture.h"
#include "granary/testing/random_values.h"
#include "granary/testing/test_seed.h"

namespace granary::serving {
namespace {

using granary::testing::kT0;
using granary::testing::MakeRows;
using granary::testing::OnlineFeaturesTest;
using granary::testing::RandomValue;
using granary::testing::Row;

// Protobuf's bytes of the message, and ours; on a difference, where it starts.
void ExpectSameBytes(const ResolvedOnlineRequest& resolved, const OnlineFeatures& read) {
  feast::serving::GetOnlineFeaturesResponse message;
  ToFeastProto(resolved, read, &message);
  std::string expected;
  ASSERT_TRUE(message.SerializeToString(&expected));
  std::string got = "prefix";  // appends
  WriteFeastResponse(resolved, read, &got);
  ASSERT_EQ(got.substr(0, 6), "prefix");
  got.erase(0, 6);
  if (got != expected) {
    size_t at = 0;
    while (at < got.size() && at < expected.size() && got[at] == expected[at]) ++at;
    ADD_FAILURE() << "bytes differ at offset " << at << " of " << expected.size() << " (ours "
                  << got.size() << ")";
  }
  feast::serving::GetOnlineFeaturesResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(got));
  EXPECT_EQ(parsed.results_size(), message.results_size());
  // Split across a pool's threads (a large answer is written in parts, joined): the same bytes.
  static ForkJoinPool pool(1);
  std::string split;
  WriteFeastResponse(resolved, read, &split, &pool);
  EXPECT_TRUE(split == got) << "the split answer's bytes differ";
}

class FeastWireTest : public OnlineFeaturesTest {
 protected:
  // The request (JSON) resolved and read from the store, its answer's bytes compared.
  void ExpectSameBytesFor(const std::string& request_json) {
    auto request = ParseOnlineFeaturesRequest(request_json);
    ASSERT_TRUE(request.ok()) << request.status().ToString();
    auto resolved = service_->Resolve(*request);
    ASSERT_TRUE(resolved.ok()) << resolved.status().ToString();
    auto read = store_->Read(resolved->read);
    ASSERT_TRUE(read.ok()) << read.status().ToString();
    ExpectSameBytes(*resolved, *read);
  }
};

TEST_F(FeastWireTest, BytesAreProtobufsForEveryValueType) {
  auto every = layouts_.at("every_type");
  // Row 5: every type set (a 300-byte string in a list: a two-byte length); row 6: all null.
  ASSERT_TRUE(
      store_
          ->WriteBatch(
              *every,
              *MakeRows(*every,
                        {Row{{Value(int64_t{5})}, kT0, {}, testing::EveryTypeValues(5)},
                         Row{{Value(int64_t{6})}, kT0, {}, testing::EveryTypeValues(6, true)}}))
          .ok());
  std::string features;
  for (const auto& f : every->features()) {
    features += fmt::format("{}\"every_type:{}\"", features.empty() ? "" : ",", f.name);
  }
  for (const char* metadata : {"true", "false"}) {
    for (const char* full : {"true", "false"}) {
      ExpectSameBytesFor(fmt::format(
          R"({{"features": [{}], "entities": {{"customer_id": [5, 6, -9000000000]}},
               "full_feature_names": {}, "include_feature_view_version_metadata": {}}})",
          features, full, metadata));
    }
  }
}

TEST_F(FeastWireTest, BytesAreProtobufsForJoinKeysOfSeveralTypes) {
  auto trip = layouts_.at("trip_stats");
  ASSERT_TRUE(
      store_
          ->WriteBatch(
              *trip,
              *MakeRows(*trip,
                        {Row{{Value(int32_t{-3}), Value("r1")}, kT0, {}, {Value(int32_t{-40})}}}))
          .ok());
  ExpectSameBytesFor(R"({"features": ["trip_stats:minutes"],
                         "entities": {"driver_id": [-3, 7], "rider_id": ["r1", ""]}})");
}

TEST_F(FeastWireTest, BytesAreProtobufsOnRandomAnswers) {
  // Random answers of every_type (all 16 types) and risk (ttl 1h), every status: rows missing
  // (NOT_FOUND), not read (INVALID), older than the ttl (OUTSIDE_MAX_AGE), null features
  // (NULL_VALUE); event times before and after the epoch, whole seconds or not.
  const uint64_t seed = testing::TestSeed();
  SCOPED_TRACE(testing::SeedTrace(seed));
  std::mt19937_64 rng(seed);
  std::string features;
  for (const auto& f : layouts_.at("every_type")->features()) {
    features += fmt::format("\"every_type:{}\",", f.name);
  }
  features += "\"risk:score\",\"risk:failures\"";
  for (int round = 0; round < 30; ++round) {
    // Every fifth answer large enough to be split (18 columns x 150-250 rows: at least
    // kSplitAnswerValues values).
    const int rows =
        round % 5 == 0 ? 150 + static_cast<int>(rng() % 100) : 1 + static_cast<int>(rng() % 12);
    if (round % 5 == 0) {
      ASSERT_GE(static_cast<size_t>(rows) * 18, OnlineFeaturesService::kSplitAnswerValues);
    }
    std::string ids;
    for (int r = 0; r < rows; ++r) {
      ids += fmt::format("{}{}", r ? "," : "", static_cast<int64_t>(rng()));
    }
    auto request = ParseOnlineFeaturesRequest(fmt::format(
        R"({{"features": [{}], "entities": {{"customer_id": [{}]}}, "full_feature_names": true,
             "include_feature_view_version_metadata": {}}})",
        features, ids, round % 2 == 0 ? "true" : "false"));
    ASSERT_TRUE(request.ok()) << request.status().ToString();
    auto resolved = service_->Resolve(*request);
    ASSERT_TRUE(resolved.ok()) << resolved.status().ToString();
    OnlineFeaturesBuilder builder(resolved->read);
    for (size_t v = 0; v < resolved->read.views.size(); ++v) {
      const ViewRead& read = resolved->read.views[v];
      const bool has_ttl = read.view->name() == "risk";
      for (int r = 0; r < rows; ++r) {
        const int kind = static_cast<int>(rng() % 10);
        if (kind == 0) continue;  // NOT_FOUND
        if (kind == 1) {
          builder.SetUnavailable(v, r);
          continue;
        }
        int64_t micros =
            static_cast<int64_t>(rng() % 4'000'000'000'000'000) - 1'000'000'000'000'000;
        if (rng() % 3 == 0) micros -= micros % 1'000'000;
        if (has_ttl && rng() % 2 == 0)
          micros = kT0.micros - static_cast<int64_t>(rng() % 2'000'000'000);
        std::vector<Value> values;
        for (const auto& f : read.view->features()) {
          values.push_back(rng() % 5 == 0 ? Value::Null() : RandomValue(f.type, rng));
        }
        std::string body;
        ASSERT_TRUE(EncodeBody(*read.view, WriteOrder{micros}, values, &body).ok());
        const size_t offset = builder.arena()->size();
        *builder.arena() += body;
        builder.SetBody(v, r, offset, body.size());
      }
    }
    auto read = builder.Finish(kT0);
    ASSERT_TRUE(read.ok()) << read.status().ToString();
    ExpectSameBytes(*resolved, *read);
  }
}

}  // namespace
}  // namespace granary::serving
