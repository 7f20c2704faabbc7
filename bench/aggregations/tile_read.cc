// tile_read: the online read of window aggregations (docs/ONLINE_LAYOUT.md, "Tiles"): one entity x
// 8 aggregations with 30-day windows at 1 h tiles (720 tiles per entity, every hour holding
// events), on RocksDB and on a redis-server over loopback started here, beside the raw fetch of
// the same stored value in the same run (RocksDB Get; a hiredis GET), so the cost of the fold
// shows. See docs/PERFORMANCE.md.
//
//   build/bench/tile_read [--entities N] [--reads N] [--rounds N]
// Layouts: the 720 hourly records alone; with the daily roll-ups materialization writes; and the
// same after a push into each of the 29 whole days (records appended after the roll-ups).
//
// Figures: p50 and p99 of single-entity reads (OnlineStore::Read: fetch, fold, body, statuses)
// of three layouts: the 720 fine records alone (as before roll-ups), with daily roll-ups (as
// materialization writes them: 48 fine records and 29-30 roll-ups folded), and the latter after
// a push into every day (each roll-up merged with the pushed record after it; before that
// reads folded every fine record of a pushed day, as the first layout does); medians over the
// rounds; the stored bytes per entity.
#include <arrow/api.h>
#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <rocksdb/db.h>

#include <algorithm>
#include <chrono>
#include <random>

#include "granary/common/temp_dir.h"
#include "granary/online/online_store.h"
#include "granary/online/redis/redis_store.h"
#include "granary/online/rocksdb/rocksdb_store.h"
#include "granary/online/tile_events.h"
#include "granary/testing/redis_server.h"

namespace granary {
namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr int64_t kHour = 3'600'000'000;

struct Config {
  int64_t entities = 2000;
  int reads = 5000;
  int rounds = 5;
};

Definitions BenchDefinitions() {
  Definitions defs;
  Entity customer;
  customer.name = "customer";
  customer.join_keys = {"customer_id"};
  customer.join_key_types = {ValueType::Scalar(ScalarType::kInt64)};
  defs.entities.push_back(customer);
  FeatureView v;
  v.name = "payments_30d";
  v.entities = {"customer"};
  v.source = "payments";
  v.granularity = Duration::Hours(1);
  auto agg = [](const char* name, AggregationFunction f, const char* column, const char* where,
                ScalarType type) {
    Aggregation a;
    a.name = name;
    a.function = f;
    a.column = column;
    a.where = where;
    a.window = Duration::Days(30);
    a.type = ValueType::Scalar(type);
    return a;
  };
  using F = AggregationFunction;
  v.aggregations = {agg("payments", F::kCount, "", "", ScalarType::kInt64),
                    agg("failures", F::kCount, "", "failed", ScalarType::kInt64),
                    agg("spend", F::kSum, "amount", "", ScalarType::kFloat64),
                    agg("mean_amount", F::kMean, "amount", "", ScalarType::kFloat64),
                    agg("min_amount", F::kMin, "amount", "", ScalarType::kFloat64),
                    agg("max_amount", F::kMax, "amount", "", ScalarType::kFloat64),
                    agg("last_amount", F::kLast, "amount", "", ScalarType::kFloat64),
                    agg("stddev_amount", F::kStddev, "amount", "", ScalarType::kFloat64)};
  defs.feature_views.push_back(v);
  return defs;
}

// Writes 720 hourly tiles (2 events each) for every entity, as materialization does: with the
// roll-ups of the whole days (30 of 1 day, docs/ONLINE_LAYOUT.md "Tiles"), or, with `rollups`
// false, the fine records alone (the layout before roll-ups, kept as the comparison).
Status Load(OnlineStore& store, const ViewLayout& tiles, const FeatureView& view,
            const Config& config, Timestamp now, bool rollups) {
  std::mt19937_64 rng(1);
  const int64_t first = now.micros / kHour * kHour - 719 * kHour;
  for (int64_t begin = 0; begin < config.entities; begin += 100) {
    const int64_t end = std::min(config.entities, begin + 100);
    arrow::Int64Builder ids;
    arrow::TimestampBuilder times(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                                  arrow::default_memory_pool());
    arrow::DoubleBuilder amounts;
    arrow::BooleanBuilder failed;
    for (int64_t id = begin; id < end; ++id) {
      for (int64_t h = 0; h < 720; ++h) {
        for (int e = 0; e < 2; ++e) {
          (void)ids.Append(id);
          (void)times.Append(first + h * kHour + e * 60'000'000);
          (void)amounts.Append(static_cast<double>(rng() % 10000) / 100);
          (void)failed.Append(rng() % 10 == 0);
        }
      }
    }
    std::shared_ptr<arrow::Array> a, b, c, d;
    (void)ids.Finish(&a);
    (void)times.Finish(&b);
    (void)amounts.Finish(&c);
    (void)failed.Finish(&d);
    auto batch = arrow::RecordBatch::Make(
        arrow::schema({arrow::field("customer_id", a->type()),
                       arrow::field("event_timestamp", b->type()),
                       arrow::field("amount", c->type()), arrow::field("failed", d->type())}),
        a->length(), {a, b, c, d});
    aggregation::TileAccumulator acc(*tiles.tiles());
    GRANARY_RETURN_NOT_OK(AddEventsToTiles(tiles, view, *batch, &acc));
    EntityKeyColumn keys;
    std::vector<std::string> records;
    std::optional<aggregation::RollupRange> range;
    if (rollups)
      range = aggregation::RollupRange{tiles.tiles()->ExpireBefore(now.micros), now.micros};
    TileWrites(*tiles.tiles(), acc, &keys, &records, range);
    TileWriteOptions options;
    options.replace_through = now;
    options.expire_before = Timestamp::FromMicros(tiles.tiles()->ExpireBefore(now.micros));
    GRANARY_RETURN_NOT_OK(store.WriteTiles(tiles, keys, records, options).status());
  }
  return Status::OK();
}

// A push into each day of the window for every entity (one event at 30 minutes past the hour
// of that day's 24-hour mark), each day a WriteTiles of its own as /push appends them: records
// after the daily roll-ups.
Status PushIntoEveryDay(OnlineStore& store, const ViewLayout& tiles, const FeatureView& view,
                        const Config& config, Timestamp now) {
  const int64_t first = now.micros / kHour * kHour - 719 * kHour;
  for (int day = 1; day < 30; ++day) {
    for (int64_t begin = 0; begin < config.entities; begin += 1000) {
      const int64_t end = std::min(config.entities, begin + 1000);
      arrow::Int64Builder ids;
      arrow::TimestampBuilder times(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                                    arrow::default_memory_pool());
      arrow::DoubleBuilder amounts;
      arrow::BooleanBuilder failed;
      for (int64_t id = begin; id < end; ++id) {
        (void)ids.Append(id);
        (void)times.Append(first + day * 24 * kHour + 30 * 60'000'000);
        (void)amounts.Append(1.0);
        (void)failed.Append(true);
      }
      std::shared_ptr<arrow::Array> a, b, c, d;
      (void)ids.Finish(&a);
      (void)times.Finish(&b);
      (void)amounts.Finish(&c);
      (void)failed.Finish(&d);
      auto batch = arrow::RecordBatch::Make(
          arrow::schema({arrow::field("customer_id", a->type()),
                         arrow::field("event_timestamp", b->type()),
                         arrow::field("amount", c->type()), arrow::field("failed", d->type())}),
          a->length(), {a, b, c, d});
      aggregation::TileAccumulator acc(*tiles.tiles());
      GRANARY_RETURN_NOT_OK(AddEventsToTiles(tiles, view, *batch, &acc));
      EntityKeyColumn keys;
      std::vector<std::string> records;
      TileWrites(*tiles.tiles(), acc, &keys, &records, std::nullopt);
      TileWriteOptions options;  // a push: adds, replaces nothing
      options.expire_before = Timestamp::FromMicros(tiles.tiles()->ExpireBefore(now.micros));
      GRANARY_RETURN_NOT_OK(store.WriteTiles(tiles, keys, records, options).status());
    }
  }
  return Status::OK();
}

struct Figures {
  double p50_us = 0, p99_us = 0;
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Times `read(entity)` over random entities; medians over rounds of each round's p50 and p99.
template <typename Read>
Result<Figures> Measure(const Config& config, Read read) {
  std::mt19937_64 rng(7);
  std::vector<double> p50s, p99s;
  for (int round = 0; round < config.rounds; ++round) {
    std::vector<double> us;
    for (int i = 0; i < config.reads / config.rounds; ++i) {
      const int64_t id = static_cast<int64_t>(rng() % config.entities);
      const auto start = SteadyClock::now();
      GRANARY_RETURN_NOT_OK(read(id));
      us.push_back(std::chrono::duration<double, std::micro>(SteadyClock::now() - start).count());
    }
    std::sort(us.begin(), us.end());
    p50s.push_back(us[us.size() / 2]);
    p99s.push_back(us[us.size() * 99 / 100]);
  }
  return Figures{Median(p50s), Median(p99s)};
}

Status Run(const Config& config) {
  const Definitions defs = BenchDefinitions();
  GRANARY_ASSIGN_OR_RAISE(ViewLayouts layouts, MakeViewLayouts(defs, Duration::Days(90)));
  std::shared_ptr<const ViewLayout> tiles = layouts.at("payments_30d")->tile_layout();
  const Timestamp now = SystemClock::Default().Now();
  int64_t expected = 1440;  // 720 tiles of 2 events; 29 more after PushIntoEveryDay
  auto read_one = [&](OnlineStore& store, int64_t id) -> Status {
    OnlineReadRequest request;
    auto keys = std::make_shared<EntityKeyColumn>();
    entity_key::AppendInteger(keys->buffer(), id);
    keys->FinishKey();
    request.views.push_back(ViewRead{tiles, {0, 1, 2, 3, 4, 5, 6, 7}, keys});
    GRANARY_ASSIGN_OR_RAISE(OnlineFeatures got, store.Read(request));
    if (got.status(0, 0, 0) != FeatureStatus::kPresent ||
        got.value(0, 0, 0).AsInt64() != expected) {
      return Status::Internal(fmt::format("entity {}: unexpected count", id));
    }
    return Status::OK();
  };
  fmt::print(
      "tile_read: 1 entity x 8 aggregations, 30-day windows at 1 h tiles (720 tiles of 2 "
      "events), {} entities, {} reads in {} rounds; medians of the rounds\n",
      config.entities, config.reads, config.rounds);
  fmt::print("{:<10} {:<34} {:>10} {:>10}\n", "store", "read", "p50 us", "p99 us");

  {  // RocksDB
    GRANARY_ASSIGN_OR_RAISE(TempDir dir, TempDir::Make("tile_read"));
    RocksDbOnlineStore::Options options;
    Figures fine_only;
    {
      GRANARY_ASSIGN_OR_RAISE(auto store, RocksDbOnlineStore::Open(dir.path() / "fine", options));
      GRANARY_RETURN_NOT_OK(Load(*store, *tiles, defs.feature_views[0], config, now, false));
      GRANARY_ASSIGN_OR_RAISE(fine_only,
                              Measure(config, [&](int64_t id) { return read_one(*store, id); }));
    }
    GRANARY_ASSIGN_OR_RAISE(auto store, RocksDbOnlineStore::Open(dir.path() / "db", options));
    GRANARY_RETURN_NOT_OK(Load(*store, *tiles, defs.feature_views[0], config, now, true));
    GRANARY_ASSIGN_OR_RAISE(Figures granary,
                            Measure(config, [&](int64_t id) { return read_one(*store, id); }));
    GRANARY_RETURN_NOT_OK(PushIntoEveryDay(*store, *tiles, defs.feature_views[0], config, now));
    expected = 1440 + 29;
    GRANARY_ASSIGN_OR_RAISE(Figures pushed,
                            Measure(config, [&](int64_t id) { return read_one(*store, id); }));
    expected = 1440;
    store.reset();
    rocksdb::DB* raw = nullptr;
    rocksdb::Options raw_options;
    auto st = rocksdb::DB::OpenForReadOnly(raw_options, (dir.path() / "db").string(), &raw);
    if (!st.ok()) return Status::IOError(st.ToString());
    std::unique_ptr<rocksdb::DB> db(raw);
    int64_t bytes = 0;
    GRANARY_ASSIGN_OR_RAISE(Figures baseline, Measure(config, [&](int64_t id) -> Status {
                              std::string key, value;
                              entity_key::AppendInteger(&key, id);
                              const uint32_t vid = tiles->view_id();
                              for (int s = 24; s >= 0; s -= 8) key.push_back(char(vid >> s));
                              auto got = db->Get(rocksdb::ReadOptions(), key, &value);
                              if (!got.ok()) return Status::Internal(got.ToString());
                              bytes = static_cast<int64_t>(value.size());
                              return Status::OK();
                            }));
    fmt::print("{:<10} {:<34} {:>10.1f} {:>10.1f}\n", "rocksdb", "Granary Read, 720 fine records",
               fine_only.p50_us, fine_only.p99_us);
    fmt::print("{:<10} {:<34} {:>10.1f} {:>10.1f}\n", "rocksdb", "Granary Read, daily roll-ups",
               granary.p50_us, granary.p99_us);
    fmt::print("{:<10} {:<34} {:>10.1f} {:>10.1f}\n", "rocksdb",
               "Granary Read, roll-ups + 29 pushes", pushed.p50_us, pushed.p99_us);
    fmt::print("{:<10} {:<34} {:>10.1f} {:>10.1f}   ({} bytes per entity)\n", "rocksdb",
               "baseline: Get of the same value", baseline.p50_us, baseline.p99_us, bytes);
  }
  {  // Redis over loopback
    GRANARY_ASSIGN_OR_RAISE(auto server, testing::RedisServer::Start());
    RedisOnlineStore::Options options;
    options.nodes = {server->address()};
    options.project = "bench_fine";
    // The push step rewrites 64 bodies of 120 KB per script call: on a loaded machine that can
    // take longer than the default 2 s, which is not what is measured here. The store is opened
    // without a repository, so this is what `online_store.request_timeout: 60s` in granary.yaml
    // gives a run (docs/ONLINE_LAYOUT.md, Timeouts).
    options.request_timeout = Duration::Seconds(60);
    Figures fine_only;
    {
      GRANARY_ASSIGN_OR_RAISE(auto store, RedisOnlineStore::Open(options));
      GRANARY_RETURN_NOT_OK(Load(*store, *tiles, defs.feature_views[0], config, now, false));
      GRANARY_ASSIGN_OR_RAISE(fine_only,
                              Measure(config, [&](int64_t id) { return read_one(*store, id); }));
    }
    options.project = "bench";
    GRANARY_ASSIGN_OR_RAISE(auto store, RedisOnlineStore::Open(options));
    GRANARY_RETURN_NOT_OK(Load(*store, *tiles, defs.feature_views[0], config, now, true));
    GRANARY_ASSIGN_OR_RAISE(Figures granary,
                            Measure(config, [&](int64_t id) { return read_one(*store, id); }));
    redisContext* ctx = redisConnect("127.0.0.1", server->port());
    if (ctx == nullptr || ctx->err) return Status::Unavailable("hiredis cannot connect");
    int64_t bytes = 0;
    GRANARY_ASSIGN_OR_RAISE(Figures baseline, Measure(config, [&](int64_t id) -> Status {
                              std::string key = "bench:";
                              entity_key::AppendInteger(&key, id);
                              auto* reply = static_cast<redisReply*>(
                                  redisCommand(ctx, "GET %b", key.data(), key.size()));
                              if (reply == nullptr) return Status::Unavailable("GET failed");
                              bytes = static_cast<int64_t>(reply->len);
                              freeReplyObject(reply);
                              return Status::OK();
                            }));
    redisFree(ctx);
    GRANARY_RETURN_NOT_OK(PushIntoEveryDay(*store, *tiles, defs.feature_views[0], config, now));
    expected = 1440 + 29;
    GRANARY_ASSIGN_OR_RAISE(Figures pushed,
                            Measure(config, [&](int64_t id) { return read_one(*store, id); }));
    fmt::print("{:<10} {:<34} {:>10.1f} {:>10.1f}\n", "redis", "Granary Read, 720 fine records",
               fine_only.p50_us, fine_only.p99_us);
    fmt::print("{:<10} {:<34} {:>10.1f} {:>10.1f}\n", "redis", "Granary Read, daily roll-ups",
               granary.p50_us, granary.p99_us);
    fmt::print("{:<10} {:<34} {:>10.1f} {:>10.1f}\n", "redis", "Granary Read, roll-ups + 29 pushes",
               pushed.p50_us, pushed.p99_us);
    fmt::print("{:<10} {:<34} {:>10.1f} {:>10.1f}   ({} bytes per entity)\n", "redis",
               "baseline: hiredis GET of the value", baseline.p50_us, baseline.p99_us, bytes);
  }
  return Status::OK();
}

}  // namespace
}  // namespace granary

int main(int argc, char** argv) {
  granary::Config config;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--entities")
      config.entities = std::stoll(argv[i + 1]);
    else if (flag == "--reads")
      config.reads = std::stoi(argv[i + 1]);
    else if (flag == "--rounds")
      config.rounds = std::stoi(argv[i + 1]);
    else {
      fmt::print(stderr, "tile_read: unknown flag {}\n", flag);
      return 2;
    }
  }
  granary::Status st = granary::Run(config);
  if (!st.ok()) {
    fmt::print(stderr, "tile_read: {}\n", st.ToString());
    return 1;
  }
  return 0;
}
