// Data generator speed, in rows per second, beside Arrow's own Parquet writer on the same rows.
//
//   telemetry/generate_and_write: simulate bays day by day and write the rows (Parquet, snappy)
//   telemetry/simulate_only:      the same simulation without building or writing anything
//   baseline/arrow_write_only:    write already-generated telemetry rows with the same writer
//   customers/generate_and_write: customers with all their events and feature rows, written
// One thread each (the CLI runs shards and groups on every core).
#include <arrow/api.h>
#include <benchmark/benchmark.h>

#include "granary/common/temp_dir.h"
#include "granary/datagen/bay_simulator.h"
#include "granary/datagen/customer_simulator.h"
#include "granary/datagen/parquet_output.h"
#include "granary/datagen/tables.h"
#include "granary/datagen/world.h"

namespace granary::datagen {
namespace {

DatagenOptions BenchOptions() {
  DatagenOptions o;
  o.scale = ScaleParams{"bench", 2'000, 40, 8, 14, 2'000, 1'250};
  o.seed = 1;
  o.end = ParseTimestamp("2026-06-01").ValueOrDie();
  return o;
}

TelemetryBatch Simulate(const World& w, uint64_t seed) {
  TelemetryBatch batch;
  for (const Bay& bay : w.bays) {
    BaySimulator sim(w, bay, seed);
    sim.Run(w.end - kTick, w.start, &batch);
  }
  return batch;
}

void TelemetryGenerateAndWrite(benchmark::State& state) {
  const DatagenOptions o = BenchOptions();
  const World w = MakeWorld(o);
  auto dir = TempDir::Make("granary-bench-").ValueOrDie();
  int64_t rows = 0;
  for (auto _ : state) {
    TelemetryBatch batch = Simulate(w, o.seed);
    auto record_batch = BayOccupancyBatch(batch, false).ValueOrDie();
    auto writer =
        ParquetFileWriter::Open(dir.path() / "t.parquet", record_batch->schema()).ValueOrDie();
    if (!writer->Write(*record_batch).ok()) state.SkipWithError("write failed");
    benchmark::DoNotOptimize(writer->Close().ok());
    rows += static_cast<int64_t>(batch.size());
  }
  state.counters["rows/s"] =
      benchmark::Counter(static_cast<double>(rows), benchmark::Counter::kIsRate);
}
BENCHMARK(TelemetryGenerateAndWrite)
    ->Name("telemetry/generate_and_write")
    ->Unit(benchmark::kMillisecond);

void TelemetrySimulateOnly(benchmark::State& state) {
  const DatagenOptions o = BenchOptions();
  const World w = MakeWorld(o);
  int64_t rows = 0;
  for (auto _ : state) {
    TelemetryBatch batch = Simulate(w, o.seed);
    benchmark::DoNotOptimize(batch.occupied.data());
    rows += static_cast<int64_t>(batch.size());
  }
  state.counters["rows/s"] =
      benchmark::Counter(static_cast<double>(rows), benchmark::Counter::kIsRate);
}
BENCHMARK(TelemetrySimulateOnly)->Name("telemetry/simulate_only")->Unit(benchmark::kMillisecond);

void ArrowWriteOnly(benchmark::State& state) {
  const DatagenOptions o = BenchOptions();
  const World w = MakeWorld(o);
  const TelemetryBatch batch = Simulate(w, o.seed);
  auto record_batch = BayOccupancyBatch(batch, false).ValueOrDie();
  auto dir = TempDir::Make("granary-bench-").ValueOrDie();
  int64_t rows = 0;
  for (auto _ : state) {
    auto writer =
        ParquetFileWriter::Open(dir.path() / "t.parquet", record_batch->schema()).ValueOrDie();
    if (!writer->Write(*record_batch).ok()) state.SkipWithError("write failed");
    benchmark::DoNotOptimize(writer->Close().ok());
    rows += record_batch->num_rows();
  }
  state.counters["rows/s"] =
      benchmark::Counter(static_cast<double>(rows), benchmark::Counter::kIsRate);
}
BENCHMARK(ArrowWriteOnly)->Name("baseline/arrow_write_only")->Unit(benchmark::kMillisecond);

void CustomersGenerateAndWrite(benchmark::State& state) {
  const DatagenOptions o = BenchOptions();
  const World w = MakeWorld(o);
  auto dir = TempDir::Make("granary-bench-").ValueOrDie();
  int64_t rows = 0, customers = 0;
  for (auto _ : state) {
    CustomerBatch batch;
    for (int64_t id = 1; id <= o.scale.customers; ++id) GenerateCustomer(w, o.seed, id, &batch);
    const std::shared_ptr<arrow::RecordBatch> batches[] = {
        CustomersBatch(batch, w).ValueOrDie(),    SessionsBatch(batch).ValueOrDie(),
        PaymentsBatch(batch).ValueOrDie(),        DisputesBatch(batch).ValueOrDie(),
        ViolationsBatch(batch).ValueOrDie(),      CustomerProfilesBatch(batch).ValueOrDie(),
        CustomerPaymentsBatch(batch).ValueOrDie()};
    int i = 0;
    for (const auto& b : batches) {
      auto writer =
          ParquetFileWriter::Open(dir.path() / (std::to_string(i++) + ".parquet"), b->schema())
              .ValueOrDie();
      if (!writer->Write(*b).ok()) state.SkipWithError("write failed");
      benchmark::DoNotOptimize(writer->Close().ok());
      rows += b->num_rows();
    }
    customers += o.scale.customers;
  }
  state.counters["rows/s"] =
      benchmark::Counter(static_cast<double>(rows), benchmark::Counter::kIsRate);
  state.counters["customers/s"] =
      benchmark::Counter(static_cast<double>(customers), benchmark::Counter::kIsRate);
}
BENCHMARK(CustomersGenerateAndWrite)
    ->Name("customers/generate_and_write")
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace granary::datagen

BENCHMARK_MAIN();
