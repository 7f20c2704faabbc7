// A feature repository for materialization tests: a temporary folder with Parquet source files
// written by the test, a registry with applied definitions, an online store of any kind (a real
// RocksDB folder, redis-server or Redis Cluster), and a manual clock.
#pragma once

#include <arrow/api.h>
#include <arrow/io/api.h>
#include <gtest/gtest.h>
#include <parquet/arrow/writer.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "granary/common/temp_dir.h"
#include "granary/materialize/materializer.h"
#include "granary/registry/loader.h"
#include "granary/registry/registry_store.h"
#include "granary/registry/validator.h"
#include "granary/testing/online_store_fixture.h"

namespace granary::testing {

inline Timestamp At(const char* text) { return ParseTimestamp(text).ValueOrDie(); }

// One view of customers, ttl 2 days, with created timestamps.
inline constexpr const char* kRiskDefinitions = R"yaml(
entities:
  - {name: customer, join_keys: [customer_id], value_type: int64}
data_sources:
  - name: payments
    path: data/payments
    timestamp_field: event_timestamp
    created_timestamp_column: created
feature_views:
  - name: risk
    entities: [customer]
    source: payments
    ttl: 2d
    schema:
      - {name: score, type: float64}
      - {name: failures, type: int64}
)yaml";

// A source row of the `risk` view.
struct RiskRow {
  int64_t customer_id;
  Timestamp event;
  std::optional<Timestamp> created;
  double score;
  int64_t failures = 0;
};

// What the online store holds for one customer.
struct OnlineRisk {
  FeatureStatus status = FeatureStatus::kNotFound;
  Timestamp event;
  double score = 0;
  int64_t failures = 0;
  bool operator==(const OnlineRisk&) const = default;
};

inline std::ostream& operator<<(std::ostream& os, const OnlineRisk& r) {
  return os << FeatureStatusName(r.status) << " " << FormatTimestamp(r.event) << " " << r.score
            << " " << r.failures;
}

class TestRepo {
 public:
  // `kind`: rocksdb, redis or redis_cluster (shared servers, a project of its own).
  static std::unique_ptr<TestRepo> Make(const std::string& kind,
                                        const std::string& definitions = kRiskDefinitions) {
    static int serial = 0;
    std::unique_ptr<TestRepo> repo(new TestRepo());
    repo->dir_ = TempDir::Make("granary_mat_").ValueOrDie();
    RepoConfig& c = repo->config;
    c.root = repo->dir_->path();
    c.project = "mat" + std::to_string(getpid()) + "_" + std::to_string(++serial);
    c.online_store.type = kind;
    if (kind == "redis") {
      c.online_store.connection_string = SharedRedisServer().ValueOrDie()->address();
    } else if (kind == "redis_cluster") {
      c.online_store.nodes = SharedRedisCluster().ValueOrDie()->SeedNodes();
    }
    std::filesystem::create_directories(c.root / "data" / "payments");
    repo->Apply(definitions);
    return repo;
  }

  RepoConfig config;
  ManualClock clock{At("2026-11-25T12:00:00Z")};

  // Opens the store the tests read (and, for speed, the runs write through). RocksDB allows one
  // open store per folder: call CloseStore() before a run that must open its own.
  OnlineStore* store() {
    if (store_ == nullptr) {
      OnlineStoreOptions options;
      options.clock = &clock;
      store_ = OpenOnlineStore(config, options).ValueOrDie();
    }
    return store_.get();
  }
  void CloseStore() { store_.reset(); }

  // Applies definitions as a new registry version.
  void Apply(const std::string& yaml) {
    Diagnostics diag;
    Definitions defs;
    LoadDefinitionsText("defs.yaml", yaml, &defs, &diag);
    ValidateDefinitions(defs, nullptr, &diag);
    ASSERT_FALSE(diag.has_errors()) << diag.ToStatus().ToString();
    defs.project = config.project;
    auto registry = OpenSqliteRegistry(config.RegistryPath(), OpenMode::kCreateIfMissing);
    ASSERT_TRUE(registry.ok()) << registry.status().ToString();
    ASSERT_TRUE((*registry)->Commit(defs, clock.Now()).ok());
    defs_ = defs;
  }

  std::unique_ptr<RegistryStore> Registry() {
    return OpenSqliteRegistry(config.RegistryPath(), OpenMode::kOpenExisting).ValueOrDie();
  }
  std::optional<Timestamp> Watermark(const std::string& view = "risk") {
    auto marks = Registry()->Watermarks().ValueOrDie();
    auto it = marks.find(view);
    return it == marks.end() ? std::nullopt : std::optional<Timestamp>(it->second);
  }

  // Writes data/payments/<name>.parquet (row groups of `row_group_rows`).
  void WriteRows(const std::string& name, const std::vector<RiskRow>& rows,
                 int64_t row_group_rows = 1 << 20) {
    auto ts_type = arrow::timestamp(arrow::TimeUnit::MICRO, "UTC");
    arrow::Int64Builder ids, failures;
    arrow::TimestampBuilder events(ts_type, arrow::default_memory_pool());
    arrow::TimestampBuilder created(ts_type, arrow::default_memory_pool());
    arrow::DoubleBuilder scores;
    for (const RiskRow& r : rows) {
      ASSERT_TRUE(ids.Append(r.customer_id).ok());
      ASSERT_TRUE(events.Append(r.event.micros).ok());
      ASSERT_TRUE((r.created ? created.Append(r.created->micros) : created.AppendNull()).ok());
      ASSERT_TRUE(scores.Append(r.score).ok());
      ASSERT_TRUE(failures.Append(r.failures).ok());
    }
    auto table = arrow::Table::Make(
        arrow::schema({arrow::field("customer_id", arrow::int64()),
                       arrow::field("event_timestamp", ts_type), arrow::field("created", ts_type),
                       arrow::field("score", arrow::float64()),
                       arrow::field("failures", arrow::int64())}),
        {ids.Finish().ValueOrDie(), events.Finish().ValueOrDie(), created.Finish().ValueOrDie(),
         scores.Finish().ValueOrDie(), failures.Finish().ValueOrDie()});
    const auto path = config.root / "data" / "payments" / (name + ".parquet");
    auto out = arrow::io::FileOutputStream::Open(path.string()).ValueOrDie();
    ASSERT_TRUE(
        parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), out, row_group_rows).ok());
    ASSERT_TRUE(out->Close().ok());
  }

  MaterializeOptions Options() {
    MaterializeOptions o;
    o.clock = &clock;
    o.metrics = &metrics;
    o.write_threads = 2;
    o.store_options.clock = &clock;
    return o;
  }

  Result<MaterializeReport> Incremental(Timestamp end, const MaterializeOptions& options,
                                        const std::atomic<bool>* cancelled = nullptr) {
    MaterializeRequest request;
    request.kind = MaterializeRequest::Kind::kIncremental;
    request.end = end;
    request.trigger = "materialize-incremental";
    return Materialize(config, request, options, store(), cancelled);
  }
  Result<MaterializeReport> Incremental(Timestamp end) { return Incremental(end, Options()); }

  Result<MaterializeReport> Interval(Timestamp start, Timestamp end) {
    MaterializeRequest request;
    request.kind = MaterializeRequest::Kind::kInterval;
    request.start = start;
    request.end = end;
    return Materialize(config, request, Options(), store(), nullptr);
  }

  // The online `risk` row of each customer.
  std::map<int64_t, OnlineRisk> ReadRisk(const std::vector<int64_t>& ids,
                                         const std::string& view = "risk") {
    auto layouts = MakeViewLayouts(defs_, config.online_store.key_ttl).ValueOrDie();
    auto keys = std::make_shared<EntityKeyColumn>();
    for (int64_t id : ids) {
      entity_key::AppendInteger(keys->buffer(), id);
      keys->FinishKey();
    }
    OnlineReadRequest request;
    request.views.push_back(ViewRead{layouts.at(view), {0, 1}, keys});
    auto read = store()->Read(request);
    EXPECT_TRUE(read.ok()) << read.status().ToString();
    std::map<int64_t, OnlineRisk> out;
    if (!read.ok()) return out;
    for (size_t r = 0; r < ids.size(); ++r) {
      OnlineRisk row;
      row.status = read->row_status(0, r);
      if (row.status == FeatureStatus::kPresent) {
        row.event = read->event_timestamp(0, r);
        auto score = read->value(0, 0, r);
        auto failures = read->value(0, 1, r);
        if (!score.is_null()) row.score = score.AsFloat64();
        if (!failures.is_null()) row.failures = failures.AsInt64();
      }
      out[ids[r]] = row;
    }
    return out;
  }

  MetricsRegistry metrics;
  const Definitions& definitions() const { return defs_; }

 private:
  TestRepo() = default;
  std::optional<TempDir> dir_;
  Definitions defs_;
  std::unique_ptr<OnlineStore> store_;
};

}  // namespace granary::testing
