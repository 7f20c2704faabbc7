// RepoConfig: the repository's granary.yaml (project, registry, offline and online store).
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "granary/common/result.h"
#include "granary/common/time.h"
#include "granary/registry/registry_location.h"

namespace granary {

struct OnlineStoreConfig {
  std::string type = "rocksdb";      // rocksdb (embedded, default) | redis | redis_cluster
  std::string path = "data/online";  // rocksdb: directory, relative to the repository root
  // redis: "host:port[,password=...][,username=...][,db=N]"
  std::string connection_string;
  std::vector<std::string> nodes;         // redis_cluster: seed nodes "host:port"
  std::string username;                   // redis, redis_cluster (ACL user)
  std::string password;                   // redis, redis_cluster
  Duration key_ttl = Duration::Days(90);  // expiry of online keys, refreshed on every write
  bool read_from_replicas = false;        // redis_cluster: serve reads from replicas (READONLY)
  // redis, redis_cluster: how long to wait for a connection, and for the next reply bytes while
  // replies are due, before a node counts as down; from 1 ms to 1 h. Unset: the caller's
  // OnlineStoreOptions (2 s). Set, they win over the caller's, for every command and the server.
  // Long tile scripts on a loaded server may need a longer request_timeout.
  std::optional<Duration> connect_timeout;
  std::optional<Duration> request_timeout;
};

struct OfflineStoreConfig {
  // file: the embedded engine over Parquet, CSV and Delta Lake; spark: Apache Spark through
  // Spark Connect. Built by OpenOfflineEngine (offline/engine_factory.h).
  std::string type = "file";
  // spark: "sc://host:15002[/;token=...;x-databricks-cluster-id=...]" (spark_connect/connect_url.h)
  std::string remote;
};

struct RepoConfig {
  std::filesystem::path root;  // absolute
  std::string project;
  std::string registry = "data/registry.db";  // as written (a string form), for messages
  // Where the registry lives (registry_location.h); registry_factory.h opens it.
  RegistryLocation registry_location;
  OfflineStoreConfig offline_store;
  OnlineStoreConfig online_store;

  // An absolute path for a path written in the repository (relative to root).
  std::filesystem::path Resolve(const std::string& path) const;
  // The SQLite registry file, or for a PostgreSQL registry the base name of the files this host
  // keeps beside it (the running server's record). The repository lock of a SQLite registry is
  // a file beside it.
  std::filesystem::path RegistryPath() const {
    return registry_location.path.empty() ? Resolve(registry) : registry_location.path;
  }
  std::filesystem::path ConfigPath() const { return root / "granary.yaml"; }
  // registry_location, or for a RepoConfig built in code without it, the SQLite file `registry`.
  RegistryLocation Registry() const {
    return registry_location.path.empty() ? RegistryLocation::Sqlite(Resolve(registry))
                                          : registry_location;
  }
};

using EnvLookup = std::function<const char*(const char*)>;

// Replaces ${VAR} and ${VAR:-default} with the environment's values. An unset variable without
// a default is an error naming it. "$${" escapes a literal "${".
Result<std::string> SubstituteEnv(std::string_view text, const EnvLookup& lookup);

// Reads <root>/granary.yaml; unknown keys, bad values and unset variables are errors with the
// file, line and a fix. `lookup` defaults to the process environment.
Result<RepoConfig> LoadRepoConfig(const std::filesystem::path& root,
                                  const EnvLookup& lookup = nullptr);

}  // namespace granary
