// The Redis side of bench/online/online_latency.cc: a minimal hiredis client (the baseline), and
// the hash-per-entity layout the design started from, for the memory comparison.
#pragma once

#include <hiredis/hiredis.h>

#include <string>
#include <vector>

#include "granary/common/result.h"
#include "granary/testing/redis_server.h"

namespace granary::bench {

// A minimal hiredis client: one connection per node, pipelined GETs routed by slot.
class RawRedis {
 public:
  static Result<RawRedis> Connect(const std::vector<std::string>& masters, bool cluster);
  // Slot -> node, from CLUSTER SLOTS of the first node.
  Status LoadSlots();
  // GETs every key (pipelined per node, node after node); returns the bytes received.
  size_t GetAll(const std::vector<std::string>& keys);
  void Close();

 private:
  bool cluster_ = false;
  std::vector<redisContext*> nodes_;
  std::vector<int> ports_;
  std::vector<int> slot_node_;
};

// The Redis key of customer `id` in the benchmark's project.
std::string RedisKey(int64_t id);

// INFO used_memory of a server, in bytes.
int64_t UsedMemory(const testing::RedisServer& s);

// Rewrites the values of customers [0, n) as one hash per entity (a field per view section, with
// the same expiry), deleting the strings; returns the bytes of the strings it read.
Result<int64_t> RewriteAsHashes(const testing::RedisServer& server, int64_t n);

}  // namespace granary::bench
