#include "granary/offline/spill_folder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <thread>

#include "granary/common/temp_dir.h"
#include "granary/testing/child_process.h"

namespace granary {
namespace {

using testing::ChildProcess;

// A process that holds `folder`'s lock file locked as a spill folder's owner does (an exclusive
// flock for as long as it lives), once it has returned.
ChildProcess LockingProcess(const std::filesystem::path& folder) {
  std::filesystem::create_directory(folder);
  const auto ready = folder / "ready";
  // flock(1) locks the open file of fd 9, which the shell keeps (and sleep after exec).
  auto child = ChildProcess::Spawn(
      {"sh", "-c",
       "exec 9>\"$1/granary.lock\" && flock -x 9 && touch \"$1/ready\" && exec sleep 600", "sh",
       folder.string()});
  EXPECT_TRUE(child.ok()) << child.status().ToString();
  for (int i = 0; i < 1000 && !std::filesystem::exists(ready); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(std::filesystem::exists(ready));
  return std::move(*child);
}

TEST(SpillFolder, IsLockedWhileItLivesAndRemovedWithItsFilesAfter) {
  auto parent = TempDir::Make("granary-spill-parent-").ValueOrDie();
  std::filesystem::path path;
  {
    auto folder = SpillFolder::Make(parent.path(), "granary-spill-", "the data");
    ASSERT_TRUE(folder.ok()) << folder.status().ToString();
    path = folder->path();
    EXPECT_EQ(path.parent_path(), parent.path());
    EXPECT_EQ(path.filename().string().size(), std::string("granary-spill-").size() + 6);
    EXPECT_TRUE(std::filesystem::exists(path / kSpillLockFile));
    EXPECT_FALSE(std::filesystem::exists(path / "granary.lock.new"));
    std::ofstream(path / "partition-00000.arrows") << "rows";
    // This process's own folder is live: the sweep leaves it.
    EXPECT_TRUE(RemoveStaleSpillFolders(parent.path()).empty());
    EXPECT_TRUE(std::filesystem::exists(path / "partition-00000.arrows"));
    // Moved, it is still one folder, removed once.
    SpillFolder moved = std::move(*folder);
    EXPECT_EQ(moved.path(), path);
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(SpillFolder, AKilledProcesssFolderIsRemovedALiveOnesAndOthersAreNot) {
  auto parent = TempDir::Make("granary-spill-parent-").ValueOrDie();
  const auto& root = parent.path();
  ChildProcess killed = LockingProcess(root / "granary-output-Killed");
  ChildProcess live = LockingProcess(root / "granary-spill-Alive1");
  std::ofstream(root / "granary-output-Killed" / "columns-000.arrows") << "columns";
  auto own = SpillFolder::Make(root, "granary-output-", "the training set's spilled columns");
  ASSERT_TRUE(own.ok()) << own.status().ToString();
  // Whose these are cannot be told, or they are not spill folders: left alone.
  std::filesystem::create_directory(root / "granary-spill-NoLock");
  std::filesystem::create_directory(root / "granary-spill-TooLong7");
  std::filesystem::create_directory(root / "granary-cache-Abc123");
  std::ofstream(root / "granary-spill-AFile1") << "not a folder";
  // An unlocked lock file in a folder of another name.
  std::filesystem::create_directory(root / "other-Abc123");
  std::ofstream(root / "other-Abc123" / kSpillLockFile) << "";

  // Both owners are alive: nothing goes.
  EXPECT_TRUE(RemoveStaleSpillFolders(root).empty());

  killed.Kill();
  const auto removed = RemoveStaleSpillFolders(root);
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0], root / "granary-output-Killed");
  EXPECT_FALSE(std::filesystem::exists(root / "granary-output-Killed"));
  for (const char* kept : {"granary-spill-Alive1", "granary-spill-NoLock", "granary-spill-TooLong7",
                           "granary-cache-Abc123", "granary-spill-AFile1", "other-Abc123"}) {
    EXPECT_TRUE(std::filesystem::exists(root / kept)) << kept;
  }
  EXPECT_TRUE(std::filesystem::exists(own->path() / kSpillLockFile));

  // Once the live one ends (killed too), its folder goes on the next sweep.
  live.Kill();
  EXPECT_EQ(RemoveStaleSpillFolders(root),
            std::vector<std::filesystem::path>{root / "granary-spill-Alive1"});
  EXPECT_TRUE(RemoveStaleSpillFolders(root).empty());
  // A parent that does not exist removes nothing, and is no error.
  EXPECT_TRUE(RemoveStaleSpillFolders(root / "missing").empty());
}

}  // namespace
}  // namespace granary
