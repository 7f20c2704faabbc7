#include "granary/online/online_store.h"

#include <fmt/format.h>

#include <charconv>

#include "granary/online/redis/redis_store.h"
#include "granary/online/rocksdb/rocksdb_store.h"

namespace granary {

std::string EncodeViewMarker(const ViewMarker& marker) {
  return fmt::format("v1 {} {} {}", marker.layout.empty() ? "-" : marker.layout,
                     marker.watermark.micros, marker.run_id);
}

Result<ViewMarker> DecodeViewMarker(std::string_view text, std::string_view where) {
  auto bad = [&] {
    return Status::Corruption(fmt::format(
        "{}: '{}' is not a Granary view marker (\"v1 <layout> <watermark> <run id>\"); remove "
        "it and run materialize-incremental",
        where, text.substr(0, 80)));
  };
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= text.size()) {
    size_t space = text.find(' ', start);
    if (space == std::string_view::npos) space = text.size();
    parts.push_back(text.substr(start, space - start));
    start = space + 1;
  }
  if (parts.size() != 4 || parts[0] != "v1") return bad();
  ViewMarker marker;
  marker.layout = parts[1] == "-" ? "" : std::string(parts[1]);
  auto number = [](std::string_view s, int64_t* out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
    return ec == std::errc() && p == s.data() + s.size();
  };
  if (!number(parts[2], &marker.watermark.micros) || !number(parts[3], &marker.run_id)) {
    return bad();
  }
  return marker;
}

Result<std::unique_ptr<OnlineStore>> OpenOnlineStore(const RepoConfig& config,
                                                     const OnlineStoreOptions& options) {
  const OnlineStoreConfig& online = config.online_store;
  if (online.type == "rocksdb") {
    RocksDbOnlineStore::Options o;
    if (options.memory_budget_bytes > 0 && !options.read_only) {
      o = RocksDbOnlineStore::ForMemoryBudget(options.memory_budget_bytes);
    }
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
    // granary.yaml's timeouts, when set, win over the caller's defaults.
    o.connect_timeout = online.connect_timeout.value_or(options.connect_timeout);
    o.request_timeout = online.request_timeout.value_or(options.request_timeout);
    GRANARY_ASSIGN_OR_RAISE(auto store, RedisOnlineStore::Open(std::move(o)));
    return std::unique_ptr<OnlineStore>(std::move(store));
  }
  return Status::InvalidArgument(fmt::format(
      "{}: online_store.type '{}' is not an online store; use rocksdb, redis or redis_cluster",
      config.ConfigPath().string(), online.type));
}

std::string DescribeOnlineStoreMemory(const RepoConfig& config, const OnlineStoreOptions& options) {
  if (config.online_store.type != "rocksdb" || options.memory_budget_bytes <= 0 ||
      options.read_only) {
    return "";
  }
  const auto o = RocksDbOnlineStore::ForMemoryBudget(options.memory_budget_bytes);
  return fmt::format(
      "RocksDB block cache {} MiB and write buffers {} x {} MiB, sized from the memory budget",
      o.block_cache_bytes >> 20, RocksDbOnlineStore::kWriteBuffers, o.write_buffer_bytes >> 20);
}

}  // namespace granary
