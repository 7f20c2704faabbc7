// RepositoryLock: keeps two materializations of one repository from running at once, across
// processes and threads alike.
//
// An exclusive flock(2) on "<registry>.materialize.lock" beside the registry. The kernel drops
// it when the holder's process ends however it ends (kill -9 included), so it is never stale.
// flock locks belong to an open file, so two threads of one process that each Acquire also
// exclude each other. While held, the file says who holds it (process, host, since when, what),
// which a refused caller puts in its message.
//
// Not copyable; owned through unique_ptr. Thread-compatible.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "granary/common/result.h"
#include "granary/common/time.h"

namespace granary {

class RepositoryLock {
 public:
  // Takes the lock without waiting. When another run holds it: kAlreadyExists, naming the holder
  // (the feature server maps this code to 409 Conflict). `what` describes this run for others'
  // messages ("granary materialize-incremental").
  static Result<std::unique_ptr<RepositoryLock>> Acquire(const std::filesystem::path& registry_path,
                                                         const std::string& what, Timestamp now);
  ~RepositoryLock();
  RepositoryLock(const RepositoryLock&) = delete;
  RepositoryLock& operator=(const RepositoryLock&) = delete;

  static std::filesystem::path PathFor(const std::filesystem::path& registry_path);

 private:
  explicit RepositoryLock(int fd) : fd_(fd) {}
  int fd_;
};

// This machine's host name, as recorded with each run.
std::string ThisHost();

}  // namespace granary
