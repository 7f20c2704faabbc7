// RepositoryLock: keeps two materializations of one repository from running at once, across
// processes and threads alike.
//
// An exclusive flock(2) on "<registry>.materialize.lock" beside the registry. The kernel drops
// it when the holder's process ends however it ends (kill -9 included), so it is never stale.
// flock locks belong to an open file, so two threads of one process that each Acquire also
// exclude each other. While held, the file says who holds it (process, host, since when, what),
// which a refused caller puts in its message, and the holder's token: a random string drawn at
// each Acquire, recorded with every run the holder starts. A run recorded running is alive exactly
// while the lock is held under its token (CurrentHolder); a killed process loses the lock even
// before it is reaped, and a reused pid never gets the token back.
//
// With a PostgreSQL registry the lock is a PostgreSQL advisory lock instead
// (registry/postgres_registry.h: PostgresAdvisoryLock), so that schedulers on two hosts exclude
// each other; the database releases it when its holder's connection ends. Same tokens, same
// messages.
//
// Not copyable; owned through unique_ptr. Thread-compatible.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "granary/common/result.h"
#include "granary/common/time.h"
#include "granary/registry/registry_location.h"

namespace granary {

class PostgresAdvisoryLock;

class RepositoryLock {
 public:
  // Takes the lock without waiting. When another run holds it: kAlreadyExists, naming the holder
  // (the feature server maps this code to 409 Conflict). `what` describes this run for others'
  // messages ("granary materialize-incremental").
  static Result<std::unique_ptr<RepositoryLock>> Acquire(const RegistryLocation& registry,
                                                         const std::string& what, Timestamp now);
  // The lock of the SQLite registry at `registry_path`.
  static Result<std::unique_ptr<RepositoryLock>> Acquire(const std::filesystem::path& registry_path,
                                                         const std::string& what, Timestamp now) {
    return Acquire(RegistryLocation::Sqlite(registry_path), what, now);
  }
  ~RepositoryLock();
  RepositoryLock(const RepositoryLock&) = delete;
  RepositoryLock& operator=(const RepositoryLock&) = delete;

  static std::filesystem::path PathFor(const std::filesystem::path& registry_path);

  // The token of the holder of the lock of `registry_path` now; nullopt when nobody holds it.
  // Probes with a shared lock for an instant (Acquire waits out such probes). IOError when the
  // lock file exists but cannot be read.
  static Result<std::optional<std::string>> CurrentHolder(const RegistryLocation& registry);
  static Result<std::optional<std::string>> CurrentHolder(
      const std::filesystem::path& registry_path) {
    return CurrentHolder(RegistryLocation::Sqlite(registry_path));
  }

  // This holder's token (see above).
  const std::string& token() const { return token_; }

 private:
  RepositoryLock(int fd, std::string token);
  RepositoryLock(std::unique_ptr<PostgresAdvisoryLock> pg, std::string token);
  static Result<std::unique_ptr<RepositoryLock>> AcquireFile(
      const std::filesystem::path& registry_path, const std::string& what, Timestamp now);
  static Result<std::optional<std::string>> FileHolder(const std::filesystem::path& registry_path);
  int fd_ = -1;
  std::unique_ptr<PostgresAdvisoryLock> pg_;  // set for a PostgreSQL registry
  std::string token_;
};

// This machine's host name, as recorded with each run.
std::string ThisHost();

}  // namespace granary
