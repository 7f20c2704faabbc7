#include "granary/online/online_store.h"

#include <fmt/format.h>

#include "granary/online/redis/redis_store.h"
#include "granary/online/rocksdb/rocksdb_store.h"

namespace granary {

Result<std::unique_ptr<OnlineStore>> OpenOnlineStore(const RepoConfig& config,
                                                     const OnlineStoreOptions& options) {
  const OnlineStoreConfig& online = config.online_store;
  if (online.type == "rocksdb") {
    RocksDbOnlineStore::Options o;
    o.clock = options.clock;
    o.read_only = options.read_only;
    GRANARY_ASSIGN_OR_RAISE(auto store, RocksDbOnlineStore::Open(config.Resolve(online.path), o));
    return std::unique_ptr<OnlineStore>(std::move(store));
  }
  if (online.type == "redis" || online.type == "redis_cluster") {
    RedisOnlineStore::Options o;
    o.cluster = online.type == "redis_cluster";
    o.username = online.username;
    o.password = online.password;
    if (o.cluster) {
      o.nodes = online.nodes;
      o.read_from_replicas = online.read_from_replicas;
    } else {
      GRANARY_RETURN_NOT_OK(RedisOnlineStore::ParseConnectionString(online.connection_string, &o)
                                .WithContext(config.ConfigPath().string()));
    }
    o.project = config.project;
    o.clock = options.clock;
    o.connect_timeout = options.connect_timeout;
    o.request_timeout = options.request_timeout;
    GRANARY_ASSIGN_OR_RAISE(auto store, RedisOnlineStore::Open(std::move(o)));
    return std::unique_ptr<OnlineStore>(std::move(store));
  }
  return Status::InvalidArgument(fmt::format(
      "{}: online_store.type '{}' is not an online store; use rocksdb, redis or redis_cluster",
      config.ConfigPath().string(), online.type));
}

}  // namespace granary
