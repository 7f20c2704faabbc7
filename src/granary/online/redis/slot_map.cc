#include "granary/online/redis/slot_map.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace granary::redis {
namespace {

constexpr std::array<uint16_t, 256> MakeCrc16Table() {
  std::array<uint16_t, 256> table{};
  for (int i = 0; i < 256; ++i) {
    uint16_t crc = static_cast<uint16_t>(i << 8);
    for (int b = 0; b < 8; ++b) {
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<uint16_t>(crc << 1);
    }
    table[i] = crc;
  }
  return table;
}
constexpr std::array<uint16_t, 256> kCrc16 = MakeCrc16Table();

uint16_t Crc16(std::string_view data) {
  uint16_t crc = 0;
  for (unsigned char c : data) {
    crc = static_cast<uint16_t>((crc << 8) ^ kCrc16[((crc >> 8) ^ c) & 0xff]);
  }
  return crc;
}

const std::vector<uint16_t> kNoReplicas;

}  // namespace

uint16_t KeySlot(std::string_view key) {
  size_t open = key.find('{');
  if (open != std::string_view::npos) {
    size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close != open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return Crc16(key) & (kNumSlots - 1);
}

Result<NodeAddress> NodeAddress::Parse(std::string_view text) {
  size_t colon = text.rfind(':');
  NodeAddress a;
  int port = 0;
  if (colon == std::string_view::npos || colon == 0) {
    return Status::InvalidArgument(
        fmt::format("'{}' is not a Redis address; write host:port, e.g. 127.0.0.1:6379", text));
  }
  std::string_view port_text = text.substr(colon + 1);
  auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || p != port_text.data() + port_text.size() || port <= 0 || port > 65535) {
    return Status::InvalidArgument(
        fmt::format("'{}' has no valid port; write host:port, e.g. 127.0.0.1:6379", text));
  }
  a.host = std::string(text.substr(0, colon));
  if (a.host.size() > 2 && a.host.front() == '[' && a.host.back() == ']') {
    a.host = a.host.substr(1, a.host.size() - 2);  // [::1]:6379
  }
  a.port = port;
  return a;
}

uint16_t SlotMap::NodeIndex(const NodeAddress& node) {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i] == node) return static_cast<uint16_t>(i);
  }
  nodes_.push_back(node);
  replicas_.emplace_back();
  return static_cast<uint16_t>(nodes_.size() - 1);
}

Result<std::shared_ptr<const SlotMap>> SlotMap::FromClusterSlots(const Reply& reply,
                                                                 const NodeAddress& origin) {
  if (reply.type != ReplyType::kArray) {
    return Status::Unavailable(fmt::format("CLUSTER SLOTS from {} did not return an array{}",
                                           origin.ToString(),
                                           reply.is_error() ? ": " + std::string(reply.str) : ""));
  }
  auto map = std::make_shared<SlotMap>();
  map->master_.fill(kNoNode);
  auto address = [&](const Reply& node) -> Result<NodeAddress> {
    if (node.type != ReplyType::kArray || node.elements.size() < 2 ||
        node.elements[1].type != ReplyType::kInteger) {
      return Status::Unavailable("malformed node in CLUSTER SLOTS from " + origin.ToString());
    }
    // A port outside 1..65535 (once truncated to an int: found by the resp fuzzer) would
    // send commands to the wrong node or fail every connection to it.
    const int64_t port = node.elements[1].integer;
    if (port < 1 || port > 65535) {
      return Status::Unavailable(
          fmt::format("CLUSTER SLOTS from {} names a node with port {}, outside 1..65535",
                      origin.ToString(), port));
    }
    NodeAddress a;
    a.host = std::string(node.elements[0].str);
    if (a.host.empty() || a.host == "?") a.host = origin.host;
    a.port = static_cast<int>(port);
    // Node indices are 16 bits, kNoNode excluded.
    if (map->nodes_.size() >= kNoNode) {
      return Status::Unavailable("CLUSTER SLOTS from " + origin.ToString() +
                                 " names more than 65534 nodes");
    }
    return a;
  };
  for (const Reply& range : reply.elements) {
    if (range.type != ReplyType::kArray || range.elements.size() < 3 ||
        range.elements[0].type != ReplyType::kInteger ||
        range.elements[1].type != ReplyType::kInteger) {
      return Status::Unavailable("malformed slot range in CLUSTER SLOTS from " + origin.ToString());
    }
    int64_t lo = range.elements[0].integer, hi = range.elements[1].integer;
    if (lo < 0 || hi >= kNumSlots || lo > hi) {
      return Status::Unavailable("slot range out of bounds in CLUSTER SLOTS");
    }
    GRANARY_ASSIGN_OR_RAISE(NodeAddress master, address(range.elements[2]));
    uint16_t m = map->NodeIndex(master);
    for (int64_t s = lo; s <= hi; ++s) map->master_[s] = m;
    for (size_t r = 3; r < range.elements.size(); ++r) {
      GRANARY_ASSIGN_OR_RAISE(NodeAddress replica, address(range.elements[r]));
      uint16_t idx = map->NodeIndex(replica);
      auto& list = map->replicas_[m];
      if (std::find(list.begin(), list.end(), idx) == list.end()) list.push_back(idx);
    }
  }
  return std::shared_ptr<const SlotMap>(std::move(map));
}

const std::vector<uint16_t>& SlotMap::replicas(uint16_t slot) const {
  uint16_t m = master_[slot];
  return m == kNoNode ? kNoReplicas : replicas_[m];
}

std::vector<uint16_t> SlotMap::Masters() const {
  std::vector<uint16_t> out;
  for (uint16_t m : master_) {
    if (m != kNoNode && std::find(out.begin(), out.end(), m) == out.end()) out.push_back(m);
  }
  return out;
}

std::shared_ptr<const SlotMap> SlotMap::WithSlotMoved(uint16_t slot,
                                                      const NodeAddress& node) const {
  auto copy = std::make_shared<SlotMap>(*this);
  copy->master_[slot] = copy->NodeIndex(node);
  return copy;
}

}  // namespace granary::redis
