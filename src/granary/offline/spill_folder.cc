#include "granary/offline/spill_folder.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

namespace granary {
namespace {

// mkdtemp's suffix: six letters and digits.
bool IsSpillFolderName(std::string_view name) {
  for (std::string_view prefix : kSpillFolderPrefixes) {
    if (name.size() != prefix.size() + 6 || name.substr(0, prefix.size()) != prefix) continue;
    for (char c : name.substr(prefix.size())) {
      const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
      if (!alnum) return false;
    }
    return true;
  }
  return false;
}

std::filesystem::path ParentOrTemp(const std::filesystem::path& parent, std::error_code* ec) {
  return parent.empty() ? std::filesystem::temp_directory_path(*ec) : parent;
}

}  // namespace

Result<SpillFolder> SpillFolder::Make(const std::filesystem::path& parent, std::string_view prefix,
                                      std::string_view what) {
  std::error_code ec;
  const auto under = ParentOrTemp(parent, &ec);
  auto dir = TempDir::MakeIn(under, std::string(prefix));
  if (!dir.ok()) {
    return Status::IOError(fmt::format(
        "cannot create a spill folder under {}: {}; set a folder with room for {} (TMPDIR or "
        "--spill-dir)",
        under.string(), dir.status().message(), what));
  }
  // Locked under another name first: a sweeper only looks at kSpillLockFile, which therefore is
  // locked from the moment it exists.
  const auto pending = dir->path() / "granary.lock.new";
  const auto lock = dir->path() / kSpillLockFile;
  const int fd = ::open(pending.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return Status::IOError(fmt::format("cannot create the spill folder's lock file {}: {}",
                                       pending.string(), std::strerror(errno)));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0 || ::rename(pending.c_str(), lock.c_str()) != 0) {
    const int err = errno;
    ::close(fd);
    return Status::IOError(fmt::format("cannot lock the spill folder {}: {}", dir->path().string(),
                                       std::strerror(err)));
  }
  return SpillFolder(std::move(*dir), fd);
}

SpillFolder::SpillFolder(SpillFolder&& other) noexcept
    : dir_(std::move(other.dir_)), lock_fd_(std::exchange(other.lock_fd_, -1)) {}

SpillFolder& SpillFolder::operator=(SpillFolder&& other) noexcept {
  std::swap(dir_, other.dir_);
  std::swap(lock_fd_, other.lock_fd_);
  return *this;
}

SpillFolder::~SpillFolder() { Release(); }

void SpillFolder::Release() {
  // The folder goes while the lock is still held, so no sweeper races the removal.
  { TempDir gone = std::move(dir_); }
  if (lock_fd_ >= 0) ::close(lock_fd_);
  lock_fd_ = -1;
}

std::vector<std::filesystem::path> RemoveStaleSpillFolders(const std::filesystem::path& parent) {
  std::vector<std::filesystem::path> removed;
  std::error_code ec;
  const auto under = ParentOrTemp(parent, &ec);
  if (ec) return removed;
  std::filesystem::directory_iterator it(under, ec);
  if (ec) return removed;
  const uid_t uid = ::geteuid();
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const std::filesystem::path folder = it->path();
    if (!IsSpillFolderName(folder.filename().string())) continue;
    struct stat st;
    if (::lstat(folder.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != uid) continue;
    const auto lock = folder / kSpillLockFile;
    const int fd = ::open(lock.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) continue;  // no lock file: not ours to judge
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
      // The lock is on the file opened; make sure that is still the one the folder holds (not
      // one another sweeper removed, with a new folder of the same name made since).
      struct stat held, named;
      if (::fstat(fd, &held) == 0 && ::stat(lock.c_str(), &named) == 0 &&
          held.st_dev == named.st_dev && held.st_ino == named.st_ino) {
        std::error_code remove_ec;
        std::filesystem::remove_all(folder, remove_ec);
        if (!remove_ec) removed.push_back(folder);
      }
    }
    ::close(fd);
  }
  return removed;
}

}  // namespace granary
