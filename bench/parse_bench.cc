// Parsing on the foundation's hot paths, each beside a baseline in the same run:
//  - ISO 8601 timestamps (every CSV row, JSON request and CLI argument) against Arrow's own
//    ISO 8601 parser and glibc's strptime + timegm;
//  - loading and validating a definitions document (every apply, and every registry reload of a
//    server) against parsing the same text with yaml-cpp alone;
//  - request JSON in the shapes bench/serve sends (get-online-features: 50 or 250 features of
//    25 views, 1 to 500 random customer ids, full_feature_names) and a 100-row push of floats:
//    Granary's ParseJson (Boost.JSON's basic_parser, numbers through from_chars, duplicate keys
//    checked) against Boost.JSON's own DOM parser (boost::json::parse: the other candidate, with
//    the same depth limit; doubles may be one ULP off in Boost 1.81), and the whole decode of a
//    get-online-features request (ParseOnlineFeaturesRequest) beside them.
#include <arrow/util/value_parsing.h>
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "granary/common/json.h"
#include "granary/common/time.h"
#include "granary/registry/loader.h"
#include "granary/registry/validator.h"
#include "granary/serving/online_features.h"
#include "granary/testing/registry_definitions.h"

namespace {

std::vector<std::string> Timestamps() {
  std::vector<std::string> out;
  for (int i = 0; i < 1024; ++i) {
    out.push_back("2026-" + std::to_string(1 + i % 12 + 100).substr(1) + "-" +
                  std::to_string(1 + i % 28 + 100).substr(1) + "T" +
                  std::to_string(i % 24 + 100).substr(1) + ":15:30");
  }
  return out;
}

void BM_Timestamp_Granary(benchmark::State& state) {
  auto inputs = Timestamps();
  int64_t sum = 0;
  for (auto _ : state) {
    for (const auto& s : inputs) sum += granary::ParseTimestamp(s).ValueOrDie().micros;
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations() * inputs.size());
}
BENCHMARK(BM_Timestamp_Granary);

void BM_Timestamp_ArrowBaseline(benchmark::State& state) {
  auto inputs = Timestamps();
  int64_t sum = 0;
  for (auto _ : state) {
    for (const auto& s : inputs) {
      int64_t v = 0;
      arrow::internal::ParseTimestampISO8601(s.data(), s.size(), arrow::TimeUnit::MICRO, &v);
      sum += v;
    }
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations() * inputs.size());
}
BENCHMARK(BM_Timestamp_ArrowBaseline);

void BM_Timestamp_StrptimeBaseline(benchmark::State& state) {
  auto inputs = Timestamps();
  int64_t sum = 0;
  for (auto _ : state) {
    for (const auto& s : inputs) {
      struct tm tm = {};
      strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
      sum += timegm(&tm);
    }
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations() * inputs.size());
}
BENCHMARK(BM_Timestamp_StrptimeBaseline);

void BM_Definitions_GranaryLoadAndValidate(benchmark::State& state) {
  const std::string text = granary::testing::kValidDefinitions;
  for (auto _ : state) {
    granary::Definitions defs;
    granary::Diagnostics diag;
    granary::LoadDefinitionsText("defs.yaml", text, &defs, &diag);
    granary::ValidateDefinitions(defs, nullptr, &diag);
    benchmark::DoNotOptimize(defs);
  }
}
BENCHMARK(BM_Definitions_GranaryLoadAndValidate);

void BM_Definitions_YamlCppParseBaseline(benchmark::State& state) {
  const std::string text = granary::testing::kValidDefinitions;
  for (auto _ : state) {
    YAML::Node doc = YAML::Load(text);
    benchmark::DoNotOptimize(doc);
  }
}
BENCHMARK(BM_Definitions_YamlCppParseBaseline);

// A get-online-features body as bench/serve's targets_file writes it.
std::string OnlineRequest(int batch, int features) {
  std::string body = "{\"features\": [";
  for (int f = 0; f < features; ++f) {
    body += (f ? ", " : "") + fmt::format("\"view_{:02}:f{:02}\"", f / 10, f % 10);
  }
  body += "], \"entities\": {\"customer_id\": [";
  std::mt19937_64 rng(7);
  for (int i = 0; i < batch; ++i) {
    body += (i ? ", " : "") + std::to_string(rng() % 1'000'000);
  }
  return body + "]}, \"full_feature_names\": true}";
}

// A /push body of 100 rows: ids, times, an int and a float column (numbers need from_chars).
std::string PushRequest() {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> rate(0, 1);
  std::string ids, times, failures, rates;
  for (int i = 0; i < 100; ++i) {
    const char* sep = i ? ", " : "";
    ids += sep + std::to_string(1000 + i);
    times += sep + std::string("\"2026-11-23T02:00:00Z\"");
    failures += sep + std::to_string(rng() % 50);
    rates += sep + fmt::format("{}", rate(rng));
  }
  return fmt::format(
      "{{\"push_source_name\": \"payments_push\", \"df\": {{\"customer_id\": [{}], "
      "\"event_timestamp\": [{}], \"failures\": [{}], \"rate\": [{}]}}, \"to\": \"online\"}}",
      ids, times, failures, rates);
}

std::string BenchBody(const benchmark::State& state) {
  return state.range(0) < 0
             ? PushRequest()
             : OnlineRequest(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
}

void JsonShapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"batch", "features"});
  for (int features : {50, 250}) {
    for (int batch : {1, 100, 500}) b->Args({batch, features});
  }
  b->Args({-1, 0});  // the push body
}

void BM_Json_GranaryParseJson(benchmark::State& state) {
  const std::string body = BenchBody(state);
  for (auto _ : state) {
    auto v = granary::ParseJson(body);
    if (!v.ok()) state.SkipWithError(v.status().ToString().c_str());
    benchmark::DoNotOptimize(v);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(body.size()));
}
BENCHMARK(BM_Json_GranaryParseJson)->Apply(JsonShapes);

void BM_Json_BoostDomBaseline(benchmark::State& state) {
  const std::string body = BenchBody(state);
  boost::json::parse_options options;
  options.max_depth = 64;
  for (auto _ : state) {
    boost::json::error_code ec;
    boost::json::value v = boost::json::parse(body, ec, {}, options);
    if (ec) state.SkipWithError(ec.message().c_str());
    benchmark::DoNotOptimize(v);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(body.size()));
}
BENCHMARK(BM_Json_BoostDomBaseline)->Apply(JsonShapes);

void BM_Json_GranaryDecodeOnlineRequest(benchmark::State& state) {
  const std::string body = BenchBody(state);
  for (auto _ : state) {
    auto request = granary::ParseOnlineFeaturesRequest(body);
    if (!request.ok()) state.SkipWithError(request.status().ToString().c_str());
    benchmark::DoNotOptimize(request);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(body.size()));
}
BENCHMARK(BM_Json_GranaryDecodeOnlineRequest)->Apply([](benchmark::internal::Benchmark* b) {
  b->ArgNames({"batch", "features"});
  for (int features : {50, 250}) {
    for (int batch : {1, 100, 500}) b->Args({batch, features});
  }
});

}  // namespace

BENCHMARK_MAIN();
