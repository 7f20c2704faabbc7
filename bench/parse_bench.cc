// Parsing on the foundation's hot paths, each beside a baseline in the same run:
//  - ISO 8601 timestamps (every CSV row, JSON request and CLI argument) against Arrow's own
//    ISO 8601 parser and glibc's strptime + timegm;
//  - loading and validating a definitions document (every apply, and every registry reload of a
//    server) against parsing the same text with yaml-cpp alone.
#include <arrow/util/value_parsing.h>
#include <benchmark/benchmark.h>
#include <yaml-cpp/yaml.h>

#include <ctime>
#include <string>
#include <vector>

#include "granary/common/time.h"
#include "granary/registry/loader.h"
#include "granary/registry/validator.h"
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

}  // namespace

BENCHMARK_MAIN();
