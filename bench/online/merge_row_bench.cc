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
#include <rocksdb/compaction_filter.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <thread>

#include "../common/shape_batch.h"
#include "../common/sorted_multiget.h"
#include "granary/common/temp_dir.h"
#include "granary/online/entity_key.h"
#include "granary/online/rocksdb/rocksdb_store.h"
#include "granary/online/value_codec.h"
#include "merge_row.h"

namespace granary::bench {
namespace {

constexpr int kViews = 25;
constexpr int kFeatures = 10;
constexpr int64_t kEntities = 20'000;
constexpr int64_t kChunkRows = 256;
constexpr char kRecordVersion = '\x01';  // today's per-view record (rocksdb_store.cc)
constexpr size_t kRecordHeader = 9;

[[noreturn]] void Die(const std::string& what) {
  fmt::print(stderr, "merge_row_bench: {}\n", what);
  std::abort();
}
void Check(const rocksdb::Status& st, const char* what) {
  if (!st.ok()) Die(fmt::format("{}: {}", what, st.ToString()));
}
void Check(const Status& st, const char* what) {
  if (!st.ok()) Die(fmt::format("{}: {}", what, st.ToString()));
}

int64_t NowMicros() { return SystemClock::Default().Now().micros; }

double ProcessCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}
double ThreadCpuSeconds() {
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

// The per-view store's expiry filter (rocksdb_store.cc): drops an expired record.
struct RecordExpiryFilter final : public rocksdb::CompactionFilter {
  bool Filter(int, const rocksdb::Slice&, const rocksdb::Slice& value, std::string*,
              bool*) const override {
    if (value.size() < kRecordHeader || value[0] != kRecordVersion) return false;
    return layout::LoadFixed<int64_t>(value.data() + 1) <= NowMicros();
  }
  const char* Name() const override { return "granary.expiry"; }
};

rocksdb::Options StoreOptions(bool merge) {
  // As RocksDbOnlineStore::Open sets them, with the expiry filter of each layout.
  static RecordExpiryFilter record_filter;
  static SectionExpiryFilter section_filter(NowMicros);
  rocksdb::Options options;
  options.create_if_missing = true;
  options.IncreaseParallelism(2);
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(256u << 20);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.whole_key_filtering = true;
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  options.compression = rocksdb::kLZ4Compression;
  if (merge) options.merge_operator = std::make_shared<SectionMergeOperator>(NowMicros);
  options.compaction_filter =
      merge ? static_cast<const rocksdb::CompactionFilter*>(&section_filter) : &record_filter;
  return options;
}

std::unique_ptr<rocksdb::DB> OpenDb(const std::filesystem::path& path,
                                    const rocksdb::Options& options) {
  rocksdb::DB* raw = nullptr;
  Check(rocksdb::DB::Open(options, path.string(), &raw), "open");
  return std::unique_ptr<rocksdb::DB>(raw);
}

// Flushes the memtable and waits until no flush or compaction runs or is pending.
void FlushAndWait(rocksdb::DB* db) {
  rocksdb::FlushOptions flush;
  flush.wait = true;
  Check(db->Flush(flush), "flush");
  for (;;) {
    uint64_t pending = 0, compactions = 0, flushes = 0, memtables = 0;
    db->GetIntProperty("rocksdb.compaction-pending", &pending);
    db->GetIntProperty("rocksdb.num-running-compactions", &compactions);
    db->GetIntProperty("rocksdb.num-running-flushes", &flushes);
    db->GetIntProperty("rocksdb.num-immutable-mem-table", &memtables);
    if (pending + compactions + flushes + memtables == 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

int64_t ExpiryFor(const ViewLayout& view, int64_t now) {
  const int64_t ttl = view.key_ttl().micros;
  return ttl <= 0 ? std::numeric_limits<int64_t>::max() : now + ttl;
}

// ---------------------------------------------------------------------------------------------
// Writes: one chunk of rows [begin, end) of one view.

// Today's write-if-newer at its floor (rocksdb_store.cc, WriteChunk).
void WriteChunkPerView(rocksdb::DB* db, const ViewLayout& view, const arrow::RecordBatch& rows) {
  const EntityKeyColumn keys = EncodeEntityKeys(view, rows).ValueOrDie();
  const BodyEncoder encoder = BodyEncoder::Make(view, rows).ValueOrDie();
  const size_t n = keys.size();
  std::vector<std::string> record_keys(n);
  for (size_t i = 0; i < n; ++i) {
    record_keys[i].assign(keys.key(i));
    layout::PutBigEndian32(&record_keys[i], view.view_id());
  }
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return record_keys[a] < record_keys[b]; });
  std::vector<rocksdb::Slice> slices(n);
  for (size_t i = 0; i < n; ++i) slices[i] = record_keys[order[i]];
  std::vector<rocksdb::PinnableSlice> stored(n);
  std::vector<rocksdb::Status> statuses(n);
  db->MultiGet(rocksdb::ReadOptions(), db->DefaultColumnFamily(), n, slices.data(), stored.data(),
               statuses.data(), /*sorted_input=*/true);
  const int64_t now = NowMicros();
  const int64_t expiry = ExpiryFor(view, now);
  rocksdb::WriteBatch batch;
  std::string record;
  for (size_t i = 0; i < n; ++i) {
    if (!statuses[i].ok() && !statuses[i].IsNotFound()) Check(statuses[i], "read");
    std::optional<WriteOrder> current;
    std::string_view stored_body;
    if (statuses[i].ok() && stored[i].size() >= kRecordHeader && stored[i][0] == kRecordVersion) {
      const std::string_view rec(stored[i].data(), stored[i].size());
      stored_body = rec.substr(kRecordHeader);
      BodyHeader header;
      if (layout::LoadFixed<int64_t>(rec.data() + 1) > now &&
          ParseBodyHeader(stored_body, view.features().size(), &header) &&
          header.fingerprint == view.fingerprint()) {
        current = header.order;
      }
    }
    const int64_t row = order[i];
    record.clear();
    record.push_back(kRecordVersion);
    layout::PutFixed<int64_t>(&record, expiry);
    if (current && encoder.Order(row).Compare(*current) < 0) {
      record.append(stored_body);
    } else {
      Check(encoder.Append(row, &record), "encode");
    }
    Check(batch.Put(slices[i], record), "batch");
  }
  Check(db->Write(rocksdb::WriteOptions(), &batch), "write");
}

// Blind: one Merge per row.
void WriteChunkMerge(rocksdb::DB* db, const ViewLayout& view, const arrow::RecordBatch& rows) {
  const EntityKeyColumn keys = EncodeEntityKeys(view, rows).ValueOrDie();
  const BodyEncoder encoder = BodyEncoder::Make(view, rows).ValueOrDie();
  const int64_t now = NowMicros();
  const int64_t expiry = ExpiryFor(view, now);
  rocksdb::WriteBatch batch;
  std::string body, operand;
  for (size_t i = 0; i < keys.size(); ++i) {
    body.clear();
    Check(encoder.Append(static_cast<int64_t>(i), &body), "encode");
    operand.clear();
    AppendWriteOperand(view.view_id(), now, expiry, body, &operand);
    const std::string_view key = keys.key(i);
    Check(batch.Merge(rocksdb::Slice(key.data(), key.size()), operand), "batch");
  }
  Check(db->Write(rocksdb::WriteOptions(), &batch), "write");
}

using ChunkWriter = void (*)(rocksdb::DB*, const ViewLayout&, const arrow::RecordBatch&);

// Every view's rows, view after view, in chunks; returns the chunks written.
int64_t WritePass(const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches,
                  const std::function<void(const ViewLayout&, const arrow::RecordBatch&)>& write) {
  const Shape& shape = Shape::Get();
  int64_t chunks = 0;
  for (int v = 0; v < kViews; ++v) {
    for (int64_t begin = 0; begin < kEntities; begin += kChunkRows) {
      write(*shape.views[v], *batches[v]->Slice(begin, std::min(kChunkRows, kEntities - begin)));
      ++chunks;
    }
  }
  return chunks;
}

// ---------------------------------------------------------------------------------------------
// Reads.

// The requested views' ids, sorted, with their index in the request.
std::vector<std::pair<uint32_t, uint32_t>> RequestedViews() {
  std::vector<std::pair<uint32_t, uint32_t>> out;
  const Shape& shape = Shape::Get();
  for (int v = 0; v < kViews; ++v) out.emplace_back(shape.views[v]->view_id(), v);
  std::sort(out.begin(), out.end());
  return out;
}

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
// Read fixtures, made once.

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

// Merge rows: range(0) = unmerged operands per entity (0: compacted), range(1) = entities.
rocksdb::DB* MergeDb(const benchmark::State& state) {
  return ReadStores::Get().merge.at(static_cast<int>(state.range(0))).get();
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
