#include "granary/serving/online_features.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "granary/common/json.h"
#include "granary/common/temp_dir.h"
#include "granary/online/rocksdb/rocksdb_store.h"
#include "granary/serving/json_format.h"
#include "granary/testing/online_definitions.h"
#include "granary/testing/test_seed.h"

namespace granary {
namespace {

using testing::MakeRows;
using testing::Row;

const Timestamp kT0 = Timestamp::FromSeconds(1'800'000'000);  // 2027-01-15T08:00:00Z

const std::string kDefinitions = std::string(testing::kOnlineDefinitions) + R"yaml(
feature_services:
  - name: risk_service
    features:
      - {view: risk, features: [failures]}
      - bay_stats
      - "risk:score"
)yaml";

class OnlineFeaturesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto defs = std::make_shared<Definitions>(testing::OnlineDefinitions(kDefinitions));
    layouts_ = MakeViewLayouts(*defs, Duration::Days(90)).ValueOrDie();
    RocksDbOnlineStore::Options options;
    options.clock = &clock_;
    store_ = RocksDbOnlineStore::Open(dir_.path() / "online", options).ValueOrDie();
    service_ = OnlineFeaturesService::Make(defs, store_.get(), Duration::Days(90)).ValueOrDie();
    auto risk = layouts_.at("risk");
    ASSERT_TRUE(store_
                    ->WriteBatch(*risk, *MakeRows(*risk,
                                                  {
                                                      Row{{Value(int64_t{1})},
                                                          kT0 - Duration::Minutes(30),
                                                          {},
                                                          {Value(0.25), Value::Null()}},
                                                      Row{{Value(int64_t{2})},
                                                          kT0 - Duration::Hours(2),
                                                          {},
                                                          {Value(0.5), Value(int64_t{4})}},
                                                  }))
                    .ok());
  }

  std::string Get(std::string_view request_json) {
    auto request = ParseOnlineFeaturesRequest(request_json);
    EXPECT_TRUE(request.ok()) << request.status().ToString();
    std::string json;
    Status st = service_->GetOnlineFeatures(*request, &json);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return json;
  }
  std::string Error(std::string_view request_json) {
    auto request = ParseOnlineFeaturesRequest(request_json);
    if (!request.ok()) return request.status().message();
    auto resolved = service_->Resolve(*request);
    EXPECT_FALSE(resolved.ok()) << "no error for " << request_json;
    EXPECT_EQ(resolved.status().code(), StatusCode::kInvalidArgument);
    return resolved.status().message();
  }

  TempDir dir_ = TempDir::Make("granary_serving_").ValueOrDie();
  ManualClock clock_{kT0};
  ViewLayouts layouts_;
  std::unique_ptr<RocksDbOnlineStore> store_;
  std::unique_ptr<OnlineFeaturesService> service_;
};

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

TEST_F(OnlineFeaturesTest, EveryValueTypeIsWrittenAsFeastDoesWithFullNames) {
  auto every = layouts_.at("every_type");
  ASSERT_TRUE(
      store_
          ->WriteBatch(
              *every,
              *MakeRows(*every, {Row{{Value(int64_t{5})}, kT0, {}, testing::EveryTypeValues(5)}}))
          .ok());
  std::string json = Get(R"({"features": ["every_type:f_bool", "every_type:f_int32",
      "every_type:f_int64", "every_type:f_float32", "every_type:f_float64", "every_type:f_string",
      "every_type:f_bytes", "every_type:f_timestamp", "every_type:l_float32",
      "every_type:l_bytes", "every_type:l_timestamp", "every_type:l_int64"],
      "entities": {"customer_id": [5]}, "full_feature_names": true})");
  JsonParseOptions options;  // responses write NaN as Python does
  options.allow_non_finite = true;
  auto parsed = ParseJson(json, options);
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString() << ": " << json;
  boost::json::value doc = parsed.ok() ? std::move(*parsed) : boost::json::value();
  const auto& names = doc.at("metadata").at("feature_names");
  EXPECT_STREQ(names.at(1).as_string().c_str(), "every_type__f_bool");
  auto value = [&](int column) -> const boost::json::value& {
    return doc.at("results").at(column).at("values").at(0);
  };
  EXPECT_EQ(value(1).as_bool(), false);
  EXPECT_EQ(value(2).to_number<int>(), -12);
  EXPECT_EQ(value(3).as_int64(), (int64_t{1} << 40) | 5);
  EXPECT_EQ(value(4).to_number<double>(), 6.5);
  EXPECT_EQ(value(5).to_number<double>(), 5.1);
  EXPECT_STREQ(value(6).as_string().c_str(), "caf\xc3\xa9 #5");
  EXPECT_STREQ(value(7).as_string().c_str(), "AP8QNQ==");  // base64 of 00 ff 10 '5'
  EXPECT_STREQ(value(8).as_string().c_str(), "2023-11-14T22:13:20.123461Z");
  EXPECT_NE(json.find("[0.25,-1e+30,6.5]"), std::string::npos) << json;  // float32, shortest
  EXPECT_NE(json.find(R"(["AA==","eno="])"), std::string::npos);
  EXPECT_NE(json.find(R"(["1969-12-31T23:59:59.999995Z","1970-01-01T00:00:05Z"])"),
            std::string::npos);
  EXPECT_NE(json.find(R"("values":[[]])"), std::string::npos);  // an empty list is not null
  EXPECT_STREQ(doc.at("results").at(1).at("statuses").at(0).as_string().c_str(), "PRESENT");
}

TEST_F(OnlineFeaturesTest, ALargeAnswerSplitAcrossThreadsHasTheSameBytes) {
  // 300 customers x 18 features and 300 bays x 1: above kSplitAnswerValues, so the read and the
  // JSON are split; rows missing, null, outside the ttl and values of every type in every part.
  constexpr int kRows = 300;
  auto every = layouts_.at("every_type");
  auto bays = layouts_.at("bay_stats");
  std::vector<Row> every_rows, bay_rows;
  std::string customers, bay_ids;
  for (int i = 0; i < kRows; ++i) {
    if (i % 3 != 0) {
      every_rows.push_back({{Value(int64_t{i})},
                            kT0 - Duration::Seconds(i),
                            {},
                            testing::EveryTypeValues(i, i % 7 == 1)});
    }
    if (i % 5 != 2) {
      bay_rows.push_back({{Value(fmt::format("bay-{}", i))}, kT0, {}, {Value(i / 8.0)}});
    }
    customers += fmt::format("{}{}", i ? "," : "", i);
    bay_ids += fmt::format("{}\"bay-{}\"", i ? "," : "", i);
  }
  ASSERT_TRUE(store_->WriteBatch(*every, *MakeRows(*every, every_rows)).ok());
  ASSERT_TRUE(store_->WriteBatch(*bays, *MakeRows(*bays, bay_rows)).ok());
  std::string features;
  for (const auto& f : every->features()) features += fmt::format("\"every_type:{}\",", f.name);
  const std::string body = fmt::format(
      R"({{"features": [{}"risk:score", "bay_stats:occupancy", "risk:failures"],
           "entities": {{"customer_id": [{}], "bay_id": [{}]}}, "full_feature_names": true,
           "include_feature_view_version_metadata": true}})",
      features, customers, bay_ids);
  const std::string one_thread = Get(body);
  ASSERT_GT(one_thread.size(), 100'000u);

  auto request = ParseOnlineFeaturesRequest(body).ValueOrDie();
  auto resolved = service_->Resolve(request).ValueOrDie();
  ASSERT_GE(resolved.num_rows * resolved.columns.size(), OnlineFeaturesService::kSplitAnswerValues);
  for (int helpers : {1, 3}) {
    ForkJoinPool pool(helpers);
    OnlineReadRequest read = resolved.read;
    read.split = &pool;
    auto got = store_->Read(read);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    std::string json;
    OnlineFeaturesService::WriteResponse(resolved, *got, &json, &pool);
    EXPECT_EQ(pool.jobs_offered(), 2u) << "the read and the answer were not both split";
    ASSERT_EQ(json.size(), one_thread.size()) << helpers << " helpers";
    EXPECT_TRUE(json == one_thread) << helpers << " helpers: the split answer differs";
  }

  // A small answer is written on the caller alone, to the same bytes.
  request = ParseOnlineFeaturesRequest(
                R"({"features": ["risk:score"], "entities": {"customer_id": [1, 2]}})")
                .ValueOrDie();
  resolved = service_->Resolve(request).ValueOrDie();
  ForkJoinPool pool(1);
  std::string json;
  OnlineFeaturesService::WriteResponse(resolved, store_->Read(resolved.read).ValueOrDie(), &json,
                                       &pool);
  EXPECT_EQ(pool.jobs_offered(), 0u);
  EXPECT_EQ(json, Get(R"({"features": ["risk:score"], "entities": {"customer_id": [1, 2]}})"));
}

// A simple reference encoding of Feast's response, written from the values generated (not from
// the read), to compare the writer with byte for byte.
namespace reference {

void Escaped(std::string_view s, std::string* out) {
  *out += '"';
  for (unsigned char c : s) {
    if (c == '"') {
      *out += "\\\"";
    } else if (c == '\\') {
      *out += "\\\\";
    } else if (c == '\n') {
      *out += "\\n";
    } else if (c == '\r') {
      *out += "\\r";
    } else if (c == '\t') {
      *out += "\\t";
    } else if (c < 0x20) {
      *out += fmt::format("\\u{:04x}", c);
    } else {
      *out += static_cast<char>(c);
    }
  }
  *out += '"';
}

template <typename F>
void Float(F v, std::string* out) {
  if (std::isnan(v)) {
    *out += "NaN";
  } else if (std::isinf(v)) {
    *out += v > 0 ? "Infinity" : "-Infinity";
  } else {
    char buf[64];
    std::string text(buf, std::to_chars(buf, buf + sizeof(buf), v).ptr);
    if (text.find_first_of(".e") == std::string::npos) text += ".0";
    *out += text;
  }
}

void Time(Timestamp ts, std::string* out) {
  char buf[serving::kRfc3339Max];
  *out += '"';
  out->append(buf, serving::FormatRfc3339Millis(ts, buf));
  *out += '"';
}

void Element(const Value& holder, const auto& x, std::string* out) {
  using X = std::decay_t<decltype(x)>;
  if constexpr (std::is_same_v<X, bool>) {
    *out += x ? "true" : "false";
  } else if constexpr (std::is_same_v<X, int32_t> || std::is_same_v<X, int64_t>) {
    *out += std::to_string(x);
  } else if constexpr (std::is_same_v<X, float> || std::is_same_v<X, double>) {
    Float(x, out);
  } else if constexpr (std::is_same_v<X, std::string>) {
    Escaped(x, out);
  } else if constexpr (std::is_same_v<X, Bytes>) {
    *out += '"';
    serving::AppendBase64(x.data, out);
    *out += '"';
  } else if constexpr (std::is_same_v<X, Timestamp>) {
    char buf[serving::kRfc3339Max];  // values keep all six digits of the fraction
    *out += '"';
    out->append(buf, serving::FormatRfc3339(x, buf));
    *out += '"';
  }
}

void Write(const Value& v, std::string* out) {
  std::visit(
      [&](const auto& x) {
        using X = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<X, std::monostate>) {
          *out += "null";
        } else if constexpr (std::is_same_v<X, std::vector<bool>>) {
          *out += '[';
          for (size_t i = 0; i < x.size(); ++i)
            *out += std::string(i ? "," : "") + (x[i] ? "true" : "false");
          *out += ']';
        } else if constexpr (requires { x.begin(); } && !std::is_same_v<X, std::string>) {
          *out += '[';
          bool first = true;
          for (const auto& e : x) {
            if (!first) *out += ',';
            first = false;
            Element(v, e, out);
          }
          *out += ']';
        } else {
          Element(v, x, out);
        }
      },
      v.storage());
}

}  // namespace reference

// A random value of `type` (never null): floats from random bits (NaN, infinities, subnormals)
// or as features hold them, strings with every character JSON must escape and UTF-8, any bytes.
Value RandomValue(ValueType type, std::mt19937_64& rng) {
  auto text = [&] {
    static constexpr std::string_view kPieces[] = {
        "a",           "Z",    " ",    "\"",   "\\",          "\n", "\r",
        "\t",          "\x01", "\x1f", "\x7f", "caf\xc3\xa9", "/",  std::string_view("\0", 1),
        "\xe2\x82\xac"};
    std::string s;
    for (size_t n = rng() % 12; n > 0; --n) s += kPieces[rng() % std::size(kPieces)];
    return s;
  };
  auto f64 = [&] {
    if (rng() % 2 == 0)
      return static_cast<double>(static_cast<int64_t>(rng() % 2'000'000) - 1'000'000) / 7.0;
    uint64_t bits = rng();
    double d;
    std::memcpy(&d, &bits, sizeof(d));
    return d;
  };
  auto f32 = [&] {
    if (rng() % 2 == 0) return static_cast<float>(rng() % 100'000) / 8.0f;
    uint32_t bits = static_cast<uint32_t>(rng());
    float f;
    std::memcpy(&f, &bits, sizeof(f));
    return f;
  };
  auto time = [&] {
    return Timestamp::FromMicros(static_cast<int64_t>(rng() % 8'000'000'000'000'000) -
                                 2'000'000'000'000'000);
  };
  auto bytes = [&] {
    std::string b;
    for (size_t n = rng() % 9; n > 0; --n) b += static_cast<char>(rng());
    return Bytes{b};
  };
  auto list = [&](auto make) {
    std::vector<decltype(make())> out;
    for (size_t n = rng() % 4; n > 0; --n) out.push_back(make());
    return out;
  };
  auto boolean = [&] { return rng() % 2 == 0; };
  auto i32 = [&] { return static_cast<int32_t>(rng()); };
  auto i64 = [&] {
    return rng() % 4 == 0 ? std::numeric_limits<int64_t>::min() : static_cast<int64_t>(rng());
  };
  switch (type.scalar) {
    case ScalarType::kBool:
      return type.is_list ? Value(list(boolean)) : Value(boolean());
    case ScalarType::kInt32:
      return type.is_list ? Value(list(i32)) : Value(i32());
    case ScalarType::kInt64:
      return type.is_list ? Value(list(i64)) : Value(i64());
    case ScalarType::kFloat32:
      return type.is_list ? Value(list(f32)) : Value(f32());
    case ScalarType::kFloat64:
      return type.is_list ? Value(list(f64)) : Value(f64());
    case ScalarType::kString:
      return type.is_list ? Value(list(text)) : Value(text());
    case ScalarType::kBytes:
      return type.is_list ? Value(list(bytes)) : Value(bytes());
    case ScalarType::kTimestamp:
      return type.is_list ? Value(list(time)) : Value(time());
  }
  return Value();
}

TEST_F(OnlineFeaturesTest, TheWriterMatchesASimpleReferenceOnRandomAnswers) {
  // Random answers of every_type (all 16 types) and risk (ttl 1h), every status: rows missing
  // (NOT_FOUND), not read (INVALID), older than the ttl (OUTSIDE_MAX_AGE), null features
  // (NULL_VALUE); written on one thread and split across two, compared with the reference.
  const uint64_t seed = testing::TestSeed();
  SCOPED_TRACE(testing::SeedTrace(seed));
  std::mt19937_64 rng(seed);
  std::string features;  // the two views interleaved
  for (const auto& f : layouts_.at("every_type")->features()) {
    features += fmt::format("\"every_type:{}\",", f.name);
    if (f.name == "f_string") features += "\"risk:score\",";
  }
  features += "\"risk:failures\"";
  for (int round = 0; round < 40; ++round) {
    const int rows =
        round % 4 == 0 ? 150 + static_cast<int>(rng() % 150) : 1 + static_cast<int>(rng() % 12);
    std::string ids;
    std::vector<int64_t> keys;
    for (int r = 0; r < rows; ++r) {
      keys.push_back(static_cast<int64_t>(rng() % 1000) - 500);
      ids += fmt::format("{}{}", r ? "," : "", keys.back());
    }
    // Each form in turn, four rounds each (one of them large): Feast's shape, without statuses,
    // without event times, compact (neither).
    const int form = (round / 4) % 4;
    const bool with_statuses = (form & 1) == 0, with_times = (form & 2) == 0;
    const auto request = ParseOnlineFeaturesRequest(fmt::format(
        R"({{"features": [{}], "entities": {{"customer_id": [{}]}}, "full_feature_names": true,
             "include_feature_view_version_metadata": {}, "include_statuses": {},
             "include_event_timestamps": {}}})",
        features, ids, round % 2 == 0 ? "true" : "false", with_statuses, with_times));
    ASSERT_TRUE(request.ok()) << request.status().ToString();
    auto resolved = service_->Resolve(*request);
    ASSERT_TRUE(resolved.ok()) << resolved.status().ToString();

    // What each (view, row) holds: its status, event time and values (in the view's read order).
    struct Cell {
      FeatureStatus status = FeatureStatus::kNotFound;
      Timestamp event = Timestamp::FromMicros(0);
      std::vector<Value> values;
    };
    const size_t num_views = resolved->read.views.size();
    std::vector<std::vector<Cell>> cells(num_views, std::vector<Cell>(rows));
    OnlineFeaturesBuilder builder(resolved->read);
    for (size_t v = 0; v < num_views; ++v) {
      const ViewRead& read = resolved->read.views[v];
      const bool has_ttl = read.view->name() == "risk";
      for (int r = 0; r < rows; ++r) {
        Cell& cell = cells[v][r];
        const int kind = static_cast<int>(rng() % 10);
        if (kind == 0) continue;  // NOT_FOUND
        if (kind == 1) {
          builder.SetUnavailable(v, r);
          cell.status = FeatureStatus::kInvalid;
          continue;
        }
        // Whole seconds, milliseconds or microseconds; within the ttl or 2h outside it.
        int64_t micros = kT0.micros - static_cast<int64_t>(rng() % 3'000'000'000);
        if (rng() % 3 == 0) micros -= micros % 1'000'000;
        if (rng() % 3 == 0) micros -= micros % 1'000;
        if (has_ttl && rng() % 3 == 0) micros -= 7'200'000'000;
        cell.event = Timestamp::FromMicros(micros);
        cell.status = has_ttl && micros < kT0.micros - 3'600'000'000 ? FeatureStatus::kOutsideMaxAge
                                                                     : FeatureStatus::kPresent;
        std::vector<Value> body_values;
        for (const auto& f : read.view->features()) {
          body_values.push_back(rng() % 5 == 0 ? Value::Null() : RandomValue(f.type, rng));
        }
        std::string body;
        ASSERT_TRUE(EncodeBody(*read.view, WriteOrder{micros}, body_values, &body).ok());
        const size_t offset = builder.arena()->size();
        *builder.arena() += body;
        builder.SetBody(v, r, offset, body.size());
        for (int f : read.features) cell.values.push_back(body_values[f]);
      }
    }
    auto read = builder.Finish(kT0);
    ASSERT_TRUE(read.ok()) << read.status().ToString();

    std::string expected = R"({"metadata":{"feature_names":["customer_id")";
    for (const auto& c : resolved->columns) {
      expected += ',';
      reference::Escaped(c.name, &expected);
    }
    expected += ']';
    if (round % 2 == 0) {
      expected += R"(,"feature_view_metadata":[)";
      for (size_t v = 0; v < num_views; ++v) {
        expected +=
            fmt::format(R"({}{{"name":"{}"}})", v ? "," : "", resolved->read.views[v].view->name());
      }
      expected += ']';
    }
    expected += R"(},"results":[{"values":[)";
    for (int r = 0; r < rows; ++r) expected += fmt::format("{}{}", r ? "," : "", keys[r]);
    expected += ']';
    if (with_statuses) {
      expected += R"(,"statuses":[)";
      for (int r = 0; r < rows; ++r) expected += std::string(r ? "," : "") + "\"PRESENT\"";
      expected += ']';
    }
    if (with_times) {
      expected += R"(,"event_timestamps":[)";
      for (int r = 0; r < rows; ++r) {
        expected += std::string(r ? "," : "") + "\"1970-01-01T00:00:00Z\"";
      }
      expected += ']';
    }
    expected += '}';
    for (const auto& c : resolved->columns) {
      std::string values, statuses, times;
      for (int r = 0; r < rows; ++r) {
        const Cell& cell = cells[c.view][r];
        const std::string sep = r ? "," : "";
        values += sep;
        statuses += sep;
        times += sep;
        FeatureStatus status = cell.status;
        if (status == FeatureStatus::kPresent && cell.values[c.feature].is_null()) {
          status = FeatureStatus::kNullValue;
        }
        reference::Write(status == FeatureStatus::kPresent ? cell.values[c.feature] : Value(),
                         &values);
        statuses += fmt::format("\"{}\"", FeatureStatusName(status));
        reference::Time(cell.event, &times);
      }
      expected += fmt::format(R"(,{{"values":[{}]{}{}}})", values,
                              with_statuses ? fmt::format(R"(,"statuses":[{}])", statuses) : "",
                              with_times ? fmt::format(R"(,"event_timestamps":[{}])", times) : "");
    }
    expected += "]}";

    std::string json;
    OnlineFeaturesService::WriteResponse(*resolved, *read, &json);
    ASSERT_EQ(json, expected) << "round " << round << ", form " << form;
    ForkJoinPool pool(1);
    std::string split;
    OnlineFeaturesService::WriteResponse(*resolved, *read, &split, &pool);
    ASSERT_EQ(split, expected) << "round " << round << ", split";
  }
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
  Definitions renamed = testing::OnlineDefinitions(kDefinitions);
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
  Definitions defs = testing::OnlineDefinitions(kDefinitions);
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
