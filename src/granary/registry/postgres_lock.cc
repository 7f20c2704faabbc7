// PostgresAdvisoryLock (postgres_registry.h): the materialization lock of a PostgreSQL registry.
#include <fmt/format.h>

#include "granary/registry/postgres_connection.h"
#include "granary/registry/postgres_registry.h"

namespace granary {
namespace {

// The advisory lock key of a schema's materialization lock (single bigint form).
std::string LockKeyText(const RegistryLocation& location) {
  return "granary-materialize:" + location.schema;
}

}  // namespace

struct PostgresAdvisoryLock::Impl {
  std::unique_ptr<PgConnection> conn;
  std::string token;
};

PostgresAdvisoryLock::PostgresAdvisoryLock(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<PostgresAdvisoryLock>> PostgresAdvisoryLock::Acquire(
    const RegistryLocation& location, const std::string& note, const std::string& token) {
  GRANARY_ASSIGN_OR_RAISE(auto conn, PgConnection::Connect(location));
  GRANARY_ASSIGN_OR_RAISE(PgResult got, conn->Exec("take the materialization lock",
                                                   "SELECT pg_try_advisory_lock(hashtext($1))",
                                                   {Param(LockKeyText(location))}));
  if (!got.Bool(0, 0)) {
    std::string holder = "holder unknown";
    auto r = conn->Exec("read the materialization lock's holder",
                        "SELECT note FROM materialization_lock");
    if (r.ok() && r->rows() > 0) holder = r->Text(0, 0);
    return Status::AlreadyExists(fmt::format(
        "another materialization of this repository is running ({}); wait for it to finish, or "
        "stop that process (the lock is a PostgreSQL advisory lock of registry {}: the database "
        "releases it when the holder's connection ends)",
        holder, location.Describe()));
  }
  auto noted = conn->Exec("record the materialization lock's holder",
                          "INSERT INTO materialization_lock (id, token, note, backend_pid) VALUES "
                          "(1, $1, $2, pg_backend_pid()) ON CONFLICT (id) DO UPDATE SET token = "
                          "EXCLUDED.token, note = EXCLUDED.note, backend_pid = "
                          "EXCLUDED.backend_pid",
                          {Param(token), Param(note)});
  if (!noted.ok()) {
    if (conn->last_sqlstate() == kPgUndefinedTable)
      return NoDefinitionsApplied(location.Describe());
    return noted.status();
  }
  auto impl = std::make_unique<Impl>();
  impl->conn = std::move(conn);
  impl->token = token;
  return std::unique_ptr<PostgresAdvisoryLock>(new PostgresAdvisoryLock(std::move(impl)));
}

PostgresAdvisoryLock::~PostgresAdvisoryLock() {
  // Best effort: closing the connection releases the lock in any case.
  (void)impl_->conn->Exec("release the materialization lock",
                          "DELETE FROM materialization_lock WHERE token = $1",
                          {Param(impl_->token)});
}

Result<std::optional<std::string>> PostgresAdvisoryLock::CurrentHolder(
    const RegistryLocation& location) {
  GRANARY_ASSIGN_OR_RAISE(auto conn, PgConnection::Connect(location));
  // The holder row counts only while its connection holds an advisory lock: a holder whose
  // connection ended (the row left behind) holds nothing.
  auto r = conn->Exec("read the materialization lock's holder",
                      "SELECT l.token FROM materialization_lock l WHERE EXISTS (SELECT 1 FROM "
                      "pg_locks k WHERE k.pid = l.backend_pid AND k.locktype = 'advisory' AND "
                      "k.granted)");
  if (!r.ok()) {
    if (conn->last_sqlstate() == kPgUndefinedTable) return std::optional<std::string>();
    return r.status();
  }
  if (r->rows() == 0) return std::optional<std::string>();
  return std::optional<std::string>(r->Text(0, 0));
}

}  // namespace granary
