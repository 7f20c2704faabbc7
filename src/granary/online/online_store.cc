#include "granary/online/online_store.h"

#include <fmt/format.h>

#include "granary/online/rocksdb/rocksdb_store.h"

namespace granary {

Result<std::unique_ptr<OnlineStore>> OpenOnlineStore(const RepoConfig& config,
                                                     const OnlineStoreOptions& options) {
  const OnlineStoreConfig& online = config.online_store;
  if (online.type == "rocksdb") {
    RocksDbOnlineStore::Options o;
    o.clock = options.clock;
    GRANARY_ASSIGN_OR_RAISE(auto store, RocksDbOnlineStore::Open(config.Resolve(online.path), o));
    return std::unique_ptr<OnlineStore>(std::move(store));
  }
  return Status::InvalidArgument(fmt::format(
      "{}: online_store.type '{}' is not an online store; use rocksdb, redis or redis_cluster",
      config.ConfigPath().string(), online.type));
}

}  // namespace granary
