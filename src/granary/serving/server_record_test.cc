// ServerRecord: written and locked while held, judged by its lock (not by its pid), removed on
// close; a record left without a lock (a killed server) reads as no server.
#include "granary/serving/server_record.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <fstream>

#include "granary/common/temp_dir.h"

namespace granary {
namespace {

class ServerRecordTest : public ::testing::Test {
 protected:
  std::filesystem::path Registry() const { return dir_.path() / "registry.db"; }
  std::filesystem::path RecordPath() const { return ServerRecord::PathFor(Registry()); }
  TempDir dir_ = TempDir::Make("granary_server_record_").ValueOrDie();
};

RunningServer AServer() {
  RunningServer s;
  s.url = LocalUrlFor("127.0.0.1", 6566);
  s.pid = 4242;
  s.host = "build-01";
  s.token_required = true;
  s.store = "rocksdb at /repo/data/online";
  s.started = "2026-12-05T06:40:00.000000Z";
  return s;
}

TEST_F(ServerRecordTest, APublishedRecordIsFoundUntilItIsClosed) {
  EXPECT_FALSE(FindRunningServer(Registry()).ValueOrDie().has_value());
  auto record = ServerRecord::Publish(Registry(), AServer());
  ASSERT_TRUE(record.ok()) << record.status().ToString();
  EXPECT_EQ(RecordPath(), dir_.path() / "registry.db.server");
  auto found = FindRunningServer(Registry());
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->url, "http://127.0.0.1:6566");
  EXPECT_EQ((*found)->pid, 4242);
  EXPECT_EQ((*found)->host, "build-01");
  EXPECT_TRUE((*found)->token_required);
  EXPECT_EQ((*found)->store, "rocksdb at /repo/data/online");
  // A second server of the repository is refused, naming the first.
  auto second = ServerRecord::Publish(Registry(), AServer());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kAlreadyExists);
  EXPECT_NE(second.status().message().find("pid 4242"), std::string::npos);
  record->reset();
  EXPECT_FALSE(std::filesystem::exists(RecordPath()));
  EXPECT_FALSE(FindRunningServer(Registry()).ValueOrDie().has_value());
}

TEST_F(ServerRecordTest, ARecordNobodyLocksIsNoServerAndIsReplaced) {
  // As a server killed with SIGKILL leaves it: the file, with a live-looking pid, but no lock.
  std::ofstream(RecordPath()) << "url=http://127.0.0.1:1\npid=" << getpid() << "\n";
  EXPECT_FALSE(FindRunningServer(Registry()).ValueOrDie().has_value());
  auto record = ServerRecord::Publish(Registry(), AServer());
  ASSERT_TRUE(record.ok()) << record.status().ToString();
  EXPECT_EQ(FindRunningServer(Registry()).ValueOrDie()->url, "http://127.0.0.1:6566");
}

TEST_F(ServerRecordTest, ALockedRecordThatMakesNoSenseIsCorruptionWithAFix) {
  std::ofstream(RecordPath()) << "this is not a record\n";
  const int fd = open(RecordPath().c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(flock(fd, LOCK_EX), 0);
  auto found = FindRunningServer(Registry());
  close(fd);
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.status().code(), StatusCode::kCorruption);
  EXPECT_NE(found.status().message().find("registry.db.server:1"), std::string::npos)
      << found.status().ToString();
}

TEST(LocalUrlFor, AnyAddressIsReachedOnLoopback) {
  EXPECT_EQ(LocalUrlFor("0.0.0.0", 80), "http://127.0.0.1:80");
  EXPECT_EQ(LocalUrlFor("::", 80), "http://[::1]:80");
  EXPECT_EQ(LocalUrlFor("::1", 80), "http://[::1]:80");
  EXPECT_EQ(LocalUrlFor("10.0.0.5", 80), "http://10.0.0.5:80");
}

}  // namespace
}  // namespace granary
