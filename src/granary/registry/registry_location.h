// RegistryLocation: where a repository's registry lives, as written in granary.yaml's `registry`.
//
//   registry: data/registry.db                         SQLite file (the default), relative to root
//   registry: sqlite:///abs/path/registry.db           the same, as a URL
//   registry: postgresql://user:${PGPASSWORD}@db:5432/granary?schema=granary
//   registry: {type: postgresql, host: db, port: 5432, database: granary, user: u,
//              password: "${PGPASSWORD}", schema: granary, sslmode: require}
//   registry: {type: sqlite, path: data/registry.db}
//
// Any other `scheme://` is an error that names the supported ones (a URL is never taken as a
// file name). The value type only describes; registry_factory.h opens it.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "granary/common/result.h"

namespace granary {

struct RegistryLocation {
  enum class Kind { kSqlite, kPostgresql };
  Kind kind = Kind::kSqlite;
  // kSqlite: the registry file (absolute). kPostgresql: the base name of the files this host keeps
  // for itself beside the shared registry (the running server's record), <root>/data/registry-pg.
  std::filesystem::path path;
  // kPostgresql: a libpq connection string (URI or key=value) without `schema`.
  std::string conninfo;
  // kPostgresql: the schema holding Granary's tables ("granary" unless given).
  std::string schema = "granary";
  // kPostgresql: the server and database, without the password, for messages.
  std::string display;

  bool is_postgresql() const { return kind == Kind::kPostgresql; }
  // For messages: the file, or "postgresql://user@host:port/db?schema=s" (never a password).
  std::string Describe() const;

  static RegistryLocation Sqlite(std::filesystem::path file);
};

// Parses a `registry:` string. `root` resolves relative file paths and places the local files of
// a PostgreSQL registry. InvalidArgument for an unsupported scheme or a malformed URL.
Result<RegistryLocation> ParseRegistryLocation(const std::string& text,
                                               const std::filesystem::path& root);

// A PostgreSQL registry from libpq keywords (host, port, dbname, user, password, sslmode, ...)
// and `schema`: the `{type: postgresql, ...}` form.
Result<RegistryLocation> PostgresLocation(const std::map<std::string, std::string>& fields,
                                          const std::filesystem::path& root);

// The supported `registry:` forms, for error messages.
inline constexpr const char* kSupportedRegistries =
    "a SQLite file path (data/registry.db), sqlite:///path, or "
    "postgresql://user:password@host:port/database?schema=NAME";

}  // namespace granary
