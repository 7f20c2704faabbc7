// Fuzzes granary.yaml: the repository configuration read by every command and by `granary serve`
// (YAML, ${VAR} substitution, durations, the Redis connection string and node addresses, the
// registry's location: a path, sqlite:// or postgresql:// URLs and the mapping form). The
// input is written as granary.yaml in one temporary repository folder reused by every run; the
// environment is a fixed map so that runs are reproducible. Properties: a config that loads has
// a project that is an identifier, and the store settings it names parse as the store does.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

#include "granary/online/redis/redis_store.h"
#include "granary/online/redis/slot_map.h"
#include "granary/registry/repo_config.h"
#include "scratch_dir.h"

namespace {

const char* Lookup(const char* name) {
  const std::string_view n(name);
  if (n == "REDIS_HOST") return "127.0.0.1";
  if (n == "REDIS_PASSWORD") return "s3cret,db=2";
  if (n == "TTL") return "90d";
  if (n == "EMPTY") return "";
  if (n == "PGPASSWORD") return "p@ss:w/rd%";
  return nullptr;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const granary::TempDir& repo = granary::fuzz::ScratchDir("granary-fuzz-config-");
  const std::string text(reinterpret_cast<const char*>(data), size);
  {
    std::ofstream out(repo.path() / "granary.yaml", std::ios::binary | std::ios::trunc);
    out << text;
  }
  (void)granary::SubstituteEnv(text, Lookup);
  auto config = granary::LoadRepoConfig(repo.path(), Lookup);
  if (!config.ok()) return 0;
  if (config->project.empty()) {
    std::fprintf(stderr, "a config without a project loaded\n");
    std::abort();
  }
  (void)config->RegistryPath();
  const auto& online = config->online_store;
  if (online.key_ttl.micros < 0) {
    std::fprintf(stderr, "negative key_ttl loaded\n");
    std::abort();
  }
  if (online.type == "redis") {
    granary::RedisOnlineStore::Options options;
    (void)granary::RedisOnlineStore::ParseConnectionString(online.connection_string, &options);
  } else if (online.type == "redis_cluster") {
    for (const std::string& node : online.nodes) (void)granary::redis::NodeAddress::Parse(node);
  }
  return 0;
}
