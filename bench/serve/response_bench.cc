// Where a get-online-features request's server time goes, without HTTP (docs/PERFORMANCE.md,
// "Feature server", "Where the time goes"): bench/serve's shape (25 views x 10 features, 5 int64
// then 5 float64) in a RocksDB store of 20,000 entities in a temporary folder (in its table files),
// requests for all 250 features of 1 or 100 random entities with full feature names.
//
//   BM_ParseRequest     the request JSON parsed (ParseOnlineFeaturesRequest)
//   BM_Resolve          checked against the definitions (OnlineFeaturesService::Resolve)
//   BM_StoreRead        the RocksDB read, values decoded in place (OnlineStore::Read)
//   BM_WriteResponse    Feast's response JSON written from the read (WriteResponse), cycling
//                       through 64 reads (each fetched from memory); /x/0 Feast's shape, /x/1
//                       the compact form (no statuses, no event times: docs/SERVING.md)
//   BM_WriteResponseWarm  the same, one read written again and again (in the caches, as in the
//                       server right after the read)
//   BM_FeastProto       the same answer as Feast's gRPC GetOnlineFeaturesResponse, what the gRPC
//                       server does for it: the message built on a protobuf arena (ToFeastProto)
//                       and serialized to its bytes, cycling through 64 reads like
//                       BM_WriteResponse
//   BM_FeastWire        the same bytes written straight from the read (WriteFeastResponse,
//                       serving/grpc/feast_wire.h: what the gRPC server does now);
//                       BM_FeastWireWarm: one read written again and again (as ...Warm below)
//   BM_ShortestFloat64  the floats of one 100 x 250 answer formatted: std::to_chars (/0/x) and
//                       serving::FormatShortest (/1/x), of 17 digits (/x/0) or 2 decimals (/x/1)
//   BM_CopyResponse     baseline: copying a buffer of the response's size (the floor of writing),
//                       /x/0 of Feast's shape, /x/1 of the compact form
//   BM_ReadAndWrite     the read and the response JSON together, on the calling thread alone
//                       (/x/0) or split with one helper thread (/x/1: the server's ForkJoinPool
//                       on 2 cores; docs/PERFORMANCE.md, "Splitting one large answer"), in
//                       Feast's shape (/x/x/0) or the compact form (/x/x/1); wall time, and the
//                       CPU time of the whole process (caller and helper)
//   BM_RawSeekNext      floor: RocksDB's own Seek + Next of the same records (read-only handle)
//   BM_RawMultiGet      RocksDB's MultiGet of the same records, sorted, one call
//   BM_RawEntityRow*    the same requests on a layout of one record per entity (a copy of the
//                       data in a database of its own): one Seek or one MultiGet per entity
//   BM_Raw*Write        the write side of both layouts at its floor: a chunk of 256 entities'
//                       rows of one view read, replaced and written back (on copies of the data)
//
// The store is read as written (the memtable, level-0 files and level 1: what a store written
// through WriteBatch holds); with --compacted it is compacted first into one sorted run (what a
// bulk-loaded or fully compacted store holds).
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <random>
#include <string_view>

#include "../common/shape_batch.h"
#include "../common/sorted_multiget.h"
#include "granary/common/temp_dir.h"
#include "granary/online/rocksdb/rocksdb_store.h"
#include "granary/serving/grpc/feast_proto.h"
#include "granary/serving/grpc/feast_wire.h"
#include "granary/serving/json_format.h"
#include "granary/serving/online_features.h"

namespace granary {
namespace {

constexpr int kViews = 25;
constexpr int kFeatures = 10;
constexpr int64_t kEntities = 20'000;

bool& CompactedFlag() {
  static bool compacted = false;
  return compacted;
}

// The loaded store and the service over it, made once for all benchmarks.
struct Fixture {
  TempDir dir;
  std::shared_ptr<const Definitions> defs;
  std::unique_ptr<RocksDbOnlineStore> store;
  std::unique_ptr<OnlineFeaturesService> service;

  // Destroyed at exit: the store, then its folder.
  static Fixture& Get() {
    static std::unique_ptr<Fixture> fixture = Make();
    return *fixture;
  }

  static std::unique_ptr<Fixture> Make() {
    auto f = std::make_unique<Fixture>(Fixture{
        TempDir::Make("granary_response_bench_").ValueOrDie(),
        std::make_shared<Definitions>(MakeShapeDefinitions(kViews, kFeatures)), nullptr, nullptr});
    f->store = RocksDbOnlineStore::Open(f->dir.path() / "online", {}).ValueOrDie();
    auto layouts = MakeViewLayouts(*f->defs, Duration::Days(90)).ValueOrDie();
    const Timestamp event = SystemClock::Default().Now() - Duration::Hours(1);
    for (const auto& [name, layout] : layouts) {
      f->store->WriteBatch(*layout, *MakeShapeBatch(*layout, 0, kEntities, event)).ValueOrDie();
    }
    // --compacted: one sorted run, as a store is after a bulk load or a full compaction.
    if (CompactedFlag()) f->store->CompactAndCount().ValueOrDie();
    f->service =
        OnlineFeaturesService::Make(f->defs, f->store.get(), Duration::Days(90)).ValueOrDie();
    return f;
  }
};

// Request bodies for `batch` random entities, all 250 features, full feature names; in the
// compact form (no statuses, no event times) when asked.
std::vector<std::string> Bodies(int batch, bool compact = false) {
  std::mt19937_64 rng(batch);
  std::string features;
  for (int v = 0; v < kViews; ++v) {
    for (int f = 0; f < kFeatures; ++f) {
      features += fmt::format("{}\"view_{:02}:f{:02}\"", features.empty() ? "" : ",", v, f);
    }
  }
  std::vector<std::string> out;
  for (int i = 0; i < 64; ++i) {
    std::string ids;
    for (int e = 0; e < batch; ++e) {
      ids += fmt::format("{}{}", e ? "," : "", rng() % kEntities);
    }
    out.push_back(fmt::format(
        R"({{"features":[{}],"entities":{{"customer_id":[{}]}},"full_feature_names":true{}}})",
        features, ids,
        compact ? R"(,"include_statuses":false,"include_event_timestamps":false)" : ""));
  }
  return out;
}

std::vector<OnlineFeaturesRequest> Requests(int batch, bool compact = false) {
  std::vector<OnlineFeaturesRequest> out;
  for (const std::string& body : Bodies(batch, compact)) {
    out.push_back(ParseOnlineFeaturesRequest(body).ValueOrDie());
  }
  return out;
}

std::vector<ResolvedOnlineRequest> Resolved(int batch, bool compact = false) {
  std::vector<ResolvedOnlineRequest> out;
  for (const auto& r : Requests(batch, compact)) {
    out.push_back(Fixture::Get().service->Resolve(r).ValueOrDie());
  }
  return out;
}

void BM_ParseRequest(benchmark::State& state) {
  Fixture::Get();
  const auto bodies = Bodies(static_cast<int>(state.range(0)));
  size_t i = 0;
  for (auto _ : state) {
    auto r = ParseOnlineFeaturesRequest(bodies[i++ % bodies.size()]);
    benchmark::DoNotOptimize(r);
  }
}

void BM_Resolve(benchmark::State& state) {
  Fixture::Get();
  const auto requests = Requests(static_cast<int>(state.range(0)));
  size_t i = 0;
  for (auto _ : state) {
    auto r = Fixture::Get().service->Resolve(requests[i++ % requests.size()]);
    benchmark::DoNotOptimize(r);
  }
}

void BM_StoreRead(benchmark::State& state) {
  Fixture::Get();
  const auto resolved = Resolved(static_cast<int>(state.range(0)));
  size_t i = 0;
  for (auto _ : state) {
    auto r = Fixture::Get().store->Read(resolved[i++ % resolved.size()].read);
    benchmark::DoNotOptimize(r);
  }
}

// Writes answers of `write(resolved, read) -> bytes`, cycling through 64 reads of the
// benchmark's request size (state.range(0)) in Feast's shape or the compact form.
template <typename Write>
void CycleAnswers(benchmark::State& state, bool compact, Write write) {
  Fixture::Get();
  const auto resolved = Resolved(static_cast<int>(state.range(0)), compact);
  std::vector<OnlineFeatures> reads;
  for (const auto& r : resolved) reads.push_back(Fixture::Get().store->Read(r.read).ValueOrDie());
  size_t i = 0, bytes = 0;
  for (auto _ : state) {
    const size_t k = i++ % reads.size();
    std::string out = write(resolved[k], reads[k]);
    bytes += out.size();
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}

// The same, one read written again and again (in the caches, as in the server).
template <typename Write>
void RepeatAnswer(benchmark::State& state, bool compact, Write write) {
  Fixture::Get();
  const auto resolved = Resolved(static_cast<int>(state.range(0)), compact);
  const OnlineFeatures read = Fixture::Get().store->Read(resolved[0].read).ValueOrDie();
  size_t bytes = 0;
  for (auto _ : state) {
    std::string out = write(resolved[0], read);
    bytes += out.size();
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}

std::string Json(const ResolvedOnlineRequest& request, const OnlineFeatures& read) {
  std::string json;
  OnlineFeaturesService::WriteResponse(request, read, &json);
  return json;
}

void BM_WriteResponse(benchmark::State& state) { CycleAnswers(state, state.range(1) != 0, Json); }

void BM_FeastProto(benchmark::State& state) {
  CycleAnswers(state, false, [](const ResolvedOnlineRequest& request, const OnlineFeatures& read) {
    google::protobuf::Arena arena;
    auto* response =
        google::protobuf::Arena::Create<feast::serving::GetOnlineFeaturesResponse>(&arena);
    serving::ToFeastProto(request, read, response);
    std::string wire;
    response->SerializeToString(&wire);
    return wire;
  });
}

std::string Wire(const ResolvedOnlineRequest& request, const OnlineFeatures& read) {
  std::string wire;
  serving::WriteFeastResponse(request, read, &wire);
  return wire;
}

void BM_FeastWire(benchmark::State& state) { CycleAnswers(state, false, Wire); }
void BM_FeastWireWarm(benchmark::State& state) { RepeatAnswer(state, false, Wire); }

// The same answer written again and again: its read in the caches, as in the server, where the
// answer is written right after the read (BM_WriteResponse cycles through 64 reads, 16 MB for
// 100 entities, so it also times fetching each read from memory).
void BM_WriteResponseWarm(benchmark::State& state) {
  RepeatAnswer(state, state.range(1) != 0, Json);
}

// The shortest text of 12,500 float64 values, by std::to_chars (/0/x) and by FormatShortest
// (/1/x), the writer's: what one 100 x 250 answer's floats cost. Values as bench/serve's
// features hold them (/x/0: integers / 7, 17 significant digits, the slowest case) or with two
// decimals (/x/1: integers / 100).
void BM_ShortestFloat64(benchmark::State& state) {
  std::mt19937_64 rng(1);
  std::vector<double> values;
  const double divisor = state.range(1) != 0 ? 100.0 : 7.0;
  for (int i = 0; i < 12'500; ++i) {
    values.push_back(static_cast<double>(rng() % 1000000) / divisor);
  }
  std::vector<char> out(values.size() * 32 + 64);
  const bool fast = state.range(0) != 0;
  for (auto _ : state) {
    char* p = out.data();
    for (double d : values) {
      p = fast ? p + serving::FormatShortest(d, p) : std::to_chars(p, p + 32, d).ptr;
    }
    benchmark::DoNotOptimize(p);
  }
}

// The server's pool on this machine's two cores: the caller and one helper.
ForkJoinPool& SplitPool() {
  static ForkJoinPool pool(1);
  return pool;
}

void BM_ReadAndWrite(benchmark::State& state) {
  Fixture::Get();
  const auto resolved = Resolved(static_cast<int>(state.range(0)), state.range(2) != 0);
  ForkJoinPool* split = state.range(1) != 0 ? &SplitPool() : nullptr;
  size_t i = 0;
  for (auto _ : state) {
    const ResolvedOnlineRequest& request = resolved[i++ % resolved.size()];
    OnlineReadRequest read = request.read;
    read.split = split;
    auto features = Fixture::Get().store->Read(read);
    std::string json;
    OnlineFeaturesService::WriteResponse(request, *features, &json, split);
    benchmark::DoNotOptimize(json);
  }
}

void BM_CopyResponse(benchmark::State& state) {
  Fixture::Get();
  const auto resolved = Resolved(static_cast<int>(state.range(0)), state.range(1) != 0);
  std::string json;
  OnlineFeaturesService::WriteResponse(
      resolved[0], Fixture::Get().store->Read(resolved[0].read).ValueOrDie(), &json);
  size_t bytes = 0;
  for (auto _ : state) {
    std::string copy(json.size(), '\0');
    std::memcpy(copy.data(), json.data(), json.size());
    bytes += copy.size();
    benchmark::DoNotOptimize(copy);
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}

// The raw RocksDB reads of the same keys (entity key + view id), on a read-only handle of the
// same folder: one iterator, Seek per entity and Next through its 25 records (what
// OnlineStore::Read does, without the checks and the copy), or one MultiGet of every key of the
// request sorted (25 per entity).
rocksdb::DB* RawDb() {
  static std::unique_ptr<rocksdb::DB> db = [] {
    rocksdb::DB* raw = nullptr;
    rocksdb::Options options;
    rocksdb::BlockBasedTableOptions table;
    table.block_cache = rocksdb::NewLRUCache(256 << 20);
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    auto st = rocksdb::DB::OpenForReadOnly(options, (Fixture::Get().dir.path() / "online").string(),
                                           &raw);
    if (!st.ok()) std::abort();
    return std::unique_ptr<rocksdb::DB>(raw);
  }();
  return db.get();
}

// Entity keys of each request of `batch` entities, as the store reads them.
std::vector<std::vector<std::string>> EntityKeys(int batch) {
  std::vector<std::vector<std::string>> out;
  for (const auto& r : Resolved(batch)) {
    const EntityKeyColumn& keys = *r.read.views.at(0).keys;
    std::vector<std::string> one;
    for (size_t i = 0; i < keys.size(); ++i) one.emplace_back(keys.key(i));
    out.push_back(std::move(one));
  }
  return out;
}

void BM_RawSeekNext(benchmark::State& state) {
  const auto requests = EntityKeys(static_cast<int>(state.range(0)));
  rocksdb::DB* db = RawDb();
  size_t i = 0;
  for (auto _ : state) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    size_t bytes = 0;
    for (const std::string& key : requests[i++ % requests.size()]) {
      for (it->Seek(key); it->Valid() && it->key().starts_with(key); it->Next()) {
        bytes += it->value().size();
      }
    }
    benchmark::DoNotOptimize(bytes);
  }
}

void BM_RawMultiGet(benchmark::State& state) {
  const auto requests = EntityKeys(static_cast<int>(state.range(0)));
  std::vector<std::vector<std::string>> keys;
  for (const auto& entities : requests) {
    std::vector<std::string> all;
    for (const std::string& e : entities) {
      for (int v = 0; v < kViews; ++v) {
        const uint32_t id = ViewIdOf(fmt::format("view_{:02}", v));
        std::string k = e;
        for (int b = 24; b >= 0; b -= 8) k.push_back(static_cast<char>(id >> b));
        all.push_back(std::move(k));
      }
    }
    std::sort(all.begin(), all.end());
    keys.push_back(std::move(all));
  }
  rocksdb::DB* db = RawDb();
  size_t i = 0;
  SortedMultiGet multi_get;
  for (auto _ : state) {
    const auto& values = multi_get.Run(db, keys[i++ % keys.size()]);
    benchmark::DoNotOptimize(values.data());
  }
}

// A layout of one record per entity (not Granary's: docs/PERFORMANCE.md, "The RocksDB read of a
// large answer"), built from the store's records into a database of its own and compacted: key =
// entity key, value = each of the entity's records as (view id, varint length, record). What the
// read of the same requests would cost on it: one Seek per entity on one iterator, or one sorted
// MultiGet of the request's 100 keys. With per_view, the copy keeps Granary's layout (one record
// per entity and view), for the write benchmarks below to compare like with like.
std::unique_ptr<rocksdb::DB> CopyOfStore(const char* folder, bool per_view) {
  rocksdb::DB* raw = nullptr;
  rocksdb::Options options;
  options.create_if_missing = true;
  options.compression = rocksdb::kLZ4Compression;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(256 << 20);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  auto st = rocksdb::DB::Open(options, (Fixture::Get().dir.path() / folder).string(), &raw);
  if (!st.ok()) std::abort();
  std::unique_ptr<rocksdb::DB> out(raw);
  std::unique_ptr<rocksdb::Iterator> it(RawDb()->NewIterator(rocksdb::ReadOptions()));
  std::string entity, row;
  rocksdb::WriteBatch batch;
  auto flush_row = [&] {
    if (!row.empty()) batch.Put(entity, row);
    row.clear();
  };
  for (it->Seek(rocksdb::Slice("\x01", 1)); it->Valid(); it->Next()) {
    const rocksdb::Slice key = it->key(), value = it->value();
    if (per_view) {
      batch.Put(key, value);
      continue;
    }
    const std::string_view e(key.data(), key.size() - 4);
    if (e != entity) {
      flush_row();
      entity.assign(e);
    }
    row.append(key.data() + key.size() - 4, 4);
    uint64_t n = value.size();
    while (n >= 0x80) {
      row.push_back(static_cast<char>(n | 0x80));
      n >>= 7;
    }
    row.push_back(static_cast<char>(n));
    row.append(value.data(), value.size());
  }
  flush_row();
  if (!out->Write(rocksdb::WriteOptions(), &batch).ok()) std::abort();
  if (!out->CompactRange(rocksdb::CompactRangeOptions(), nullptr, nullptr).ok()) std::abort();
  return out;
}

rocksdb::DB* EntityRowDb() {
  static std::unique_ptr<rocksdb::DB> db = CopyOfStore("entity_rows", /*per_view=*/false);
  return db.get();
}

rocksdb::DB* PerViewCopyDb() {
  static std::unique_ptr<rocksdb::DB> db = CopyOfStore("per_view_copy", /*per_view=*/true);
  return db.get();
}

// The write side of the two layouts, each at its floor: a chunk of `range(0)` entities' rows of
// one view (the views in turn) read, replaced by a row of the same size and written back, as
// write-if-newer does (Granary's chunks are 256 rows). Per view: MultiGet of the chunk's records,
// Put of each. One record per entity: MultiGet of the entities' records, the view's section
// replaced in each, Put of the whole record. Process CPU time (flushes and compactions run on
// RocksDB's own threads) and wall time. They write into the copies: run after the reads.
std::vector<std::string> SortedEntityKeys() {
  std::vector<std::string> out;
  std::unique_ptr<rocksdb::Iterator> it(EntityRowDb()->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(rocksdb::Slice("\x01", 1)); it->Valid(); it->Next()) {
    out.push_back(it->key().ToString());
  }
  return out;
}

void BM_RawPerViewWrite(benchmark::State& state) {
  const auto entities = SortedEntityKeys();
  const size_t chunk = static_cast<size_t>(state.range(0));
  rocksdb::DB* db = PerViewCopyDb();
  size_t at = 0, view = 0;
  std::vector<std::string> keys(chunk);
  std::vector<rocksdb::Slice> slices(chunk);
  for (auto _ : state) {
    const uint32_t id = ViewIdOf(fmt::format("view_{:02}", view++ % kViews));
    for (size_t j = 0; j < chunk; ++j) {
      keys[j] = entities[(at + j) % entities.size()];
      for (int b = 24; b >= 0; b -= 8) keys[j].push_back(static_cast<char>(id >> b));
    }
    at = (at + chunk) % entities.size();
    std::sort(keys.begin(), keys.end());
    slices.assign(keys.begin(), keys.end());
    std::vector<rocksdb::PinnableSlice> values(chunk);
    std::vector<rocksdb::Status> statuses(chunk);
    db->MultiGet(rocksdb::ReadOptions(), db->DefaultColumnFamily(), chunk, slices.data(),
                 values.data(), statuses.data(), /*sorted_input=*/true);
    rocksdb::WriteBatch batch;
    std::string record;
    for (size_t j = 0; j < chunk; ++j) {
      record.assign(values[j].data(), values[j].size());
      if (!record.empty()) record.back() ^= 1;  // another row of the same size
      batch.Put(slices[j], record);
    }
    if (!db->Write(rocksdb::WriteOptions(), &batch).ok()) std::abort();
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

void BM_RawEntityRowWrite(benchmark::State& state) {
  const auto entities = SortedEntityKeys();
  const size_t chunk = static_cast<size_t>(state.range(0));
  rocksdb::DB* db = EntityRowDb();
  size_t at = 0, view = 0;
  std::vector<std::string> keys(chunk);
  std::vector<rocksdb::Slice> slices(chunk);
  for (auto _ : state) {
    const uint32_t id = ViewIdOf(fmt::format("view_{:02}", view++ % kViews));
    char id_bytes[4];
    for (int b = 0; b < 4; ++b) id_bytes[b] = static_cast<char>(id >> (24 - 8 * b));
    for (size_t j = 0; j < chunk; ++j) keys[j] = entities[(at + j) % entities.size()];
    at = (at + chunk) % entities.size();
    std::sort(keys.begin(), keys.end());
    slices.assign(keys.begin(), keys.end());
    std::vector<rocksdb::PinnableSlice> values(chunk);
    std::vector<rocksdb::Status> statuses(chunk);
    db->MultiGet(rocksdb::ReadOptions(), db->DefaultColumnFamily(), chunk, slices.data(),
                 values.data(), statuses.data(), /*sorted_input=*/true);
    rocksdb::WriteBatch batch;
    std::string row;
    for (size_t j = 0; j < chunk; ++j) {
      // Walk the sections to the view's and write the record with it replaced.
      row.assign(values[j].data(), values[j].size());
      size_t p = 0;
      while (p + 4 < row.size()) {
        const bool match = std::memcmp(row.data() + p, id_bytes, 4) == 0;
        p += 4;
        uint64_t n = 0;
        for (int shift = 0; p < row.size(); shift += 7) {
          const auto byte = static_cast<unsigned char>(row[p++]);
          n |= uint64_t{byte & 0x7fu} << shift;
          if (byte < 0x80) break;
        }
        if (match && n > 0) row[p + n - 1] ^= 1;  // another row of the same size
        p += n;
      }
      batch.Put(slices[j], row);
    }
    if (!db->Write(rocksdb::WriteOptions(), &batch).ok()) std::abort();
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

void BM_RawEntityRowSeek(benchmark::State& state) {
  const auto requests = EntityKeys(static_cast<int>(state.range(0)));
  rocksdb::DB* db = EntityRowDb();
  size_t i = 0;
  for (auto _ : state) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    size_t bytes = 0;
    for (const std::string& key : requests[i++ % requests.size()]) {
      it->Seek(key);
      if (it->Valid() && it->key() == key) bytes += it->value().size();
    }
    if (bytes == 0) std::abort();
    benchmark::DoNotOptimize(bytes);
  }
}

void BM_RawEntityRowMultiGet(benchmark::State& state) {
  auto requests = EntityKeys(static_cast<int>(state.range(0)));
  for (auto& r : requests) std::sort(r.begin(), r.end());
  rocksdb::DB* db = EntityRowDb();
  size_t i = 0;
  SortedMultiGet multi_get;
  for (auto _ : state) {
    const auto& values = multi_get.Run(db, requests[i++ % requests.size()]);
    benchmark::DoNotOptimize(values.data());
  }
}

BENCHMARK(BM_ParseRequest)->Arg(1)->Arg(100);
BENCHMARK(BM_Resolve)->Arg(1)->Arg(100);
BENCHMARK(BM_StoreRead)->Arg(1)->Arg(100);
// The response in Feast's shape (/x/0) and in the compact form (/x/1).
BENCHMARK(BM_WriteResponse)->ArgsProduct({{1, 100}, {0, 1}});
BENCHMARK(BM_WriteResponseWarm)->ArgsProduct({{1, 100}, {0, 1}});
BENCHMARK(BM_FeastProto)->Arg(1)->Arg(100);
BENCHMARK(BM_FeastWire)->Arg(1)->Arg(100);
BENCHMARK(BM_FeastWireWarm)->Arg(1)->Arg(100);
BENCHMARK(BM_ShortestFloat64)->ArgsProduct({{0, 1}, {0, 1}});
BENCHMARK(BM_CopyResponse)->ArgsProduct({{1, 100}, {0, 1}});
// Wall time, and the CPU time of the whole process (the caller and the helper): what splitting
// costs in all.
BENCHMARK(BM_ReadAndWrite)
    ->Args({1, 0, 0})
    ->Args({100, 0, 0})
    ->Args({100, 1, 0})
    ->Args({100, 0, 1})
    ->Args({100, 1, 1})
    ->UseRealTime()
    ->MeasureProcessCPUTime();
BENCHMARK(BM_RawSeekNext)->Arg(1)->Arg(100);
BENCHMARK(BM_RawMultiGet)->Arg(1)->Arg(100);
BENCHMARK(BM_RawEntityRowSeek)->Arg(1)->Arg(100);
BENCHMARK(BM_RawEntityRowMultiGet)->Arg(1)->Arg(100);
BENCHMARK(BM_RawPerViewWrite)->Arg(256)->UseRealTime()->MeasureProcessCPUTime();
BENCHMARK(BM_RawEntityRowWrite)->Arg(256)->UseRealTime()->MeasureProcessCPUTime();

}  // namespace
}  // namespace granary

// --compacted (ours, taken out before Google Benchmark's flags): compact the store after loading.
int main(int argc, char** argv) {
  int kept = 0;
  for (int i = 0; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--compacted") {
      granary::CompactedFlag() = true;
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
