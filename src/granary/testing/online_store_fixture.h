// A store of each kind for tests, with whatever it runs on: a temporary folder, or a redis-server
// or 3+3 Redis Cluster shared by every test of the process (started on first use, stopped at
// exit); each Redis fixture has a project of its own, so tests never see each other's keys.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "granary/common/temp_dir.h"
#include "granary/online/online_store.h"
#include "granary/online/redis/redis_store.h"
#include "granary/online/rocksdb/rocksdb_store.h"
#include "granary/registry/repo_config.h"
#include "granary/testing/redis_server.h"

namespace granary::testing {

class StoreFixture {
 public:
  virtual ~StoreFixture() = default;
  OnlineStore* store() { return store_.get(); }

 protected:
  std::unique_ptr<OnlineStore> store_;
};

inline std::vector<std::string> StoreKinds() { return {"rocksdb", "redis", "redis_cluster"}; }

inline Result<RedisServer*> SharedRedisServer() {
  static Result<std::unique_ptr<RedisServer>> server = RedisServer::Start();
  if (!server.ok()) return server.status();
  return server->get();
}

inline Result<RedisCluster*> SharedRedisCluster() {
  static Result<std::unique_ptr<RedisCluster>> cluster = RedisCluster::Start();
  if (!cluster.ok()) return cluster.status();
  return cluster->get();
}

// Options for a store on the shared server or cluster, with a project of its own.
inline Result<RedisOnlineStore::Options> SharedRedisOptions(bool cluster, const Clock* clock) {
  static int projects = 0;
  RedisOnlineStore::Options options;
  options.cluster = cluster;
  options.project = "test" + std::to_string(++projects);
  options.clock = clock;
  if (cluster) {
    GRANARY_ASSIGN_OR_RAISE(RedisCluster * c, SharedRedisCluster());
    options.nodes = c->SeedNodes();
  } else {
    GRANARY_ASSIGN_OR_RAISE(RedisServer * s, SharedRedisServer());
    options.nodes = {s->address()};
  }
  return options;
}

class RedisFixture : public StoreFixture {
 public:
  static Result<std::unique_ptr<StoreFixture>> Start(bool cluster, const Clock* clock) {
    std::unique_ptr<RedisFixture> f(new RedisFixture());
    GRANARY_ASSIGN_OR_RAISE(auto options, SharedRedisOptions(cluster, clock));
    GRANARY_ASSIGN_OR_RAISE(auto store, RedisOnlineStore::Open(options));
    f->store_ = std::move(store);
    return std::unique_ptr<StoreFixture>(std::move(f));
  }
};

class RocksDbFixture : public StoreFixture {
 public:
  static Result<std::unique_ptr<StoreFixture>> Start(const Clock* clock) {
    std::unique_ptr<RocksDbFixture> f(new RocksDbFixture());
    GRANARY_ASSIGN_OR_RAISE(f->dir_, TempDir::Make("granary_rocks_"));
    RocksDbOnlineStore::Options options;
    options.clock = clock;
    GRANARY_ASSIGN_OR_RAISE(auto store,
                            RocksDbOnlineStore::Open(f->dir_->path() / "online", options));
    f->store_ = std::move(store);
    return std::unique_ptr<StoreFixture>(std::move(f));
  }

 private:
  std::optional<TempDir> dir_;
};

// A Redis store as granary.yaml names it, for tests of its settings: the repository's
// online_store of `type` "redis" (`nodes`: its one address) or "redis_cluster" (its seed nodes),
// and the options of a caller whose own timeouts (120 s, longer than any test may wait) the
// settings a test puts in `config.online_store` must win over. Open it with OpenOnlineStore.
struct GranaryYamlRedis {
  RepoConfig config;
  OnlineStoreOptions options;
};

inline GranaryYamlRedis GranaryYamlRedisStore(const std::string& type,
                                              std::vector<std::string> nodes,
                                              const Clock* clock = &SystemClock::Default()) {
  GranaryYamlRedis out;
  out.config.root = "/repo";
  out.config.project = "yaml_timeouts";
  out.config.online_store.type = type;
  if (type == "redis_cluster") {
    out.config.online_store.nodes = std::move(nodes);
  } else if (!nodes.empty()) {
    out.config.online_store.connection_string = nodes.front();
  }
  out.options.clock = clock;
  out.options.connect_timeout = Duration::Seconds(120);
  out.options.request_timeout = Duration::Seconds(120);
  return out;
}

inline Result<std::unique_ptr<StoreFixture>> StartStoreFixture(const std::string& kind,
                                                               const Clock* clock) {
  if (kind == "rocksdb") return RocksDbFixture::Start(clock);
  if (kind == "redis") return RedisFixture::Start(false, clock);
  if (kind == "redis_cluster") return RedisFixture::Start(true, clock);
  return Status::InvalidArgument("unknown store kind " + kind);
}

}  // namespace granary::testing
