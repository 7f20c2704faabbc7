// The registry in PostgreSQL: several hosts (feature servers, a scheduler, people's CLIs) share one
// repository's definitions, watermarks, run history, push log and materialization lock.
//
// Layout: the tables of the SQLite registry in one schema (RegistryLocation::schema), plus
// `schema_version` (the schema's version: created and migrated by Granary on open, in one
// transaction under an advisory lock; a schema newer than this build is refused) and
// `materialization_lock` (who holds the lock below). Times are microseconds since the epoch, UTC.
//
// Concurrency:
//   - Commit with an expected version is optimistic: two applies planned against version N race
//     to insert N+1 under its primary key; one commits, the other gets AlreadyExists.
//   - A run's end and its watermark move in one transaction (as in SQLite).
//   - A commit sends NOTIFY granary_registry (payload: the schema) in its transaction, so feed
//     readers (WatchChanges: LISTEN on a connection of their own) hear of it once it is visible.
//   - The database down: every call returns Unavailable naming the server; nothing is written
//     half (each write is one transaction). Connections are reset on the next call.
// Thread-compatible: one store per thread.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "granary/common/result.h"
#include "granary/registry/registry_location.h"
#include "granary/registry/registry_store.h"

namespace granary {

// Opens (kCreateIfMissing: creates or migrates) the registry schema at `location`.
// kOpenExisting on a schema that does not exist: NoDefinitionsApplied.
Result<std::unique_ptr<RegistryStore>> OpenPostgresRegistry(const RegistryLocation& location,
                                                            OpenMode mode);

// Drops the registry's schema and everything in it; true when it existed.
Result<bool> DropPostgresRegistry(const RegistryLocation& location);

// The repository's materialization lock as a PostgreSQL session advisory lock, held on a
// connection of its own: the database releases it when that connection ends, however its process
// ends (kill -9, power loss, a network cut). While held, `materialization_lock` names the holder
// (`note`, shown to refused callers) and its token. If the database restarts under a holder, the
// lock is gone; the holder's run goes on and its records still land (write-if-newer online), but
// another host may start a run meanwhile: restart schedulers after a database failover.
// Not copyable. Thread-compatible.
class PostgresAdvisoryLock {
 public:
  // Takes the lock without waiting. AlreadyExists naming the holder when another process holds it.
  static Result<std::unique_ptr<PostgresAdvisoryLock>> Acquire(const RegistryLocation& location,
                                                               const std::string& note,
                                                               const std::string& token);
  ~PostgresAdvisoryLock();  // releases the lock and forgets the holder
  PostgresAdvisoryLock(const PostgresAdvisoryLock&) = delete;
  PostgresAdvisoryLock& operator=(const PostgresAdvisoryLock&) = delete;

  // The token of the holder now (its connection alive and holding the lock); nullopt if none.
  static Result<std::optional<std::string>> CurrentHolder(const RegistryLocation& location);

 private:
  struct Impl;
  explicit PostgresAdvisoryLock(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace granary
