// The cost of applying Delta deletion vectors on the scan path: one Delta table of 2M rows
// (row groups of 64Ki rows) read through FeatureSourceScan without a vector (the baseline, same
// run) and with vectors deleting every 1000th row (array containers) and every 10th row (bitset
// containers); and decoding a vector of 200k rows. Run by scripts/bench.
#include <arrow/api.h>
#include <arrow/io/api.h>
#include <benchmark/benchmark.h>
#include <parquet/arrow/writer.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "granary/common/temp_dir.h"
#include "granary/offline/deletion_vector.h"
#include "granary/offline/source_scan.h"
#include "granary/registry/loader.h"

namespace granary {
namespace {

constexpr int64_t kRows = 2'000'000;

void Put(std::vector<uint8_t>* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back((v >> (8 * i)) & 0xFF);
}

// A portable RoaringBitmapArray of every `step`-th row below kRows: one bucket; array containers
// up to 4096 values, bitset containers above.
std::vector<uint8_t> EveryNth(int64_t step) {
  std::map<uint16_t, std::vector<uint16_t>> containers;
  for (int64_t r = 0; r < kRows; r += step) containers[r >> 16].push_back(r & 0xFFFF);
  std::vector<uint8_t> out;
  Put(&out, 1681511377, 4);
  Put(&out, 1, 8);
  Put(&out, 0, 4);
  Put(&out, 12346, 4);
  Put(&out, containers.size(), 4);
  for (const auto& [key, values] : containers) {
    Put(&out, key, 2);
    Put(&out, values.size() - 1, 2);
  }
  size_t offset = 8 + 8 * containers.size();
  for (const auto& [key, values] : containers) {
    Put(&out, offset, 4);
    offset += values.size() > 4096 ? 8192 : 2 * values.size();
  }
  for (const auto& [key, values] : containers) {
    if (values.size() > 4096) {
      std::vector<uint64_t> words(1024, 0);
      for (uint16_t v : values) words[v / 64] |= uint64_t{1} << (v % 64);
      for (uint64_t w : words) Put(&out, w, 8);
    } else {
      for (uint16_t v : values) Put(&out, v, 2);
    }
  }
  return out;
}

std::string Z85(std::vector<uint8_t> bytes) {
  static const char* kAlphabet =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  while (bytes.size() % 4 != 0) bytes.push_back(0);
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 4) {
    uint64_t v =
        (uint64_t{bytes[i]} << 24) | (bytes[i + 1] << 16) | (bytes[i + 2] << 8) | bytes[i + 3];
    char group[5];
    for (int k = 4; k >= 0; --k) {
      group[k] = kAlphabet[v % 85];
      v /= 85;
    }
    out.append(group, 5);
  }
  return out;
}

// The data file once, and one table folder per vector (0: none) that points at it.
class Tables {
 public:
  static Tables& Get() {
    static Tables tables;
    return tables;
  }
  std::filesystem::path root() const { return dir_.path(); }

 private:
  Tables() : dir_(TempDir::Make("granary-dv-bench-").ValueOrDie()) {
    arrow::Int64Builder ids;
    arrow::TimestampBuilder ts(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                               arrow::default_memory_pool());
    arrow::DoubleBuilder rate;
    for (int64_t i = 0; i < kRows; ++i) {
      (void)ids.Append(i % 50'000);
      (void)ts.Append(1'700'000'000'000'000 + i * 1'000'000);
      (void)rate.Append(static_cast<double>(i % 977) / 7);
    }
    auto table = arrow::Table::Make(
        arrow::schema(
            {arrow::field("driver_id", arrow::int64()),
             arrow::field("event_timestamp", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
             arrow::field("rate", arrow::float64())}),
        {ids.Finish().ValueOrDie(), ts.Finish().ValueOrDie(), rate.Finish().ValueOrDie()});
    for (int64_t step : {0, 1000, 10}) {
      const auto folder = dir_.path() / ("t" + std::to_string(step));
      std::filesystem::create_directories(folder / "_delta_log");
      auto out = arrow::io::FileOutputStream::Open((folder / "part-0.parquet").string());
      (void)parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), *out, 64 * 1024);
      (void)(*out)->Close();
      std::string dv;
      if (step > 0) {
        const auto bitmap = EveryNth(step);
        dv = R"(,"deletionVector":{"storageType":"i","pathOrInlineDv":")" + Z85(bitmap) +
             R"(","sizeInBytes":)" + std::to_string(bitmap.size()) + R"(,"cardinality":)" +
             std::to_string((kRows + step - 1) / step) + "}";
      }
      std::ofstream(folder / "_delta_log/00000000000000000000.json")
          << R"({"protocol":{"minReaderVersion":3,"minWriterVersion":7,)"
          << R"("readerFeatures":["deletionVectors"],"writerFeatures":["deletionVectors"]}})"
          << "\n"
          << R"({"metaData":{"id":"t","format":{"provider":"parquet","options":{}},)"
          << R"("schemaString":"{\"type\":\"struct\",\"fields\":[)"
          << R"({\"name\":\"driver_id\",\"type\":\"long\",\"nullable\":true,\"metadata\":{}},)"
          << R"({\"name\":\"event_timestamp\",\"type\":\"timestamp\",\"nullable\":true,)"
          << R"(\"metadata\":{}},{\"name\":\"rate\",\"type\":\"double\",\"nullable\":true,)"
          << R"(\"metadata\":{}}]}","partitionColumns":[],"configuration":{}}})"
          << "\n"
          << R"({"add":{"path":"part-0.parquet","partitionValues":{},"size":1,)"
          << R"("modificationTime":0,"dataChange":true)" << dv << "}}\n";
    }
  }
  TempDir dir_;
};

void ScanTable(benchmark::State& state, int64_t step) {
  const auto root = Tables::Get().root();
  Diagnostics diag;
  Definitions defs;
  LoadDefinitionsText("defs.yaml",
                      "entities:\n  - {name: driver, join_keys: [driver_id], value_type: int64}\n"
                      "data_sources:\n  - {name: src, path: t" +
                          std::to_string(step) +
                          ", type: delta, timestamp_field: event_timestamp}\n"
                          "feature_views:\n  - name: v\n    entities: [driver]\n    source: src\n"
                          "    ttl: 1d\n    schema:\n      - {name: rate, type: float64}\n",
                      &defs, &diag);
  if (diag.has_errors()) state.SkipWithError(diag.ToStatus().ToString().c_str());
  int64_t rows = 0;
  for (auto _ : state) {
    auto scan = FeatureSourceScan::Open(root, defs, defs.feature_views[0], {});
    if (!scan.ok()) {
      state.SkipWithError(scan.status().ToString().c_str());
      return;
    }
    rows = 0;
    while (true) {
      auto batch = (*scan)->Next();
      if (!batch.ok()) {
        state.SkipWithError(batch.status().ToString().c_str());
        return;
      }
      if (*batch == nullptr) break;
      rows += (*batch)->num_rows();
    }
  }
  state.counters["rows_returned"] = static_cast<double>(rows);
  state.SetItemsProcessed(state.iterations() * kRows);
}

void BM_DeltaScanNoDeletionVector(benchmark::State& state) { ScanTable(state, 0); }
void BM_DeltaScanEvery1000thRowDeleted(benchmark::State& state) { ScanTable(state, 1000); }
void BM_DeltaScanEvery10thRowDeleted(benchmark::State& state) { ScanTable(state, 10); }

void BM_DecodeDeletionVector200kRows(benchmark::State& state) {
  const auto bytes = EveryNth(10);
  for (auto _ : state) {
    auto dv = DeletionVector::Decode(bytes, "bench");
    benchmark::DoNotOptimize(dv);
  }
  state.SetItemsProcessed(state.iterations() * (kRows / 10));
}

BENCHMARK(BM_DeltaScanNoDeletionVector)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_DeltaScanEvery1000thRowDeleted)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_DeltaScanEvery10thRowDeleted)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_DecodeDeletionVector200kRows)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace granary

BENCHMARK_MAIN();
