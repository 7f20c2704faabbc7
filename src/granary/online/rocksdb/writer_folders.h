// The embedded store's folder across opens and processes (docs/ONLINE_LAYOUT.md, "The folder
// across restarts"): which folders this process holds for writing, and the empty write-ahead logs
// that RocksDB 7.8 leaves behind.
//
// Thread-safe through WriterFolders::mu, which RocksDbOnlineStore holds across a writer's open
// and close and across a reader's creation of an empty store.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <set>
#include <utility>

#include "granary/common/mutex.h"
#include "granary/common/result.h"

namespace granary {

// A folder's identity: its device and inode (one folder may have several spellings: relative
// paths, symlinks, bind mounts).
using FolderId = std::pair<dev_t, ino_t>;
Result<FolderId> FolderIdOf(const std::filesystem::path& folder);

// The stores this process holds open for writing, by folder. Two reasons: a second writer of
// one folder in this process must be refused (POSIX locks never conflict within a process, and
// RocksDB's own in-process registry compares the path text, so it would let one in under
// another spelling), and RocksDB's LOCK file of a held store must not be opened here (closing
// any descriptor of a file drops the process's POSIX locks on it, RocksDB's among them).
struct WriterFolders {
  static WriterFolders& Get();  // the process's; never destroyed (stores may outlive exit)

  Mutex mu;
  std::set<FolderId> held GUARDED_BY(mu);
};

// RocksDB 7.8 (Debian's) keeps the empty write-ahead log of every open that wrote nothing until a
// flush advances the log number: a server restarted without writes, or a process in a crash loop,
// piles up .log files that every later open reads (RocksDB issue 11313, fixed in 8.3, whose
// maintainers give this mitigation; safe with the WAL options RocksDbOnlineStore::Open sets).
// Call before a writer's open of `folder`, with WriterFolders::Get().mu held and the folder not
// held: while no other process holds the store (its LOCK file taken here with an
// open-file-description lock, which conflicts with RocksDB's fcntl lock), the empty logs (names
// of digits and ".log") are deleted: they hold no write to recover. Logs with bytes are left to
// RocksDB. Returns how many were deleted; 0 when the store is held (RocksDB's own open then
// reports the holder) or does not exist yet.
int DeleteEmptyWriteAheadLogs(const std::filesystem::path& folder);

}  // namespace granary
