// EntityPartitioner at the shape of the seed's window join (bay_occupancy_windows: an int64 key,
// a timestamp, a double and two int32s, 32.6 Arrow bytes a row), under the 64 MiB a partitioner
// gets at a 512 MiB budget: every row appended in 64K-row batches, then each partition read back
// and released, as WindowAggregationJoin does. Beside it, the floor: the same batches written once
// to one Arrow IPC file and read back (what spilling everything costs at the least).
//
//   build/bench/partitioner_bench --benchmark_filter=Partitioner
//
// Arguments: partitions (304: the share sized from Parquet's size, 2,747: from the Arrow size),
// and the rows' Arrow size as a percentage of the budget (0: the 64 MiB budget, about 390 %;
// 110, 150 and 200: inputs just over the budget, where only part of them need spilling).
#include <arrow/api.h>
#include <arrow/io/api.h>
#include <arrow/ipc/api.h>
#include <benchmark/benchmark.h>

#include <filesystem>
#include <random>

#include "granary/offline/partitioner.h"

namespace granary {
namespace {

constexpr int64_t kRows = 8'000'000;
constexpr int64_t kBatchRows = 65'536;
constexpr int64_t kKeys = 5'000;
constexpr int64_t kBudget = int64_t{64} << 20;

std::shared_ptr<arrow::Schema> EventSchema() {
  return arrow::schema({arrow::field("parking_bay_id", arrow::int64()),
                        arrow::field("event_timestamp", arrow::timestamp(arrow::TimeUnit::MICRO)),
                        arrow::field("occupancy", arrow::float64()),
                        arrow::field("arrivals", arrow::int32()),
                        arrow::field("turned_away", arrow::int32())});
}

// The events in file order: one row per bay per 15 minutes, bays in order within a time.
const std::vector<std::shared_ptr<arrow::RecordBatch>>& Events() {
  static const auto* batches = [] {
    auto* out = new std::vector<std::shared_ptr<arrow::RecordBatch>>;
    std::mt19937_64 rng(7);
    for (int64_t start = 0; start < kRows; start += kBatchRows) {
      const int64_t n = std::min(kBatchRows, kRows - start);
      arrow::Int64Builder key, time;
      arrow::DoubleBuilder occupancy;
      arrow::Int32Builder arrivals, turned_away;
      for (int64_t i = start; i < start + n; ++i) {
        (void)key.Append(i % kKeys);
        (void)time.Append((i / kKeys) * 900'000'000);
        (void)occupancy.Append(static_cast<double>(rng() % 1000) / 1000);
        (void)arrivals.Append(static_cast<int32_t>(rng() % 8));
        (void)turned_away.Append(static_cast<int32_t>(rng() % 3));
      }
      std::vector<std::shared_ptr<arrow::Array>> columns(5);
      (void)key.Finish(&columns[0]);
      (void)time.Finish(&columns[1]);
      (void)occupancy.Finish(&columns[2]);
      (void)arrivals.Finish(&columns[3]);
      (void)turned_away.Finish(&columns[4]);
      columns[1] = *columns[1]->View(arrow::timestamp(arrow::TimeUnit::MICRO));
      out->push_back(arrow::RecordBatch::Make(EventSchema(), n, columns));
    }
    return out;
  }();
  return *batches;
}

std::filesystem::path SpillParent() {
  const char* dir = std::getenv("GRANARY_BENCH_SPILL");
  return dir != nullptr ? std::filesystem::path(dir) : std::filesystem::temp_directory_path();
}

int64_t EventBytes() {
  int64_t bytes = 0;
  for (const auto& batch : Events()) bytes += BatchBytes(*batch);
  return bytes;
}

void BM_Partitioner(benchmark::State& state) {
  const auto& events = Events();
  const int64_t percent = state.range(1);
  const int64_t budget = percent == 0 ? kBudget : EventBytes() * 100 / percent;
  int64_t spilled = 0;
  int64_t peak = 0;
  for (auto _ : state) {
    PartitionerOptions options;
    options.num_partitions = static_cast<int>(state.range(0));
    options.memory_budget_bytes = budget;
    options.spill_parent = SpillParent();
    auto parts = EntityPartitioner::Make(EventSchema(), {"parking_bay_id"}, options);
    if (!parts.ok()) return state.SkipWithError(parts.status().ToString().c_str());
    for (const auto& batch : events) {
      if (!(*parts)->Append(batch).ok()) return state.SkipWithError("append failed");
    }
    if (!(*parts)->Finish().ok()) return state.SkipWithError("finish failed");
    int64_t rows = 0;
    for (int p = 0; p < options.num_partitions; ++p) {
      auto table = (*parts)->ReadPartition(p);
      if (!table.ok()) return state.SkipWithError(table.status().ToString().c_str());
      rows += (*table)->num_rows();
      (*parts)->Release(p);
    }
    if (rows != kRows) return state.SkipWithError("rows lost");
    spilled = (*parts)->stats().bytes_spilled;
    peak = (*parts)->stats().peak_bytes_in_memory;
  }
  state.counters["budget_MiB"] = static_cast<double>(budget) / (1 << 20);
  state.counters["spilled_MiB"] = static_cast<double>(spilled) / (1 << 20);
  state.counters["peak_MiB"] = static_cast<double>(peak) / (1 << 20);
  state.SetItemsProcessed(state.iterations() * kRows);
}
BENCHMARK(BM_Partitioner)
    ->ArgNames({"partitions", "percent"})
    ->ArgsProduct({{304, 2747}, {0, 110, 150, 200}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The floor: all batches written to one IPC stream file and read back.
void BM_SpillFloor(benchmark::State& state) {
  const auto& events = Events();
  const std::string path = (SpillParent() / "granary-partitioner-bench.arrows").string();
  for (auto _ : state) {
    {
      auto out = *arrow::io::FileOutputStream::Open(path);
      auto writer = *arrow::ipc::MakeStreamWriter(out, EventSchema());
      for (const auto& batch : events) (void)writer->WriteRecordBatch(*batch);
      (void)writer->Close();
    }
    auto in = *arrow::io::ReadableFile::Open(path);
    auto reader = *arrow::ipc::RecordBatchStreamReader::Open(in);
    int64_t rows = 0;
    for (std::shared_ptr<arrow::RecordBatch> batch; (void)reader->ReadNext(&batch), batch;) {
      rows += batch->num_rows();
    }
    if (rows != kRows) return state.SkipWithError("rows lost");
  }
  std::filesystem::remove(path);
  state.SetItemsProcessed(state.iterations() * kRows);
}
BENCHMARK(BM_SpillFloor)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace granary

BENCHMARK_MAIN();
