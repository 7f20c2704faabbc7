// The answer writer (OnlineFeaturesService::WriteResponse, online_response.cc): every value type
// as Feast writes it, a large answer split across threads, and random answers against a simple
// reference encoding.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "granary/common/json.h"
#include "granary/serving/json_format.h"
#include "granary/serving/online_features.h"
#include "granary/testing/online_definitions.h"
#include "granary/testing/online_features_fixture.h"
#include "granary/testing/random_values.h"
#include "granary/testing/test_seed.h"

namespace granary {
namespace {

using testing::kT0;
using testing::MakeRows;
using testing::OnlineFeaturesTest;
using testing::RandomValue;
using testing::Row;

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

}  // namespace
}  // namespace granary
