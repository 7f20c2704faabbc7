#include "granary/testing/child_process.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include "granary/common/temp_dir.h"

namespace granary::testing {
namespace {

TEST(ChildProcess, WaitGivesTheExitStatusAndTheLogGetsItsOutput) {
  auto dir = TempDir::Make("granary-child-test-");
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  const auto log = dir->path() / "out.log";
  auto child =
      ChildProcess::Spawn({"sh", "-c", "echo started; echo oops >&2; exit 3"}, {.log = log});
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  EXPECT_TRUE(child->running());
  const int wstatus = child->Wait();
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 3);
  EXPECT_FALSE(child->running());
  EXPECT_EQ(FileTail(log), "started\noops\n");
  EXPECT_EQ(FileTail(log, 5), "oops\n");
}

TEST(ChildProcess, StopEndsAProcessThatHonoursTheSignalAndKillsOneThatDoesNot) {
  auto polite = ChildProcess::Spawn({"sleep", "60"});
  ASSERT_TRUE(polite.ok()) << polite.status().ToString();
  EXPECT_FALSE(polite->Exited());
  polite->Stop(SIGTERM, std::chrono::seconds(10));
  EXPECT_FALSE(polite->running());

  // Ignores SIGTERM: ended by SIGKILL once the grace period is over.
  auto stubborn = ChildProcess::Spawn({"sh", "-c", "trap '' TERM; sleep 60"});
  ASSERT_TRUE(stubborn.ok()) << stubborn.status().ToString();
  stubborn->Stop(SIGTERM, std::chrono::milliseconds(200));
  EXPECT_FALSE(stubborn->running());
}

TEST(ChildProcess, AMissingProgramExitsWith127AndExitedReapsIt) {
  auto child = ChildProcess::Spawn({"granary-no-such-program"});
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  const int wstatus = child->Wait();
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 127);
  EXPECT_TRUE(child->Exited());
}

TEST(ChildProcess, MovingHandsOverThePid) {
  auto child = ChildProcess::Spawn({"sleep", "60"});
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  const pid_t pid = child->pid();
  ChildProcess moved = std::move(*child);
  EXPECT_EQ(moved.pid(), pid);
  EXPECT_FALSE(child->running());
  moved.Kill();
  EXPECT_FALSE(moved.running());
}

TEST(FreeLoopbackPort, GivesAPortToBindTo) {
  auto port = FreeLoopbackPort();
  ASSERT_TRUE(port.ok()) << port.status().ToString();
  EXPECT_GT(*port, 0);
  EXPECT_LT(*port, 65536);
}

}  // namespace
}  // namespace granary::testing
