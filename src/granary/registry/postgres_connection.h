// PgConnection: one libpq connection to a PostgreSQL registry, with errors as Status values.
// Internal to the registry (postgres_registry.cc); libpq types do not leave this subsystem.
//
// Why libpq (Debian's libpq-dev) and not libpqxx: libpq is the C library PostgreSQL itself ships
// and keeps compatible across server versions; it reports errors as values (libpqxx throws, and
// Granary lets no exception cross a subsystem), and it exposes the socket and PQnotifies that the
// LISTEN/NOTIFY change feed waits on without a thread per connection. The ~150 lines of RAII and
// parameter binding below are all the C++ wrapping the registry needs. libpq is loaded at run
// time, isolated from the pyarrow wheel's OpenSSL (pq_api.h says why).
//
// A connection that broke (the server restarted, a network cut) is reset before the next query,
// so a long-lived holder (a server's registry watcher) recovers by itself. Thread-compatible.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "granary/common/result.h"
#include "granary/registry/pq_api.h"
#include "granary/registry/registry_location.h"

namespace granary {

// SQLSTATE codes the registry reacts to.
inline constexpr std::string_view kPgUniqueViolation = "23505";
inline constexpr std::string_view kPgUndefinedTable = "42P01";
inline constexpr std::string_view kPgInvalidSchema = "3F000";

// Owns a PGresult.
class PgResult {
 public:
  explicit PgResult(PGresult* r) : r_(r) {}
  PgResult(PgResult&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
  PgResult& operator=(PgResult&& o) noexcept;
  ~PgResult() { Pq().clear(r_); }

  int rows() const { return Pq().ntuples(r_); }
  bool IsNull(int row, int col) const { return Pq().getisnull(r_, row, col) != 0; }
  std::string Text(int row, int col) const { return Pq().getvalue(r_, row, col); }
  int64_t Int(int row, int col) const;
  std::optional<int64_t> OptionalInt(int row, int col) const;
  bool Bool(int row, int col) const { return Text(row, col) == "t"; }

 private:
  PGresult* r_;
};

// A query parameter in text form; nullopt is SQL NULL.
using PgParam = std::optional<std::string>;
inline PgParam Param(int64_t v) { return std::to_string(v); }
inline PgParam Param(std::string v) { return v; }
inline PgParam Param(const char* v) { return std::string(v); }
inline PgParam Param(bool v) { return std::string(v ? "true" : "false"); }
inline PgParam Param(const std::optional<int64_t>& v) {
  return v ? PgParam(std::to_string(*v)) : std::nullopt;
}

class PgConnection {
 public:
  // Connects with the location's conninfo and search_path set to its schema. Unavailable when
  // the server cannot be reached, naming it (never the password).
  static Result<std::unique_ptr<PgConnection>> Connect(const RegistryLocation& location);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs one statement; `what` says what it was for in messages ("store a new version").
  // An error's SQLSTATE is kept in `last_sqlstate()`.
  Result<PgResult> Exec(std::string_view what, const std::string& sql,
                        const std::vector<PgParam>& params = {});
  // Runs statements without parameters (several separated by ';' allowed).
  Status Run(std::string_view what, const std::string& sql);
  const std::string& last_sqlstate() const { return last_sqlstate_; }

  // Rolls back an open transaction after an error; never fails (a broken connection is reset).
  void Rollback();

  PGconn* raw() { return conn_; }
  const RegistryLocation& location() const { return location_; }
  // Resets a broken connection. Unavailable when the server still cannot be reached.
  Status EnsureConnected();
  // "registry postgresql://...: cannot <what>: <server message>"
  Status Error(std::string_view what, PGresult* r);

 private:
  PgConnection(PGconn* conn, RegistryLocation location)
      : conn_(conn), location_(std::move(location)) {}
  PGconn* conn_;
  RegistryLocation location_;
  std::string last_sqlstate_;
};

// A schema name quoted as an SQL identifier ("granary").
std::string QuoteIdentifier(const std::string& name);

}  // namespace granary
