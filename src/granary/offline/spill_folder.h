// SpillFolder: the private folder the offline engine's spill files go in (the entity
// partitioner's "granary-spill-XXXXXX", the training set's "granary-output-XXXXXX"), and the
// removal of the ones a killed process left behind.
//
// A process that ends normally removes its folder (the object's destructor); one killed outright
// (SIGKILL, the OOM killer, a power cut of the container) cannot. So every folder holds a lock
// file, "granary.lock", on which its process keeps an exclusive flock(2) for the folder's life.
// The kernel drops that lock when the process dies, however it dies, so a folder of that naming
// whose lock file is not locked belongs to no live process. The lock is taken on a file of
// another name and only then renamed to "granary.lock", so no live folder is ever seen with its
// lock file unlocked. A folder without a lock file (one being made this instant, or one left by a
// granary from before the lock) is left alone: whose it is cannot be told.
//
// flock locks are local to one machine: two machines sharing a spill folder over NFS would not
// see each other's locks, so give each machine its own --spill-dir.
#pragma once

#include <filesystem>
#include <string_view>
#include <vector>

#include "granary/common/result.h"
#include "granary/common/temp_dir.h"

namespace granary {

// Move-only; not thread-safe. Destroying it removes the folder and everything in it, then
// releases the lock.
class SpillFolder {
 public:
  // Creates "<parent>/<prefix>XXXXXX" (mode 0700) under `parent` (the system's temporary folder
  // when empty) and locks it. `prefix` is one of kSpillFolderPrefixes. `what` names what goes in
  // it, for the error, which says how to give it room (TMPDIR or --spill-dir).
  static Result<SpillFolder> Make(const std::filesystem::path& parent, std::string_view prefix,
                                  std::string_view what);

  SpillFolder(SpillFolder&& other) noexcept;
  SpillFolder& operator=(SpillFolder&& other) noexcept;
  SpillFolder(const SpillFolder&) = delete;
  SpillFolder& operator=(const SpillFolder&) = delete;
  ~SpillFolder();

  const std::filesystem::path& path() const { return dir_.path(); }

 private:
  SpillFolder(TempDir dir, int lock_fd) : dir_(std::move(dir)), lock_fd_(lock_fd) {}
  void Release();

  TempDir dir_;
  int lock_fd_ = -1;  // holds the exclusive flock on <dir>/granary.lock
};

// The names spill folders start with (followed by six characters from mkdtemp).
inline constexpr std::string_view kSpillFolderPrefixes[] = {"granary-spill-", "granary-output-"};
// The lock file in every spill folder.
inline constexpr std::string_view kSpillLockFile = "granary.lock";

// Removes the spill folders under `parent` (the system's temporary folder when empty) whose
// process is gone: folders named by kSpillFolderPrefixes and six characters, owned by this user,
// holding a lock file that nobody holds locked. Folders of live processes (this one included)
// and anything else are left alone. Returns the folders removed; an unreadable or missing
// `parent` removes nothing. Safe beside other processes making, using and sweeping spill folders.
std::vector<std::filesystem::path> RemoveStaleSpillFolders(const std::filesystem::path& parent);

}  // namespace granary
