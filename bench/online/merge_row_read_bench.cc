// merge_row_bench's read side (merge_row_bench.cc describes the benchmark): 64 requests of 1
// or 100 random entities x all 25 views, read on one thread, from today's per-view store and
// from merge rows with 0, 1, 5 or 25 operands per entity not merged yet.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "../common/sorted_multiget.h"
#include "granary/common/temp_dir.h"
#include "granary/online/value_codec.h"
#include "merge_row_shape.h"

namespace granary::bench {
namespace {

// The read fixtures, made once.
struct ReadStores {
  TempDir dir;
  std::unique_ptr<RocksDbOnlineStore> per_view;
  std::unique_ptr<rocksdb::DB> per_view_raw;          // read-only handle of the same folder
  std::map<int, std::unique_ptr<rocksdb::DB>> merge;  // by unmerged operands per entity

  static ReadStores& Get() {
    static std::unique_ptr<ReadStores> stores = Make();
    return *stores;
  }

  static std::unique_ptr<ReadStores> Make() {
    const Shape& shape = Shape::Get();
    auto s = std::make_unique<ReadStores>(
        ReadStores{TempDir::Make("granary_merge_row_read_").ValueOrDie(), nullptr, nullptr, {}});
    // Today's store, written through its API and compacted.
    s->per_view = RocksDbOnlineStore::Open(s->dir.path() / "per_view", {}).ValueOrDie();
    for (int v = 0; v < kViews; ++v) {
      s->per_view->WriteBatch(*shape.views[v], *shape.older[v]).ValueOrDie();
    }
    s->per_view->CompactAndCount().ValueOrDie();
    rocksdb::DB* raw = nullptr;
    Check(rocksdb::DB::OpenForReadOnly(StoreOptions(false), (s->dir.path() / "per_view").string(),
                                       &raw),
          "open read-only");
    s->per_view_raw.reset(raw);

    // Merge rows written by Merge operands and compacted into one value per entity.
    s->merge[0] = OpenDb(s->dir.path() / "merge_0", StoreOptions(true));
    WritePass(shape.older, [&](const ViewLayout& view, const arrow::RecordBatch& rows) {
      WriteChunkMerge(s->merge[0].get(), view, rows);
    });
    Check(s->merge[0]->CompactRange(rocksdb::CompactRangeOptions(), nullptr, nullptr),
          "compaction");
    FlushAndWait(s->merge[0].get());
    const std::vector<std::string> rows = CheckedRows(s->merge[0].get());

    // The same rows (Put), then k views written again, one level-0 file per view.
    for (int k : {1, 5, 25}) {
      rocksdb::Options options = StoreOptions(true);
      options.disable_auto_compactions = true;
      options.level0_slowdown_writes_trigger = 1000;
      options.level0_stop_writes_trigger = 1000;
      auto& db = s->merge[k];
      db = OpenDb(s->dir.path() / fmt::format("merge_{}", k), options);
      rocksdb::WriteBatch batch;
      const EntityKeyColumn& keys = AllKeys();
      for (int64_t e = 0; e < kEntities; ++e) {
        const std::string_view key = keys.key(e);
        Check(batch.Put(rocksdb::Slice(key.data(), key.size()), rows[e]), "batch");
      }
      Check(db->Write(rocksdb::WriteOptions(), &batch), "write");
      Check(db->CompactRange(rocksdb::CompactRangeOptions(), nullptr, nullptr), "compaction");
      for (int v = 0; v < k; ++v) {
        for (int64_t begin = 0; begin < kEntities; begin += kChunkRows) {
          WriteChunkMerge(db.get(), *shape.views[v],
                          *shape.newer[v]->Slice(begin, std::min(kChunkRows, kEntities - begin)));
        }
        Check(db->Flush(rocksdb::FlushOptions()), "flush");
      }
    }
    return s;
  }

  static const EntityKeyColumn& AllKeys() {
    static const EntityKeyColumn keys =
        EncodeEntityKeys(*Shape::Get().views[0], *Shape::Get().older[0]).ValueOrDie();
    return keys;
  }

  // Every entity's compacted merge row, checked against the rows written: 25 live sections,
  // each the body BodyEncoder writes.
  static std::vector<std::string> CheckedRows(rocksdb::DB* db) {
    const Shape& shape = Shape::Get();
    std::vector<BodyEncoder> encoders;
    for (int v = 0; v < kViews; ++v) {
      encoders.push_back(BodyEncoder::Make(*shape.views[v], *shape.older[v]).ValueOrDie());
    }
    const auto wanted = RequestedViews();
    const EntityKeyColumn& keys = AllKeys();
    std::vector<std::string> rows(kEntities);
    std::string body;
    const int64_t now = NowMicros();
    for (int64_t e = 0; e < kEntities; ++e) {
      const std::string_view key = keys.key(e);
      Check(db->Get(rocksdb::ReadOptions(), rocksdb::Slice(key.data(), key.size()), &rows[e]),
            "get");
      int sections = 0;
      FindSections(rows[e], wanted, now, [&](uint32_t v, std::string_view stored) {
        body.clear();
        Check(encoders[v].Append(e, &body), "encode");
        if (stored != body) Die(fmt::format("entity {} view {}: another body", e, v));
        ++sections;
      });
      if (sections != kViews) Die(fmt::format("entity {}: {} sections", e, sections));
    }
    return rows;
  }
};

// Each request's keys as rocksdb slices, sorted (a MultiGet's order).
std::vector<std::vector<std::string>> SortedKeys(int batch, bool per_view) {
  std::vector<std::vector<std::string>> out;
  const Shape& shape = Shape::Get();
  for (const auto& keys : shape.requests.at(batch)) {
    std::vector<std::string> one;
    for (size_t i = 0; i < keys->size(); ++i) {
      if (!per_view) {
        one.emplace_back(keys->key(i));
        continue;
      }
      for (int v = 0; v < kViews; ++v) {
        std::string k(keys->key(i));
        layout::PutBigEndian32(&k, shape.views[v]->view_id());
        one.push_back(std::move(k));
      }
    }
    std::sort(one.begin(), one.end());
    one.erase(std::unique(one.begin(), one.end()), one.end());
    out.push_back(std::move(one));
  }
  return out;
}

// Merge rows: range(0) = unmerged operands per entity (0: compacted), range(1) = entities.
rocksdb::DB* MergeDb(const benchmark::State& state) {
  return ReadStores::Get().merge.at(static_cast<int>(state.range(0))).get();
}

}  // namespace

void BM_PerViewStoreRead(benchmark::State& state) {
  ReadStores& stores = ReadStores::Get();
  std::vector<OnlineReadRequest> requests;
  for (const auto& keys : Shape::Get().requests.at(static_cast<int>(state.range(0)))) {
    requests.push_back(Shape::Get().Request(keys));
  }
  size_t i = 0;
  for (auto _ : state) {
    auto r = stores.per_view->Read(requests[i++ % requests.size()]);
    if (!r.ok()) Die(r.status().ToString());
    benchmark::DoNotOptimize(r);
  }
}

void BM_PerViewSeekNext(benchmark::State& state) {
  rocksdb::DB* db = ReadStores::Get().per_view_raw.get();
  const auto& requests = Shape::Get().requests.at(static_cast<int>(state.range(0)));
  const int64_t now = NowMicros();
  size_t i = 0;
  for (auto _ : state) {
    const EntityKeyColumn& keys = *requests[i++ % requests.size()];
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    size_t bytes = 0;
    for (size_t r = 0; r < keys.size(); ++r) {
      const rocksdb::Slice prefix(keys.key(r).data(), keys.key(r).size());
      for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
        const rocksdb::Slice value = it->value();
        if (layout::LoadFixed<int64_t>(value.data() + 1) > now) bytes += value.size();
      }
    }
    if (bytes == 0) Die("nothing read");
    benchmark::DoNotOptimize(bytes);
  }
}

void BM_PerViewMultiGet(benchmark::State& state) {
  rocksdb::DB* db = ReadStores::Get().per_view_raw.get();
  const auto keys = SortedKeys(static_cast<int>(state.range(0)), /*per_view=*/true);
  size_t i = 0;
  SortedMultiGet multi_get;
  for (auto _ : state) {
    const auto& values = multi_get.Run(db, keys[i++ % keys.size()]);
    benchmark::DoNotOptimize(values.data());
  }
}

void BM_MergeRowGet(benchmark::State& state) {
  rocksdb::DB* db = MergeDb(state);
  const auto& requests = Shape::Get().requests.at(static_cast<int>(state.range(1)));
  const auto wanted = RequestedViews();
  const int64_t now = NowMicros();
  size_t i = 0;
  rocksdb::PinnableSlice value;
  for (auto _ : state) {
    const EntityKeyColumn& keys = *requests[i++ % requests.size()];
    size_t bytes = 0;
    for (size_t r = 0; r < keys.size(); ++r) {
      value.Reset();
      Check(db->Get(rocksdb::ReadOptions(), db->DefaultColumnFamily(),
                    rocksdb::Slice(keys.key(r).data(), keys.key(r).size()), &value),
            "get");
      FindSections(std::string_view(value.data(), value.size()), wanted, now,
                   [&](uint32_t, std::string_view body) { bytes += body.size(); });
    }
    if (bytes == 0) Die("nothing read");
    benchmark::DoNotOptimize(bytes);
  }
}

void BM_MergeRowMultiGet(benchmark::State& state) {
  rocksdb::DB* db = MergeDb(state);
  const auto keys = SortedKeys(static_cast<int>(state.range(1)), /*per_view=*/false);
  const auto wanted = RequestedViews();
  const int64_t now = NowMicros();
  size_t i = 0;
  SortedMultiGet multi_get;
  for (auto _ : state) {
    const auto& values = multi_get.Run(db, keys[i++ % keys.size()]);
    size_t bytes = 0;
    for (const auto& v : values) {
      FindSections(std::string_view(v.data(), v.size()), wanted, now,
                   [&](uint32_t, std::string_view body) { bytes += body.size(); });
    }
    if (bytes == 0) Die("nothing read");
    benchmark::DoNotOptimize(bytes);
  }
}

void BM_MergeRowSeek(benchmark::State& state) {
  rocksdb::DB* db = MergeDb(state);
  const auto& requests = Shape::Get().requests.at(static_cast<int>(state.range(1)));
  const auto wanted = RequestedViews();
  const int64_t now = NowMicros();
  size_t i = 0;
  for (auto _ : state) {
    const EntityKeyColumn& keys = *requests[i++ % requests.size()];
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    size_t bytes = 0;
    for (size_t r = 0; r < keys.size(); ++r) {
      const rocksdb::Slice key(keys.key(r).data(), keys.key(r).size());
      it->Seek(key);
      if (!it->Valid() || it->key() != key) continue;
      FindSections(std::string_view(it->value().data(), it->value().size()), wanted, now,
                   [&](uint32_t, std::string_view body) { bytes += body.size(); });
    }
    if (bytes == 0) Die("nothing read");
    benchmark::DoNotOptimize(bytes);
  }
}

// What RocksDbOnlineStore::Read would do on merge rows: one sorted MultiGet, the requested
// sections of each row into the read's arena, the same Finish as today.
void BM_MergeRowStoreRead(benchmark::State& state) {
  rocksdb::DB* db = MergeDb(state);
  const Shape& shape = Shape::Get();
  std::vector<OnlineReadRequest> requests;
  for (const auto& keys : shape.requests.at(static_cast<int>(state.range(1)))) {
    requests.push_back(shape.Request(keys));
  }
  const auto wanted = RequestedViews();
  size_t i = 0;
  std::vector<uint32_t> order;
  std::vector<rocksdb::Slice> slices;
  std::vector<rocksdb::PinnableSlice> values;
  std::vector<rocksdb::Status> statuses;
  for (auto _ : state) {
    const OnlineReadRequest& request = requests[i++ % requests.size()];
    const EntityKeyColumn& keys = *request.views[0].keys;
    const size_t n = keys.size();
    order.resize(n);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(),
              [&](uint32_t a, uint32_t b) { return keys.key(a) < keys.key(b); });
    slices.resize(n);
    for (size_t r = 0; r < n; ++r)
      slices[r] = rocksdb::Slice(keys.key(order[r]).data(), keys.key(order[r]).size());
    values.clear();
    values.resize(n);
    statuses.resize(n);
    db->MultiGet(rocksdb::ReadOptions(), db->DefaultColumnFamily(), n, slices.data(), values.data(),
                 statuses.data(), /*sorted_input=*/true);
    const Timestamp now = SystemClock::Default().Now();
    OnlineFeaturesBuilder builder(request);
    std::string* arena = builder.arena();
    for (size_t j = 0; j < n; ++j) {
      if (!statuses[j].ok()) {
        if (statuses[j].IsNotFound()) continue;
        Check(statuses[j], "read");
      }
      const uint32_t row = order[j];
      FindSections(std::string_view(values[j].data(), values[j].size()), wanted, now.micros,
                   [&](uint32_t v, std::string_view body) {
                     const size_t at = arena->size();
                     arena->append(body);
                     builder.SetBody(v, row, at, body.size());
                   });
    }
    auto features = builder.Finish(now);
    if (!features.ok()) Die(features.status().ToString());
    benchmark::DoNotOptimize(features);
  }
}

}  // namespace granary::bench
