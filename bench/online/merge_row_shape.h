// What merge_row_bench's write side (merge_row_bench.cc, which describes the benchmark) and read
// side (merge_row_read_bench.cc) share: the shape's views, rows and requests, the stores' options
// as the product sets them, one chunk's write each way, and the walk of a merge row's sections.
// One thread.
#pragma once

#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <rocksdb/db.h>
#include <time.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../common/shape_batch.h"
#include "granary/common/clock.h"
#include "granary/online/entity_key.h"
#include "granary/online/rocksdb/rocksdb_store.h"
#include "merge_row.h"

namespace granary::bench {

inline constexpr int kViews = 25;
inline constexpr int kFeatures = 10;
inline constexpr int64_t kEntities = 20'000;
inline constexpr int64_t kChunkRows = 256;
inline constexpr char kRecordVersion = '\x01';  // today's per-view record (rocksdb_store.cc)
inline constexpr size_t kRecordHeader = 9;

[[noreturn]] inline void Die(const std::string& what) {
  fmt::print(stderr, "merge_row_bench: {}\n", what);
  std::abort();
}
inline void Check(const rocksdb::Status& st, const char* what) {
  if (!st.ok()) Die(fmt::format("{}: {}", what, st.ToString()));
}
inline void Check(const Status& st, const char* what) {
  if (!st.ok()) Die(fmt::format("{}: {}", what, st.ToString()));
}

inline int64_t NowMicros() { return SystemClock::Default().Now().micros; }

inline double ProcessCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}
inline double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// The shape's views and rows, made once.
struct Shape {
  std::shared_ptr<const Definitions> defs;
  std::vector<std::shared_ptr<const ViewLayout>> views;  // view_00 .. view_24
  // Per view, all entities' rows at two event times (an hour apart), for the passes.
  std::vector<std::shared_ptr<arrow::RecordBatch>> older, newer;
  // Per request size: 64 requests of random entity ids (response_bench's draw).
  std::map<int, std::vector<std::shared_ptr<const EntityKeyColumn>>> requests;

  static const Shape& Get() {
    static const Shape shape = Make();
    return shape;
  }

  static Shape Make() {
    Shape s;
    s.defs = std::make_shared<Definitions>(MakeShapeDefinitions(kViews, kFeatures));
    ViewLayouts layouts = MakeViewLayouts(*s.defs, Duration::Days(90)).ValueOrDie();
    const Timestamp event = SystemClock::Default().Now() - Duration::Hours(2);
    for (int v = 0; v < kViews; ++v) {
      s.views.push_back(layouts.at(fmt::format("view_{:02}", v)));
      s.older.push_back(MakeShapeBatch(*s.views.back(), 0, kEntities, event));
      s.newer.push_back(MakeShapeBatch(*s.views.back(), 0, kEntities, event + Duration::Hours(1)));
    }
    for (int batch : {1, 100}) {
      std::mt19937_64 rng(batch);
      for (int i = 0; i < 64; ++i) {
        arrow::Int64Builder ids;
        for (int e = 0; e < batch; ++e) {
          (void)ids.Append(static_cast<int64_t>(rng() % kEntities));
        }
        auto rows =
            arrow::RecordBatch::Make(arrow::schema({arrow::field("customer_id", arrow::int64())}),
                                     batch, {ids.Finish().ValueOrDie()});
        s.requests[batch].push_back(
            std::make_shared<EntityKeyColumn>(EncodeEntityKeys(*s.views[0], *rows).ValueOrDie()));
      }
    }
    return s;
  }

  // A read of every feature of every view for `keys`, as the service resolves it.
  OnlineReadRequest Request(const std::shared_ptr<const EntityKeyColumn>& keys) const {
    OnlineReadRequest r;
    for (const auto& view : views) {
      ViewRead read;
      read.view = view;
      read.features.resize(kFeatures);
      std::iota(read.features.begin(), read.features.end(), 0);
      read.keys = keys;
      r.views.push_back(std::move(read));
    }
    return r;
  }
};

// As RocksDbOnlineStore::Open sets them, with the expiry filter of each layout (merge: the
// section merge operator and filter; else the per-view record's filter).
rocksdb::Options StoreOptions(bool merge);
std::unique_ptr<rocksdb::DB> OpenDb(const std::filesystem::path& path,
                                    const rocksdb::Options& options);
// Flushes the memtable and waits until no flush or compaction runs or is pending.
void FlushAndWait(rocksdb::DB* db);

inline int64_t ExpiryFor(const ViewLayout& view, int64_t now) {
  const int64_t ttl = view.key_ttl().micros;
  return ttl <= 0 ? std::numeric_limits<int64_t>::max() : now + ttl;
}

// Writes of one chunk of rows of one view. Today's write-if-newer at its floor
// (rocksdb_store.cc, WriteChunk): a sorted MultiGet, compare, a Put of each.
void WriteChunkPerView(rocksdb::DB* db, const ViewLayout& view, const arrow::RecordBatch& rows);
// Blind: one Merge per row.
void WriteChunkMerge(rocksdb::DB* db, const ViewLayout& view, const arrow::RecordBatch& rows);
using ChunkWriter = void (*)(rocksdb::DB*, const ViewLayout&, const arrow::RecordBatch&);
// Every view's rows, view after view, in chunks; returns the chunks written.
int64_t WritePass(const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches,
                  const std::function<void(const ViewLayout&, const arrow::RecordBatch&)>& write);

// The requested views' ids, sorted, with their index in the request.
std::vector<std::pair<uint32_t, uint32_t>> RequestedViews();

// Walks a merge row's sections against the requested views (both by view id), calling
// found(view index, body) for each live requested section.
template <typename Found>
void FindSections(std::string_view row, const std::vector<std::pair<uint32_t, uint32_t>>& wanted,
                  int64_t now, Found&& found) {
  size_t w = 0;
  const bool ok = WalkSections(row, [&](const SectionRef& s) {
    while (w < wanted.size() && wanted[w].first < s.view_id) ++w;
    if (w == wanted.size()) return false;
    if (wanted[w].first == s.view_id && s.expire_at > now) found(wanted[w].second, s.body);
    return true;
  });
  if (!ok) Die("a malformed merge row");
}

// The read benchmarks (merge_row_read_bench.cc), registered in merge_row_bench.cc in the order
// they run. Per view: range(0) = entities per request; merge rows: range(0) = unmerged operands
// per entity (0: compacted), range(1) = entities.
void BM_PerViewStoreRead(benchmark::State& state);
void BM_PerViewSeekNext(benchmark::State& state);
void BM_PerViewMultiGet(benchmark::State& state);
void BM_MergeRowGet(benchmark::State& state);
void BM_MergeRowMultiGet(benchmark::State& state);
void BM_MergeRowSeek(benchmark::State& state);
void BM_MergeRowStoreRead(benchmark::State& state);

}  // namespace granary::bench
