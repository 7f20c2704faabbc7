// One record per entity built by RocksDB merge operands (bench/online/merge_row.h) beside
// Granary's record per entity and view, on bench/serve's shape: 20,000 entities x 25 views x 10
// features (5 int64, 5 float64), key ttl 90 days (docs/PERFORMANCE.md, "One record per entity by
// merge operands").
//
// Write side: a whole materialization of the 25 views, view after view, in chunks of 256 rows
// (Granary's chunk), each chunk's rows encoded as the store encodes them (EncodeEntityKeys,
// BodyEncoder). Each iteration is one pass of 25 x 79 chunks; its time includes a flush and the
// wait for every flush and compaction it caused (process CPU: RocksDB's threads included).
//   BM_WritePerView/s     today's write-if-newer at its floor: sorted MultiGet of the chunk's
//                         records, compare, Put of each (rocksdb_store.cc's WriteChunk, without
//                         the stripe locks)
//   BM_WriteMerge/s       blind: a Merge of a one-section operand per row
//   BM_WriteStoreApi/s    RocksDbOnlineStore::WriteBatch itself (the product), loop only: the
//                         store hides its database, so its trailing flushes and compactions are
//                         not waited for (a check that the floor above is the store's cost)
// s = 0: into an empty store; s = 1: into a store holding every view's rows (compacted), with
// rows one hour newer; s = 2: as s = 1, then a full compaction (CompactRange), timed too: what
// it costs to leave one value per entity (merge rows) or one sorted run (per view) after the
// materialization. Counters: cpu_us_per_chunk (process CPU per 256 rows), rows_per_s (wall),
// and after the pass, read100_us: the CPU of one 100-entity read on what the pass left
// (MultiGet, merge rows; SeekNext, per view).
//
// Read side: 64 requests of 1 or 100 random entities x all 25 views, read on one thread.
//   BM_PerViewStoreRead/b        Granary's OnlineStore::Read of today's store, compacted
//   BM_PerViewSeekNext/b         its RocksDB floor: Seek + Next through each entity's 25 records
//   BM_PerViewMultiGet/b         one sorted MultiGet of the request's 25 x b keys
//   BM_MergeRowGet/k/b           merge rows: one Get per entity
//   BM_MergeRowMultiGet/k/b      one sorted MultiGet of the request's b keys
//   BM_MergeRowSeek/k/b          one Seek per entity on one iterator
//   BM_MergeRowStoreRead/k/b     what Granary's Read would be: the MultiGet, each section found
//                                and its expiry checked, bodies copied into the read's arena,
//                                OnlineFeaturesBuilder::Finish (the same decoding as today)
// k = 0: merge rows fully compacted (one value per entity); k = 1, 5, 25: on top of that row,
// k operands per entity not merged yet (views 0 .. k-1 written again, one flush per view: each
// operand in a level-0 file of its own, auto compactions off: the worst case of a read between
// a materialization and its compactions). The merge-row reads walk the sections (expiry checked)
// as a product read would.
//
// The operator's own cost: BM_MergeOperatorFull/k (a 25-section row and k one-view operands,
// full merge) and BM_MergeOperatorPartial/k (k operands of distinct views, partial merge).
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <rocksdb/db.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "granary/common/temp_dir.h"
#include "granary/online/rocksdb/rocksdb_store.h"
#include "granary/online/value_codec.h"
#include "merge_row.h"
#include "merge_row_shape.h"

namespace granary::bench {
namespace {

// One 100-entity read on what a pass left: merge rows (MultiGet + sections) or per view
// (Seek + Next); thread CPU in microseconds, over the 64 requests.
double ReadCostAfter(rocksdb::DB* db, bool merge) {
  const auto& requests = Shape::Get().requests.at(100);
  const auto wanted = RequestedViews();
  const int64_t now = NowMicros();
  const double start = ThreadCpuSeconds();
  size_t bytes = 0;
  for (const auto& keys : requests) {
    if (merge) {
      std::vector<rocksdb::Slice> slices;
      for (size_t i = 0; i < keys->size(); ++i) slices.emplace_back(keys->key(i));
      std::sort(slices.begin(), slices.end(),
                [](const rocksdb::Slice& a, const rocksdb::Slice& b) { return a.compare(b) < 0; });
      std::vector<rocksdb::PinnableSlice> values(slices.size());
      std::vector<rocksdb::Status> statuses(slices.size());
      db->MultiGet(rocksdb::ReadOptions(), db->DefaultColumnFamily(), slices.size(), slices.data(),
                   values.data(), statuses.data(), true);
      for (const auto& v : values) {
        FindSections(std::string_view(v.data(), v.size()), wanted, now,
                     [&](uint32_t, std::string_view body) { bytes += body.size(); });
      }
    } else {
      std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
      for (size_t i = 0; i < keys->size(); ++i) {
        const rocksdb::Slice prefix(keys->key(i).data(), keys->key(i).size());
        for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
          bytes += it->value().size();
        }
      }
    }
  }
  if (bytes == 0) Die("the read after the pass found nothing");
  return (ThreadCpuSeconds() - start) * 1e6 / static_cast<double>(requests.size());
}

// ---------------------------------------------------------------------------------------------
// Write benchmarks.

void RunWritePass(benchmark::State& state, bool merge) {
  const Shape& shape = Shape::Get();
  const bool holding = state.range(0) != 0;
  const bool compact_after = state.range(0) == 2;
  TempDir dir = TempDir::Make("granary_merge_row_write_").ValueOrDie();
  std::unique_ptr<rocksdb::DB> db = OpenDb(dir.path() / "db", StoreOptions(merge));
  const ChunkWriter writer = merge ? WriteChunkMerge : WriteChunkPerView;
  auto write = [&](const ViewLayout& view, const arrow::RecordBatch& rows) {
    writer(db.get(), view, rows);
  };
  if (holding) {
    WritePass(shape.older, write);
    Check(db->CompactRange(rocksdb::CompactRangeOptions(), nullptr, nullptr), "compaction");
    FlushAndWait(db.get());
  }
  double cpu = 0, wall = 0;
  int64_t chunks = 0;
  for (auto _ : state) {
    const double cpu0 = ProcessCpuSeconds();
    const auto wall0 = std::chrono::steady_clock::now();
    chunks += WritePass(holding ? shape.newer : shape.older, write);
    if (compact_after) {
      Check(db->CompactRange(rocksdb::CompactRangeOptions(), nullptr, nullptr), "compaction");
    }
    FlushAndWait(db.get());
    cpu += ProcessCpuSeconds() - cpu0;
    wall += std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  }
  const double rows = static_cast<double>(state.iterations()) * kViews * kEntities;
  state.counters["cpu_us_per_chunk"] = cpu * 1e6 / (rows / kChunkRows);
  state.counters["rows_per_s"] = rows / wall;
  state.counters["chunks"] = static_cast<double>(chunks);
  state.counters["read100_us"] = ReadCostAfter(db.get(), merge);
}

void BM_WritePerView(benchmark::State& state) { RunWritePass(state, false); }
void BM_WriteMerge(benchmark::State& state) { RunWritePass(state, true); }

void BM_WriteStoreApi(benchmark::State& state) {
  const Shape& shape = Shape::Get();
  const bool holding = state.range(0) != 0;
  TempDir dir = TempDir::Make("granary_merge_row_store_").ValueOrDie();
  auto store = RocksDbOnlineStore::Open(dir.path() / "online", {}).ValueOrDie();
  auto write = [&](const ViewLayout& view, const arrow::RecordBatch& rows) {
    store->WriteBatch(view, rows).ValueOrDie();
  };
  if (holding) {
    WritePass(shape.older, write);
    store->CompactAndCount().ValueOrDie();
  }
  double cpu = 0;
  for (auto _ : state) {
    const double cpu0 = ProcessCpuSeconds();
    WritePass(holding ? shape.newer : shape.older, write);
    cpu += ProcessCpuSeconds() - cpu0;
  }
  const double rows = static_cast<double>(state.iterations()) * kViews * kEntities;
  state.counters["cpu_us_per_chunk"] = cpu * 1e6 / (rows / kChunkRows);
}

// ---------------------------------------------------------------------------------------------
// The operator alone.

// A 25-section row as stored, and one-view operands of views 0 .. k-1.
struct OperatorInput {
  std::string row;
  std::vector<std::string> operands;

  static OperatorInput Make(int k) {
    const Shape& shape = Shape::Get();
    OperatorInput in;
    std::vector<std::string> all;
    std::string body;
    const int64_t now = NowMicros();
    for (int v = 0; v < kViews; ++v) {
      const BodyEncoder encoder =
          BodyEncoder::Make(*shape.views[v], *shape.older[v]->Slice(0, 1)).ValueOrDie();
      body.clear();
      Check(encoder.Append(0, &body), "encode");
      std::string op;
      AppendWriteOperand(shape.views[v]->view_id(), now, ExpiryFor(*shape.views[v], now), body,
                         &op);
      all.push_back(op);
      if (v < k) in.operands.push_back(op);
    }
    const std::vector<std::string_view> views(all.begin(), all.end());
    if (!MergeRows(views, &now, &in.row)) Die("merge");
    return in;
  }
};

void BM_MergeOperatorFull(benchmark::State& state) {
  const OperatorInput in = OperatorInput::Make(static_cast<int>(state.range(0)));
  std::vector<std::string_view> rows = {in.row};
  rows.insert(rows.end(), in.operands.begin(), in.operands.end());
  const int64_t now = NowMicros();
  std::string out;
  for (auto _ : state) {
    if (!MergeRows(rows, &now, &out)) Die("merge");
    benchmark::DoNotOptimize(out.data());
  }
}

void BM_MergeOperatorPartial(benchmark::State& state) {
  const OperatorInput in = OperatorInput::Make(static_cast<int>(state.range(0)));
  const std::vector<std::string_view> rows(in.operands.begin(), in.operands.end());
  std::string out;
  for (auto _ : state) {
    if (!MergeRows(rows, nullptr, &out)) Die("merge");
    benchmark::DoNotOptimize(out.data());
  }
}

BENCHMARK(BM_PerViewStoreRead)->Arg(1)->Arg(100);
BENCHMARK(BM_PerViewSeekNext)->Arg(1)->Arg(100);
BENCHMARK(BM_PerViewMultiGet)->Arg(1)->Arg(100);
BENCHMARK(BM_MergeRowGet)->ArgsProduct({{0, 1, 5, 25}, {1, 100}});
BENCHMARK(BM_MergeRowMultiGet)->ArgsProduct({{0, 1, 5, 25}, {1, 100}});
BENCHMARK(BM_MergeRowSeek)->ArgsProduct({{0, 1, 5, 25}, {1, 100}});
BENCHMARK(BM_MergeRowStoreRead)->ArgsProduct({{0, 1, 5, 25}, {1, 100}});
BENCHMARK(BM_MergeOperatorFull)->Arg(1)->Arg(5)->Arg(25);
BENCHMARK(BM_MergeOperatorPartial)->Arg(2)->Arg(5)->Arg(25);
// One iteration is a whole pass (500,000 rows, about 1,950 chunks): the figures are per pass.
BENCHMARK(BM_WritePerView)
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Iterations(1)
    ->UseRealTime()
    ->MeasureProcessCPUTime();
BENCHMARK(BM_WriteMerge)
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Iterations(1)
    ->UseRealTime()
    ->MeasureProcessCPUTime();
BENCHMARK(BM_WriteStoreApi)->Arg(0)->Arg(1)->Iterations(1)->UseRealTime()->MeasureProcessCPUTime();

}  // namespace
}  // namespace granary::bench

BENCHMARK_MAIN();
