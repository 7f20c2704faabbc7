// Redis Cluster routing data: the hash slot of a key, and which node serves each slot.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "granary/common/result.h"
#include "granary/online/redis/resp.h"

namespace granary::redis {

constexpr int kNumSlots = 16384;

// The slot of a key: CRC16 (XMODEM) of the key, or of its hash tag (the bytes between the first
// '{' and the next '}', when not empty), modulo 16384, as the Redis Cluster specification says.
uint16_t KeySlot(std::string_view key);

struct NodeAddress {
  std::string host;
  int port = 0;

  // Parses "host:port" (the port after the last ':'); InvalidArgument with the expected form.
  static Result<NodeAddress> Parse(std::string_view text);
  std::string ToString() const { return host + ":" + std::to_string(port); }
  bool operator==(const NodeAddress&) const = default;
};

// Which node serves each slot: an immutable snapshot, shared by every thread.
class SlotMap {
 public:
  // From a CLUSTER SLOTS reply. `origin` is the node that answered: an empty or "?" host in the
  // reply means that node's host. Slots no range covers have no node (kNoNode).
  static Result<std::shared_ptr<const SlotMap>> FromClusterSlots(const Reply& reply,
                                                                 const NodeAddress& origin);

  static constexpr uint16_t kNoNode = 0xffff;
  const std::vector<NodeAddress>& nodes() const { return nodes_; }
  // Index into nodes() of the master of `slot`, or kNoNode.
  uint16_t master(uint16_t slot) const { return master_[slot]; }
  // Replicas of the master of `slot` (indices into nodes()).
  const std::vector<uint16_t>& replicas(uint16_t slot) const;
  // Every node that is the master of some slot.
  std::vector<uint16_t> Masters() const;

  // A copy in which `slot` is served by `node` (after a MOVED redirect).
  std::shared_ptr<const SlotMap> WithSlotMoved(uint16_t slot, const NodeAddress& node) const;

 private:
  uint16_t NodeIndex(const NodeAddress& node);  // adds the node when new
  std::vector<NodeAddress> nodes_;
  std::array<uint16_t, kNumSlots> master_;
  // Per master node index: its replicas.
  std::vector<std::vector<uint16_t>> replicas_;
};

}  // namespace granary::redis
