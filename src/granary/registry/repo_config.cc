#include "granary/registry/repo_config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "granary/registry/yaml_reader.h"

namespace granary {
namespace {

// online_store.connect_timeout and request_timeout: the range accepted.
constexpr Duration kMinRedisTimeout = Duration::Microseconds(1000);
constexpr Duration kMaxRedisTimeout = Duration::Hours(1);

bool IsIdentifier(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  }
  return true;
}

// Applies SubstituteEnv to every scalar of a parsed document, so that a secret containing YAML
// syntax cannot change the document's structure.
Status SubstituteScalars(YAML::Node node, const EnvLookup& lookup, const std::string& file) {
  if (node.IsScalar()) {
    auto v = SubstituteEnv(node.Scalar(), lookup);
    if (!v.ok()) return v.status().WithContext(LocationOf(file, node).ToString());
    if (*v != node.Scalar()) node = *v;
    return Status::OK();
  }
  if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i)
      GRANARY_RETURN_NOT_OK(SubstituteScalars(node[i], lookup, file));
  } else if (node.IsMap()) {
    for (auto kv : node) GRANARY_RETURN_NOT_OK(SubstituteScalars(kv.second, lookup, file));
  }
  return Status::OK();
}

}  // namespace

std::filesystem::path RepoConfig::Resolve(const std::string& path) const {
  std::filesystem::path p(path);
  return p.is_absolute() ? p : (root / p).lexically_normal();
}

Result<std::string> SubstituteEnv(std::string_view text, const EnvLookup& lookup) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 3, "$${") == 0) {
      out += "${";
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "${") != 0) {
      out += text[i++];
      continue;
    }
    size_t close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      return Status::InvalidArgument(
          fmt::format("unterminated '${{' in '{}': write ${{NAME}}, or $${{ for a literal", text));
    }
    std::string_view inner = text.substr(i + 2, close - i - 2);
    std::string name(inner);
    std::optional<std::string> fallback;
    if (size_t d = inner.find(":-"); d != std::string_view::npos) {
      name = std::string(inner.substr(0, d));
      fallback = std::string(inner.substr(d + 2));
    }
    if (!IsIdentifier(name)) {
      return Status::InvalidArgument(fmt::format("invalid variable name '{}' in '{}'", name, text));
    }
    const char* value = lookup(name.c_str());
    if (value != nullptr) {
      out += value;
    } else if (fallback) {
      out += *fallback;
    } else {
      return Status::InvalidArgument(fmt::format(
          "environment variable {} is not set; export it, or write ${{{}:-default}}", name, name));
    }
    i = close + 1;
  }
  return out;
}

Result<RepoConfig> LoadRepoConfig(const std::filesystem::path& root, const EnvLookup& lookup_in) {
  EnvLookup lookup = lookup_in ? lookup_in : [](const char* n) { return std::getenv(n); };
  std::error_code ec;
  auto abs_root = std::filesystem::absolute(root, ec);
  if (ec) return Status::IOError(fmt::format("cannot resolve {}: {}", root.string(), ec.message()));
  RepoConfig config;
  config.root = abs_root.lexically_normal();
  const std::string file = config.ConfigPath().string();
  if (!std::filesystem::exists(config.ConfigPath())) {
    return Status::NotFound(fmt::format(
        "{} not found: this is not a Granary repository; run 'granary init NAME' to create one, "
        "or pass -C DIR to point at one",
        file));
  }
  std::ifstream in(config.ConfigPath());
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (!in) return Status::IOError(fmt::format("cannot read {}", file));

  YAML::Node doc;
  try {
    doc = YAML::Load(buffer.str());
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(
        fmt::format("{}:{}: invalid YAML: {}", file, e.mark.line + 1, e.msg));
  }
  GRANARY_RETURN_NOT_OK(SubstituteScalars(doc, lookup, file));

  Diagnostics diag;
  YamlMap top(doc, file, "granary.yaml", &diag);
  if (auto project = top.String("project", true)) {
    config.project = *project;
    if (!IsIdentifier(config.project)) {
      top.Error("project", "must be letters, digits, '_' or '-'");
    }
  }
  config.registry_location = RegistryLocation::Sqlite(config.Resolve(config.registry));
  if (YAML::Node reg = top.Node("registry", false); reg.IsDefined() && !reg.IsNull()) {
    if (reg.IsScalar()) {
      config.registry = reg.Scalar();
      auto loc = ParseRegistryLocation(config.registry, config.root);
      if (loc.ok()) {
        config.registry_location = std::move(*loc);
      } else {
        top.Error("registry", loc.status().message());
      }
    } else if (reg.IsMap()) {
      YamlMap m(reg, file, "registry", &diag);
      const std::string type = m.String("type", true).value_or("");
      if (type == "sqlite") {
        config.registry = m.String("path", false).value_or(config.registry);
        config.registry_location = RegistryLocation::Sqlite(config.Resolve(config.registry));
      } else if (type == "postgresql") {
        std::map<std::string, std::string> fields;
        for (const char* key : {"host", "port", "database", "user", "password", "schema", "sslmode",
                                "connect_timeout", "application_name", "tcp_user_timeout"}) {
          if (auto v = m.String(key, false)) {
            fields[std::string(key) == "database" ? "dbname" : key] = *v;
          }
        }
        auto loc = PostgresLocation(fields, config.root);
        if (loc.ok()) {
          config.registry_location = std::move(*loc);
          config.registry = config.registry_location.Describe();
        } else {
          m.Error("type", loc.status().message());
        }
      } else if (!type.empty()) {
        m.Error("type", fmt::format("'{}' is not a registry type; use sqlite or postgresql", type));
      }
      m.CheckUnknownKeys();
    } else {
      top.Error("registry",
                fmt::format("must be a string or a mapping; write {}", kSupportedRegistries));
    }
  }

  if (YAML::Node offline = top.Node("offline_store", false);
      offline.IsDefined() && !offline.IsNull()) {
    YamlMap m(offline, file, "offline_store", &diag);
    if (auto type = m.String("type", true)) {
      config.offline_store.type = *type;
      if (*type != "file" && *type != "spark") {
        m.Error("type", fmt::format("'{}' is not an offline store; use file (the embedded engine) "
                                    "or spark",
                                    *type));
      }
    }
    // spark: the Spark Connect URL (docs/SPARK.md); ${VAR} keeps a token out of the file.
    if (auto remote = m.String("remote", false)) config.offline_store.remote = *remote;
    if (config.offline_store.type == "spark" && config.offline_store.remote.empty()) {
      m.Error("remote",
              "offline_store type spark needs remote: the Spark Connect URL, e.g. remote: "
              "\"sc://127.0.0.1:15002\" (scripts/spark-cluster start runs a local cluster)");
    }
    m.CheckUnknownKeys();
  }
  if (YAML::Node online = top.Node("online_store", false); online.IsDefined() && !online.IsNull()) {
    YamlMap m(online, file, "online_store", &diag);
    OnlineStoreConfig& o = config.online_store;
    if (auto type = m.String("type", true)) o.type = *type;
    if (auto ttl = m.String("key_ttl", false)) {
      auto d = ParseDuration(*ttl);
      if (d.ok())
        o.key_ttl = *d;
      else
        m.Error("key_ttl", d.status().message());
    }
    if (auto u = m.String("username", false)) o.username = *u;
    if (auto p = m.String("password", false)) o.password = *p;
    // The Redis client's timeouts. Zero (never give up) would let a frozen node hang every
    // caller; past an hour the deadline arithmetic of the client's steady clock is no longer
    // safe, and no reply is worth waiting for that long.
    const bool redis = o.type == "redis" || o.type == "redis_cluster";
    for (auto [key, out] : {std::pair{"connect_timeout", &o.connect_timeout},
                            std::pair{"request_timeout", &o.request_timeout}}) {
      auto text = m.String(key, false);
      if (!text) continue;
      if (!redis) {
        m.Error(key, fmt::format("{} is for redis and redis_cluster stores; remove it", key));
        continue;
      }
      auto d = ParseDuration(*text);
      if (!d.ok() || d->micros < kMinRedisTimeout.micros || d->micros > kMaxRedisTimeout.micros) {
        m.Error(key, fmt::format("{} '{}' is not a duration from 1ms to 1h; write e.g. 2s, 500ms "
                                 "or 30s (a longer one rides out a slow server, a shorter one "
                                 "gives up sooner on a frozen node)",
                                 key, *text));
        continue;
      }
      *out = *d;
    }
    if (o.type == "rocksdb") {
      if (auto path = m.String("path", false)) o.path = *path;
    } else if (o.type == "redis") {
      if (auto cs = m.String("connection_string", true)) o.connection_string = *cs;
    } else if (o.type == "redis_cluster") {
      o.nodes = m.StringList("nodes", true);
      o.read_from_replicas = m.Bool("read_from_replicas").value_or(false);
    } else {
      m.Error(
          "type",
          fmt::format("'{}' is not an online store; use rocksdb, redis or redis_cluster", o.type));
    }
    m.CheckUnknownKeys();
  }
  top.CheckUnknownKeys();
  GRANARY_RETURN_NOT_OK(diag.ToStatus());
  return config;
}

}  // namespace granary
