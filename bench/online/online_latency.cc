// online_latency: online read latency of Granary's stores beside raw baselines measured in the same
// run, in Feast's public benchmark shape (25 views x 10 features = 250 features per entity,
// 1M entities, requests of 1, 10, 100 and 500 entities). See docs/PERFORMANCE.md.
//
//   build/bench/online_latency [--entities N] [--requests N] [--rounds N]
//       [--batches 1,10,100,500] [--stores rocksdb,redis,redis_cluster] [--rocksdb-cache-mb N]
//
// For each store it loads the entities (through OnlineStore::WriteBatch, timed), then for each
// batch size measures, in rounds that alternate between them:
//   - Granary Read (decoded values, statuses, ttl checks): p50, p99, requests/s, entities/s;
//   - Granary Read + the feature server's JSON (OnlineFeaturesService, no HTTP);
//   - the baselines, no decoding: RocksDB MultiGet of the same records, and the same prefix scan
//     Granary does (Seek + Next); a minimal hiredis client pipelining GET of the same keys (to the
//     owning node in the cluster).
// Each contender reads its own uniformly random entities (none reads what another just warmed);
// the figures are the medians over the rounds of each round's p50, p99 and rate.
// Redis memory per entity (INFO used_memory) is printed beside the raw value bytes, and beside the
// memory of the same bodies stored as one hash per entity (one field per view), the layout the
// design started from. The Redis servers are started by the benchmark on free ports.
#include <arrow/api.h>
#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <random>
#include <thread>

#include "../common/shape_batch.h"
#include "granary/common/temp_dir.h"
#include "granary/online/redis/redis_store.h"
#include "granary/online/redis/slot_map.h"
#include "granary/online/rocksdb/rocksdb_store.h"
#include "granary/online/varint.h"
#include "granary/serving/online_features.h"
#include "granary/testing/redis_server.h"
#include "redis_baseline.h"

namespace granary {
namespace {

using bench::RawRedis;
using bench::RedisKey;
using bench::RewriteAsHashes;
using bench::UsedMemory;

using SteadyClock = std::chrono::steady_clock;

struct Config {
  int64_t entities = 1'000'000;
  int views = 25;
  int features = 10;
  int requests = 4000;  // per batch size (fewer for large batches, see RequestsFor)
  int rounds = 5;       // the requests are split in rounds; medians over rounds are printed
  size_t rocksdb_cache_mb = 256;
  std::vector<std::string> stores = {"rocksdb", "redis", "redis_cluster"};
  std::vector<int> batch_sizes = {1, 10, 100, 500};
};

int RequestsFor(const Config& c, int batch) {
  return std::max(100, std::min(c.requests, static_cast<int>(c.requests * 10 / (batch + 9))));
}

// 25 views of 10 features: 5 int64 then 5 float64 (80 raw bytes per view).
Definitions BenchDefinitions(const Config& c) {
  Definitions defs;
  defs.project = "bench";
  Entity customer;
  customer.name = "customer";
  customer.join_keys = {"customer_id"};
  customer.join_key_types = {ValueType::Scalar(ScalarType::kInt64)};
  defs.entities.push_back(customer);
  for (int v = 0; v < c.views; ++v) {
    FeatureView view;
    view.name = fmt::format("view_{:02}", v);
    view.entities = {"customer"};
    view.source = "src";
    for (int f = 0; f < c.features; ++f) {
      Field field;
      field.name = fmt::format("f{:02}", f);
      field.type =
          ValueType::Scalar(f < c.features / 2 ? ScalarType::kInt64 : ScalarType::kFloat64);
      view.schema.push_back(field);
    }
    defs.feature_views.push_back(view);
  }
  return defs;
}

struct Stats {
  double p50_us = 0, p99_us = 0, requests_per_s = 0;
};

template <typename F>
Stats Measure(int requests, F&& one) {
  std::vector<double> us;
  us.reserve(requests);
  const auto start = SteadyClock::now();
  for (int i = 0; i < requests; ++i) {
    const auto t0 = SteadyClock::now();
    one(i);
    us.push_back(std::chrono::duration<double, std::micro>(SteadyClock::now() - t0).count());
  }
  const double total_s = std::chrono::duration<double>(SteadyClock::now() - start).count();
  std::sort(us.begin(), us.end());
  Stats s;
  s.p50_us = us[us.size() / 2];
  s.p99_us = us[std::min(us.size() - 1, us.size() * 99 / 100)];
  s.requests_per_s = requests / total_s;
  return s;
}

Stats Median(std::vector<Stats> rounds) {
  auto median = [&](double Stats::*field) {
    std::vector<double> v;
    for (const Stats& s : rounds) v.push_back(s.*field);
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  return Stats{median(&Stats::p50_us), median(&Stats::p99_us), median(&Stats::requests_per_s)};
}

void PrintRow(std::string_view store, int batch, std::string_view what, const Stats& s) {
  fmt::print("{:<14} {:>5}  {:<26} {:>9.1f} {:>9.1f} {:>10.0f} {:>12.0f}\n", store, batch, what,
             s.p50_us, s.p99_us, s.requests_per_s, s.requests_per_s * batch);
}

// Random entities for `requests` requests; `seed` differs per contender and round.
std::vector<std::vector<int64_t>> RequestEntities(const Config& c, int batch, int requests,
                                                  uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::vector<int64_t>> out(requests);
  for (auto& r : out) {
    for (int i = 0; i < batch; ++i) r.push_back(static_cast<int64_t>(rng() % c.entities));
  }
  return out;
}

OnlineReadRequest ReadRequestFor(const ViewLayouts& layouts, const std::vector<int64_t>& ids) {
  auto keys = std::make_shared<EntityKeyColumn>();
  for (int64_t id : ids) {
    entity_key::AppendInteger(keys->buffer(), id);
    keys->FinishKey();
  }
  OnlineReadRequest request;
  for (const auto& [name, layout] : layouts) {
    std::vector<int> all(layout->features().size());
    for (size_t f = 0; f < all.size(); ++f) all[f] = static_cast<int>(f);
    request.views.push_back(ViewRead{layout, all, keys});
  }
  return request;
}

OnlineFeaturesRequest ServiceRequestFor(const Definitions& defs, const std::vector<int64_t>& ids) {
  OnlineFeaturesRequest request;
  request.full_feature_names = true;
  for (const auto& v : defs.feature_views) {
    for (const auto& f : v.schema) request.features.push_back(v.name + ":" + f.name);
  }
  OnlineFeaturesRequest::EntityColumn column;
  column.name = "customer_id";
  for (int64_t id : ids) column.values.emplace_back(id);
  request.entities.push_back(std::move(column));
  return request;
}

Status Load(OnlineStore& store, const Config& c, const ViewLayouts& layouts,
            std::string_view name) {
  const Timestamp event = SystemClock::Default().Now() - Duration::Hours(1);
  const auto start = SteadyClock::now();
  const int64_t chunk = 20'000;
  std::vector<std::pair<std::shared_ptr<const ViewLayout>, int64_t>> work;
  for (const auto& [n, layout] : layouts) {
    for (int64_t b = 0; b < c.entities; b += chunk) work.emplace_back(layout, b);
  }
  // Two writer threads, as the materializer would write several views at once.
  std::atomic<size_t> next{0};
  std::atomic<int64_t> rows{0};
  Status first;
  std::mutex mu;
  auto writer = [&] {
    for (size_t i = next++; i < work.size(); i = next++) {
      auto [layout, begin] = work[i];
      auto batch = MakeShapeBatch(*layout, begin, std::min(c.entities, begin + chunk), event);
      auto st = store.WriteBatch(*layout, *batch);
      if (!st.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first.ok()) first = st.status();
        return;
      }
      rows += st->written;
    }
  };
  std::thread a(writer), b(writer);
  a.join();
  b.join();
  GRANARY_RETURN_NOT_OK(first);
  const double s = std::chrono::duration<double>(SteadyClock::now() - start).count();
  fmt::print("load {:<14} {} view rows in {:.1f} s: {:.0f} rows/s ({:.0f} entities x 25 views)\n",
             name, rows.load(), s, rows.load() / s, static_cast<double>(c.entities));
  return Status::OK();
}

// ------------------------------------------------------------------------------- runs

Status RunStore(const Config& c, const std::string& kind, const Definitions& defs,
                const ViewLayouts& layouts) {
  std::optional<TempDir> dir;
  std::unique_ptr<testing::RedisServer> server;
  std::unique_ptr<testing::RedisCluster> cluster;
  std::unique_ptr<OnlineStore> store;
  RocksDbOnlineStore* rocks = nullptr;
  std::vector<std::string> masters;
  int64_t memory_before = 0;
  if (kind == "rocksdb") {
    GRANARY_ASSIGN_OR_RAISE(dir, TempDir::Make("granary_bench_"));
    RocksDbOnlineStore::Options options;
    options.block_cache_bytes = c.rocksdb_cache_mb << 20;
    GRANARY_ASSIGN_OR_RAISE(auto s, RocksDbOnlineStore::Open(dir->path() / "online", options));
    rocks = s.get();
    store = std::move(s);
  } else {
    RedisOnlineStore::Options o;
    o.project = "bench";
    o.cluster = kind == "redis_cluster";
    if (o.cluster) {
      GRANARY_ASSIGN_OR_RAISE(cluster, testing::RedisCluster::Start(3, 0));
      o.nodes = cluster->SeedNodes();
      masters = o.nodes;
      for (int n = 0; n < 3; ++n) memory_before += UsedMemory(cluster->node(n));
    } else {
      GRANARY_ASSIGN_OR_RAISE(server, testing::RedisServer::Start());
      o.nodes = {server->address()};
      masters = o.nodes;
      memory_before = UsedMemory(*server);
    }
    GRANARY_ASSIGN_OR_RAISE(auto s, RedisOnlineStore::Open(o));
    store = std::move(s);
  }
  GRANARY_RETURN_NOT_OK(Load(*store, c, layouts, kind));
  if (!masters.empty()) {
    int64_t after = 0;
    if (cluster) {
      for (int n = 0; n < 3; ++n) after += UsedMemory(cluster->node(n));
    } else {
      after = UsedMemory(*server);
    }
    const double per_entity = static_cast<double>(after - memory_before) / c.entities;
    const int raw = c.views * c.features * 8;
    fmt::print(
        "memory {:<12} {:.0f} bytes per entity (INFO used_memory), raw values {} bytes: "
        "{:.2f}x\n",
        kind, per_entity, raw, per_entity / raw);
  }
  auto service = OnlineFeaturesService::Make(std::make_shared<Definitions>(defs), store.get(),
                                             Duration::Days(90))
                     .ValueOrDie();

  std::optional<RawRedis> raw;
  if (!masters.empty()) {
    GRANARY_ASSIGN_OR_RAISE(raw, RawRedis::Connect(masters, cluster != nullptr));
    GRANARY_RETURN_NOT_OK(raw->LoadSlots());
  }
  rocksdb::DB* raw_db = nullptr;
  std::unique_ptr<rocksdb::DB> raw_db_owner;
  if (rocks != nullptr) {
    // The baseline opens the same files read-only, beside the store's own handle, with the same
    // table settings (block cache, bloom filter) as RocksDbOnlineStore.
    rocksdb::Options options;
    rocksdb::BlockBasedTableOptions table;
    table.block_cache = rocksdb::NewLRUCache(c.rocksdb_cache_mb << 20);
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    GRANARY_RETURN_NOT_OK(rocks->CompactAndCount().status());
    auto st = rocksdb::DB::OpenForReadOnly(options, (dir->path() / "online").string(), &raw_db);
    if (!st.ok()) return Status::IOError(st.ToString());
    raw_db_owner.reset(raw_db);
  }
  // The store as a CLI or SDK reader opens it beside a running server: a secondary instance that
  // catches up with the writer before every read (docs/ONLINE_LAYOUT.md).
  std::unique_ptr<RocksDbOnlineStore> reader;
  if (rocks != nullptr) {
    RocksDbOnlineStore::Options options;
    options.block_cache_bytes = c.rocksdb_cache_mb << 20;
    options.read_only = true;
    GRANARY_ASSIGN_OR_RAISE(reader, RocksDbOnlineStore::Open(dir->path() / "online", options));
  }

  fmt::print("{:<14} {:>5}  {:<26} {:>9} {:>9} {:>10} {:>12}\n", "store", "batch", "what", "p50 us",
             "p99 us", "requests/s", "entities/s");
  for (int batch : c.batch_sizes) {
    const int per_round = std::max(20, RequestsFor(c, batch) / c.rounds);
    // The contenders of this store, each timing requests [0, n) of its own requests.
    struct Contender {
      std::string what;
      std::function<void(const std::vector<std::vector<int64_t>>&)> prepare;
      std::function<void(int)> run;
      std::vector<Stats> rounds;
    };
    std::vector<Contender> contenders;
    std::vector<OnlineReadRequest> reads;
    int64_t present = 0, asked = 0;
    contenders.push_back({"granary read",
                          [&](const auto& entities) {
                            reads.clear();
                            for (const auto& ids : entities)
                              reads.push_back(ReadRequestFor(layouts, ids));
                          },
                          [&](int i) {
                            auto got = store->Read(reads[i]);
                            if (!got.ok()) {
                              fmt::print(stderr, "read failed: {}\n", got.status().ToString());
                              std::exit(1);
                            }
                            present += got->row_status(0, 0) == FeatureStatus::kPresent;
                            ++asked;
                          },
                          {}});
    std::vector<OnlineReadRequest> reader_reads;
    if (reader != nullptr) {
      contenders.push_back({"granary read, read-only",
                            [&](const auto& entities) {
                              reader_reads.clear();
                              for (const auto& ids : entities)
                                reader_reads.push_back(ReadRequestFor(layouts, ids));
                            },
                            [&](int i) {
                              auto got = reader->Read(reader_reads[i]);
                              if (!got.ok()) {
                                fmt::print(stderr, "read-only read failed: {}\n",
                                           got.status().ToString());
                                std::exit(1);
                              }
                            },
                            {}});
    }
    std::vector<OnlineFeaturesRequest> service_requests;
    std::string json;
    contenders.push_back({"granary read + JSON",
                          [&](const auto& entities) {
                            service_requests.clear();
                            for (const auto& ids : entities) {
                              service_requests.push_back(ServiceRequestFor(defs, ids));
                            }
                          },
                          [&](int i) {
                            Status st = service->GetOnlineFeatures(service_requests[i], &json);
                            if (!st.ok()) {
                              fmt::print(stderr, "service: {}\n", st.ToString());
                              std::exit(1);
                            }
                          },
                          {}});
    std::vector<std::vector<std::string>> keys, prefixes;
    if (raw) {
      contenders.push_back({"baseline hiredis GET",
                            [&](const auto& entities) {
                              keys.clear();
                              for (const auto& ids : entities) {
                                keys.emplace_back();
                                for (int64_t id : ids) keys.back().push_back(RedisKey(id));
                              }
                            },
                            [&](int i) { raw->GetAll(keys[i]); },
                            {}});
    }
    if (raw_db != nullptr) {
      contenders.push_back({"baseline rocksdb MultiGet",
                            [&](const auto& entities) {
                              keys.clear();
                              for (const auto& ids : entities) {
                                keys.emplace_back();
                                for (int64_t id : ids) {
                                  for (const auto& [name, layout] : layouts) {
                                    std::string k;
                                    entity_key::AppendInteger(&k, id);
                                    layout::PutBigEndian32(&k, layout->view_id());
                                    keys.back().push_back(std::move(k));
                                  }
                                }
                              }
                            },
                            [&](int i) {
                              std::vector<rocksdb::Slice> slices(keys[i].begin(), keys[i].end());
                              std::vector<rocksdb::PinnableSlice> values(slices.size());
                              std::vector<rocksdb::Status> statuses(slices.size());
                              raw_db->MultiGet(rocksdb::ReadOptions(),
                                               raw_db->DefaultColumnFamily(), slices.size(),
                                               slices.data(), values.data(), statuses.data());
                            },
                            {}});
      contenders.push_back(
          {"baseline rocksdb Seek+Next",
           [&](const auto& entities) {
             prefixes.clear();
             for (const auto& ids : entities) {
               prefixes.emplace_back();
               for (int64_t id : ids) {
                 std::string k;
                 entity_key::AppendInteger(&k, id);
                 prefixes.back().push_back(std::move(k));
               }
             }
           },
           [&](int i) {
             std::unique_ptr<rocksdb::Iterator> it(raw_db->NewIterator(rocksdb::ReadOptions()));
             size_t bytes = 0;
             for (const std::string& prefix : prefixes[i]) {
               for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
                 bytes += it->value().size();
               }
             }
             if (bytes == 0) std::exit(1);
           },
           {}});
    }
    for (int round = 0; round < c.rounds; ++round) {
      for (size_t k = 0; k < contenders.size(); ++k) {
        Contender& contender = contenders[k];
        const uint64_t seed = (static_cast<uint64_t>(batch) << 32) ^ (round * 131 + k * 7 + 1);
        contender.prepare(RequestEntities(c, batch, per_round + 10, seed));
        for (int i = per_round; i < per_round + 10; ++i) contender.run(i);  // warm connections
        contender.rounds.push_back(Measure(per_round, contender.run));
      }
    }
    for (const Contender& contender : contenders) {
      PrintRow(kind, batch, contender.what, Median(contender.rounds));
    }
    if (present < asked) {
      return Status::Internal(
          fmt::format("only {} of {} reads found their entity", present, asked));
    }
  }
  if (raw) raw->Close();
  return Status::OK();
}

// The same bodies as one hash per entity (a field per view), against Granary's one string per
// entity, on a fresh server: memory per entity of each.
Status CompareLayouts(const Config& c, const ViewLayouts& layouts) {
  const int64_t n = std::min<int64_t>(c.entities, 50'000);
  GRANARY_ASSIGN_OR_RAISE(auto server, testing::RedisServer::Start());
  RedisOnlineStore::Options o;
  o.project = "bench";
  o.nodes = {server->address()};
  GRANARY_ASSIGN_OR_RAISE(auto store, RedisOnlineStore::Open(o));
  const int64_t empty = UsedMemory(*server);
  Config small = c;
  small.entities = n;
  GRANARY_RETURN_NOT_OK(Load(*store, small, layouts, "redis (sample)"));
  const int64_t strings = UsedMemory(*server) - empty;
  // Rewrite each entity's sections as hash fields, then drop the strings.
  GRANARY_ASSIGN_OR_RAISE(int64_t value_bytes, RewriteAsHashes(*server, n));
  const int64_t hashes = UsedMemory(*server) - empty;
  const double raw = c.views * c.features * 8;
  fmt::print(
      "layout sample of {} entities: stored value {:.0f} bytes per entity; Redis memory per "
      "entity: one string (Granary) {:.0f} ({:.2f}x raw), one hash with a field per view {:.0f} "
      "({:.2f}x raw)\n",
      n, static_cast<double>(value_bytes) / n, static_cast<double>(strings) / n, strings / n / raw,
      static_cast<double>(hashes) / n, hashes / n / raw);
  return Status::OK();
}

}  // namespace
}  // namespace granary

int main(int argc, char** argv) {
  granary::Config c;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--entities") {
      c.entities = std::stoll(value);
    } else if (flag == "--requests") {
      c.requests = std::stoi(value);
    } else if (flag == "--rounds") {
      c.rounds = std::max(1, std::stoi(value));
    } else if (flag == "--rocksdb-cache-mb") {
      c.rocksdb_cache_mb = std::stoul(value);
    } else if (flag == "--batches") {
      c.batch_sizes.clear();
      for (size_t s = 0; s <= value.size();) {
        size_t comma = value.find(',', s);
        if (comma == std::string::npos) comma = value.size();
        c.batch_sizes.push_back(std::stoi(value.substr(s, comma - s)));
        s = comma + 1;
      }
    } else if (flag == "--stores") {
      c.stores.clear();
      for (size_t s = 0; s <= value.size();) {
        size_t comma = value.find(',', s);
        if (comma == std::string::npos) comma = value.size();
        c.stores.push_back(value.substr(s, comma - s));
        s = comma + 1;
      }
    } else {
      fmt::print(stderr,
                 "usage: {} [--entities N] [--requests N] [--rounds N] [--batches 1,10,...] "
                 "[--stores a,b,c] [--rocksdb-cache-mb N]\n",
                 argv[0]);
      return 2;
    }
  }
  fmt::print(
      "online_latency: {} entities, {} views x {} features ({} features per entity, {} raw "
      "value bytes), {} cores\n",
      c.entities, c.views, c.features, c.views * c.features, c.views * c.features * 8,
      std::thread::hardware_concurrency());
  granary::Definitions defs = granary::BenchDefinitions(c);
  auto layouts = granary::MakeViewLayouts(defs, granary::Duration::Days(90)).ValueOrDie();
  for (const std::string& kind : c.stores) {
    granary::Status st = granary::RunStore(c, kind, defs, layouts);
    if (!st.ok()) {
      fmt::print(stderr, "{}: {}\n", kind, st.ToString());
      return 1;
    }
  }
  if (std::find(c.stores.begin(), c.stores.end(), "redis") == c.stores.end()) return 0;
  granary::Status st = granary::CompareLayouts(c, layouts);
  if (!st.ok()) {
    fmt::print(stderr, "layout comparison: {}\n", st.ToString());
    return 1;
  }
  return 0;
}
