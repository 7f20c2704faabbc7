#include "granary/materialize/repository_lock.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace granary {

std::string ThisHost() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "localhost";
  return name;
}

std::filesystem::path RepositoryLock::PathFor(const std::filesystem::path& registry_path) {
  return registry_path.string() + ".materialize.lock";
}

Result<std::unique_ptr<RepositoryLock>> RepositoryLock::Acquire(
    const std::filesystem::path& registry_path, const std::string& what, Timestamp now) {
  const std::filesystem::path path = PathFor(registry_path);
  // No O_TRUNC: the holder's note must survive until we own the lock.
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Status::IOError(
        fmt::format("cannot open the materialization lock {}: {}", path.string(), strerror(errno)));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string holder(512, '\0');
    const ssize_t n = pread(fd, holder.data(), holder.size(), 0);
    holder.resize(n > 0 ? static_cast<size_t>(n) : 0);
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == '\0')) holder.pop_back();
    close(fd);
    if (err != EWOULDBLOCK) {
      return Status::IOError(fmt::format("cannot lock {}: {}", path.string(), strerror(err)));
    }
    return Status::AlreadyExists(fmt::format(
        "another materialization of this repository is running ({}); wait for it to finish, or "
        "stop that process (the lock is {})",
        holder.empty() ? "holder unknown" : holder, path.string()));
  }
  const std::string note = fmt::format("{} as pid {} on {} since {}\n", what, getpid(), ThisHost(),
                                       FormatTimestamp(now));
  // The note is only for messages; the lock is held whether or not it can be written.
  if (ftruncate(fd, 0) == 0) (void)!pwrite(fd, note.data(), note.size(), 0);
  return std::unique_ptr<RepositoryLock>(new RepositoryLock(fd));
}

RepositoryLock::~RepositoryLock() {
  if (fd_ >= 0) {
    // Leave the file (another process may have it open), but say nobody holds it.
    (void)!ftruncate(fd_, 0);
    flock(fd_, LOCK_UN);
    close(fd_);
  }
}

}  // namespace granary
