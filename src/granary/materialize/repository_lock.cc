#include "granary/materialize/repository_lock.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>

#include "granary/registry/postgres_registry.h"

namespace granary {
namespace {

constexpr std::string_view kTokenPrefix = "token: ";

// 128 random bits in hex.
std::string NewToken() {
  std::random_device device;
  std::string out;
  for (int i = 0; i < 4; ++i) out += fmt::format("{:08x}", static_cast<uint32_t>(device()));
  return out;
}

// The lock file's text: the holder's note, then its token.
std::string ReadLockFile(int fd) {
  std::string text(1024, '\0');
  const ssize_t n = pread(fd, text.data(), text.size(), 0);
  text.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return text;
}

// The first line (the note), without its newline.
std::string NoteOf(const std::string& text) {
  std::string note = text.substr(0, text.find('\n'));
  while (!note.empty() && note.back() == '\0') note.pop_back();
  return note;
}

std::string TokenOf(const std::string& text) {
  const size_t at = text.find(kTokenPrefix);
  if (at == std::string::npos) return "";
  const size_t begin = at + kTokenPrefix.size();
  const size_t end = text.find('\n', begin);
  return text.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

}  // namespace

std::string ThisHost() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "localhost";
  return name;
}

std::filesystem::path RepositoryLock::PathFor(const std::filesystem::path& registry_path) {
  return registry_path.string() + ".materialize.lock";
}

RepositoryLock::RepositoryLock(int fd, std::string token) : fd_(fd), token_(std::move(token)) {}

RepositoryLock::RepositoryLock(std::unique_ptr<PostgresAdvisoryLock> pg, std::string token)
    : pg_(std::move(pg)), token_(std::move(token)) {}

Result<std::unique_ptr<RepositoryLock>> RepositoryLock::Acquire(const RegistryLocation& registry,
                                                                const std::string& what,
                                                                Timestamp now) {
  if (!registry.is_postgresql()) return AcquireFile(registry.path, what, now);
  std::string token = NewToken();
  const std::string note =
      fmt::format("{} as pid {} on {} since {}", what, getpid(), ThisHost(), FormatTimestamp(now));
  GRANARY_ASSIGN_OR_RAISE(auto pg, PostgresAdvisoryLock::Acquire(registry, note, token));
  return std::unique_ptr<RepositoryLock>(new RepositoryLock(std::move(pg), std::move(token)));
}

Result<std::optional<std::string>> RepositoryLock::CurrentHolder(const RegistryLocation& registry) {
  if (!registry.is_postgresql()) return FileHolder(registry.path);
  return PostgresAdvisoryLock::CurrentHolder(registry);
}

Result<std::unique_ptr<RepositoryLock>> RepositoryLock::AcquireFile(
    const std::filesystem::path& registry_path, const std::string& what, Timestamp now) {
  const std::filesystem::path path = PathFor(registry_path);
  // No O_TRUNC: the holder's note must survive until we own the lock.
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Status::IOError(
        fmt::format("cannot open the materialization lock {}: {}", path.string(), strerror(errno)));
  }
  // A reader probing with CurrentHolder holds a shared lock for an instant: retry for a short
  // while before calling the lock taken.
  int locked = flock(fd, LOCK_EX | LOCK_NB);
  for (int attempt = 0; locked != 0 && errno == EWOULDBLOCK && attempt < 20; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    locked = flock(fd, LOCK_EX | LOCK_NB);
  }
  if (locked != 0) {
    const int err = errno;
    const std::string holder = NoteOf(ReadLockFile(fd));
    close(fd);
    if (err != EWOULDBLOCK) {
      return Status::IOError(fmt::format("cannot lock {}: {}", path.string(), strerror(err)));
    }
    return Status::AlreadyExists(fmt::format(
        "another materialization of this repository is running ({}); wait for it to finish, or "
        "stop that process (the lock is {})",
        holder.empty() ? "holder unknown" : holder, path.string()));
  }
  std::string token = NewToken();
  const std::string note = fmt::format("{} as pid {} on {} since {}\n{}{}\n", what, getpid(),
                                       ThisHost(), FormatTimestamp(now), kTokenPrefix, token);
  // The lock is held whether or not the note can be written; without it, readers cannot tell
  // this holder's runs alive (CurrentHolder reads no token), so say so.
  if (ftruncate(fd, 0) != 0 ||
      pwrite(fd, note.data(), note.size(), 0) != static_cast<ssize_t>(note.size())) {
    const int err = errno;
    flock(fd, LOCK_UN);
    close(fd);
    return Status::IOError(
        fmt::format("cannot write the materialization lock {}: {}", path.string(), strerror(err)));
  }
  return std::unique_ptr<RepositoryLock>(new RepositoryLock(fd, std::move(token)));
}

Result<std::optional<std::string>> RepositoryLock::FileHolder(
    const std::filesystem::path& registry_path) {
  const std::filesystem::path path = PathFor(registry_path);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return Status::IOError(
        fmt::format("cannot open the materialization lock {}: {}", path.string(), strerror(errno)));
  }
  std::optional<std::string> holder;
  if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
    flock(fd, LOCK_UN);
  } else if (errno == EWOULDBLOCK) {
    holder = TokenOf(ReadLockFile(fd));
  } else {
    const int err = errno;
    close(fd);
    return Status::IOError(fmt::format("cannot probe {}: {}", path.string(), strerror(err)));
  }
  close(fd);
  return holder;
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
