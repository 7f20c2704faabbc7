#include "granary/testing/redis_server.h"

#include <gtest/gtest.h>

namespace granary::testing {
namespace {

TEST(RedisServer, StartsOnAFreePortWithPasswordAndAclUsersAndStops) {
  RedisServerOptions options;
  options.password = "pw";
  options.acl_users = {{"alice", "on >secret ~* &* +@all"}};
  auto server = RedisServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  RedisServer& s = **server;
  EXPECT_EQ(s.Check({"SET", "k", "v"})->type, RedisReply::Type::kStatus);
  EXPECT_EQ(s.Check({"GET", "k"})->str, "v");
  EXPECT_EQ(s.Check({"ACL", "WHOAMI"})->str, "default");
  EXPECT_EQ(s.Check({"ACL", "GETUSER", "alice"})->type, RedisReply::Type::kArray);
  EXPECT_FALSE(s.Info("memory", "used_memory")->empty());
  EXPECT_EQ(s.Command({"NOSUCHCOMMAND"})->type, RedisReply::Type::kError);
  s.Stop();
  EXPECT_FALSE(s.running());
  EXPECT_EQ(s.Command({"PING"}).status().code(), StatusCode::kUnavailable);
}

TEST(RedisCluster, ThreeMastersThreeReplicasCoverEverySlot) {
  auto cluster = RedisCluster::Start();
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  RedisCluster& c = **cluster;
  EXPECT_EQ(c.num_nodes(), 6);
  EXPECT_EQ(c.SeedNodes().size(), 6u);
  EXPECT_EQ(*c.MasterOf(0), 0);
  EXPECT_EQ(*c.MasterOf(8000), 1);
  EXPECT_EQ(*c.MasterOf(16383), 2);
  EXPECT_EQ(*c.KeySlot("foo"), 12182);  // from the Redis Cluster specification
  EXPECT_EQ(c.node(3).Info("replication", "role").ValueOrDie(), "slave");
}

}  // namespace
}  // namespace granary::testing
