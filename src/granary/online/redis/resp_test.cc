// The Redis layer without a server: protocol parsing, slots, slot maps, entity values.
#include "granary/online/redis/resp.h"

#include <gtest/gtest.h>

#include "granary/online/redis/entity_value.h"
#include "granary/online/redis/slot_map.h"

namespace granary::redis {
namespace {

Reply Parse(std::string_view data, int64_t* used = nullptr) {
  Reply r;
  std::string error;
  int64_t n = ParseReply(data, &r, &error);
  if (used) *used = n;
  EXPECT_GE(n, 0) << error;
  return r;
}

TEST(Resp, ParsesEveryReplyTypeOfResp2AndResp3) {
  EXPECT_EQ(Parse("+OK\r\n").type, ReplyType::kStatus);
  EXPECT_EQ(Parse("-MOVED 3999 127.0.0.1:6381\r\n").ErrorCode(), "MOVED");
  EXPECT_EQ(Parse(":-42\r\n").integer, -42);
  EXPECT_EQ(Parse("$-1\r\n").type, ReplyType::kNil);
  EXPECT_EQ(Parse("$5\r\nab\r\nc\r\n").str, "ab\r\nc");  // binary-safe
  EXPECT_EQ(Parse("$0\r\n\r\n").str, "");
  Reply a = Parse("*3\r\n:1\r\n$1\r\nx\r\n*1\r\n_\r\n");
  ASSERT_EQ(a.elements.size(), 3u);
  EXPECT_EQ(a.elements[2].elements[0].type, ReplyType::kNil);
  EXPECT_EQ(Parse("%1\r\n+k\r\n:2\r\n").elements.size(), 2u);
  EXPECT_EQ(Parse("#t\r\n").integer, 1);
  EXPECT_EQ(Parse(",3.5\r\n").str, "3.5");
  EXPECT_EQ(Parse("=8\r\ntxt:abcd\r\n").str, "abcd");
  EXPECT_EQ(Parse("!5\r\nERR x\r\n").type, ReplyType::kError);
}

TEST(Resp, IncompleteRepliesWaitAndGarbageIsAnError) {
  int64_t used = -2;
  for (std::string_view partial : {"", "$5\r\nab", "*2\r\n:1\r\n", ":12", "$5\r\nabcde\r"}) {
    Reply r;
    std::string error;
    EXPECT_EQ(ParseReply(partial, &r, &error), 0) << partial;
  }
  Parse(":1\r\n:2\r\n", &used);
  EXPECT_EQ(used, 4);  // one reply at a time
  Reply r;
  std::string error;
  EXPECT_EQ(ParseReply("?x\r\n", &r, &error), -1);
  EXPECT_EQ(ParseReply("$abc\r\n", &r, &error), -1);
  EXPECT_EQ(ParseReply("$3\r\nabcXY", &r, &error), -1);
}

TEST(Resp, CommandsAreArraysOfBulkStrings) {
  std::string out;
  CommandWriter(&out).Begin(3).Arg("SET").Arg(std::string_view("k\0y", 3)).Arg(int64_t{-5});
  EXPECT_EQ(out, std::string("*3\r\n$3\r\nSET\r\n$3\r\nk\0y\r\n$2\r\n-5\r\n", 30));
  EXPECT_EQ(EncodeCommand({"PING"}), "*1\r\n$4\r\nPING\r\n");
}

TEST(Slots, KeySlotFollowsTheClusterSpecificationWithHashTags) {
  EXPECT_EQ(KeySlot("foo"), 12182);
  EXPECT_EQ(KeySlot("123456789"), 0x31C3 & 16383);  // CRC16/XMODEM check value
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("user1000"));
  EXPECT_EQ(KeySlot("foo{}{bar}"), KeySlot("foo{}{bar}"));
  EXPECT_NE(KeySlot("foo{}{bar}"), KeySlot("bar"));  // an empty tag: the whole key
  EXPECT_EQ(KeySlot("foo{{bar}}zap"), KeySlot("{bar"));
}

TEST(Slots, SlotMapFromClusterSlotsWithReplicasAndMovedPatches) {
  Reply slots = Parse(
      "*2\r\n"
      "*4\r\n:0\r\n:8191\r\n*2\r\n$9\r\n127.0.0.1\r\n:7000\r\n*2\r\n$0\r\n\r\n:7003\r\n"
      "*3\r\n:8192\r\n:16383\r\n*2\r\n$9\r\n127.0.0.1\r\n:7001\r\n");
  auto map = SlotMap::FromClusterSlots(slots, NodeAddress{"10.0.0.1", 7000});
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  const SlotMap& m = **map;
  EXPECT_EQ(m.nodes()[m.master(0)].port, 7000);
  EXPECT_EQ(m.nodes()[m.master(16383)].port, 7001);
  ASSERT_EQ(m.replicas(5).size(), 1u);
  EXPECT_EQ(m.nodes()[m.replicas(5)[0]].host, "10.0.0.1");  // empty host: the answering node
  EXPECT_TRUE(m.replicas(9000).empty());
  EXPECT_EQ(m.Masters().size(), 2u);
  auto moved = m.WithSlotMoved(5, NodeAddress{"127.0.0.1", 7001});
  EXPECT_EQ(moved->nodes()[moved->master(5)].port, 7001);
  EXPECT_EQ(m.nodes()[m.master(5)].port, 7000);  // the original is unchanged
  EXPECT_FALSE(SlotMap::FromClusterSlots(Parse("-ERR no cluster\r\n"), {}).ok());
}

TEST(Slots, ClusterSlotsWithAPortOutOfRangeIsRefused) {
  // Found by the resp fuzzer: the port was cast to int unchecked (4294974296 became 7000).
  for (std::string_view port : {"0", "-1", "65536", "4294974296"}) {
    Reply slots = Parse(
        "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$9\r\n127.0.0.1\r\n:" + std::string(port) + "\r\n");
    auto map = SlotMap::FromClusterSlots(slots, NodeAddress{"10.0.0.1", 7000});
    ASSERT_FALSE(map.ok()) << port;
    EXPECT_NE(map.status().message().find("port " + std::string(port) + ", outside 1..65535"),
              std::string::npos)
        << map.status().ToString();
  }
}

TEST(Resp, AggregatesBeyondTheElementLimitAreErrorsWithoutOverflow) {
  // Seen while writing the resp fuzzer: a map's count was doubled before any check (signed
  // overflow).
  for (std::string_view reply : {"%9223372036854775807\r\n", "%4611686018427387904\r\n",
                                 "*268435457\r\n", "~9223372036854775807\r\n"}) {
    Reply r;
    std::string error;
    EXPECT_EQ(ParseReply(reply, &r, &error), -1) << reply;
    EXPECT_EQ(error, "aggregate too large") << reply;
  }
  // The limit itself is only a bound: a smaller count waits for its elements.
  Reply r;
  std::string error;
  EXPECT_EQ(ParseReply("%134217728\r\n", &r, &error), 0);
}

TEST(Slots, AddressesParseWithClearErrors) {
  auto a = NodeAddress::Parse("redis.local:6380");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "redis.local");
  EXPECT_EQ(a->port, 6380);
  EXPECT_EQ(NodeAddress::Parse("[::1]:7000")->host, "::1");
  EXPECT_NE(NodeAddress::Parse("localhost").status().message().find("write host:port"),
            std::string::npos);
  EXPECT_FALSE(NodeAddress::Parse("h:99999").ok());
}

TEST(EntityValue, SectionsAreFoundByViewIdAndBadValuesAreCorruption) {
  std::string value;
  AppendSection(&value, 7, "first body");
  AppendSection(&value, 9, std::string(300, 'x'));  // a two-byte length
  std::string_view body;
  ASSERT_TRUE(FindSection(value, 9, &body).ok());
  EXPECT_EQ(body.size(), 300u);
  ASSERT_TRUE(FindSection(value, 7, &body).ok());
  EXPECT_EQ(body, "first body");
  ASSERT_TRUE(FindSection(value, 8, &body).ok());
  EXPECT_TRUE(body.empty());
  EXPECT_EQ(FindSection(value.substr(0, value.size() - 1), 8, &body).code(),
            StatusCode::kCorruption);
  EXPECT_EQ(FindSection("\x02" + value.substr(1), 7, &body).code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace granary::redis
