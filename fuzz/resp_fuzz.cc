// Fuzzes the RESP reply parser with arbitrary bytes from a Redis server, consumed as a connection
// does (reply after reply from one buffer), and what Granary reads out of replies: error codes,
// MOVED/ASK addresses, CLUSTER SLOTS maps and entity values (the sections of a GET reply).
// Properties beyond "never crash": a reply parsed from a buffer parses to the same length when
// the bytes after it are cut off, and no proper prefix of it is a complete reply.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "granary/online/redis/entity_value.h"
#include "granary/online/redis/resp.h"
#include "granary/online/redis/slot_map.h"

namespace {

using granary::redis::Reply;
using granary::redis::ReplyType;

void Fail(const char* what, std::string_view data) {
  std::fprintf(stderr, "%s (%zu bytes)\n", what, data.size());
  std::abort();
}

// Reads a reply as the store and the router do.
void Use(const Reply& reply) {
  const granary::redis::NodeAddress origin{"127.0.0.1", 7000};
  auto owned = granary::redis::OwnedReply::From(reply);
  if (owned.type != reply.type || owned.str != reply.str) Fail("OwnedReply differs", reply.str);
  if (reply.is_error()) {
    const std::string_view code = reply.ErrorCode();
    if (code == "MOVED" || code == "ASK") {
      const size_t space = reply.str.rfind(' ');
      if (space != std::string_view::npos) {
        (void)granary::redis::NodeAddress::Parse(reply.str.substr(space + 1));
      }
    }
    return;
  }
  if (reply.type == ReplyType::kArray) {
    auto map = granary::redis::SlotMap::FromClusterSlots(reply, origin);
    if (map.ok()) {
      for (const auto& node : (*map)->nodes()) {
        if (node.port < 1 || node.port > 65535) Fail("a node with a port out of range", reply.str);
      }
      for (uint16_t m : (*map)->Masters()) {
        if (m >= (*map)->nodes().size()) Fail("master index out of range", reply.str);
      }
      for (int slot = 0; slot < granary::redis::kNumSlots; slot += 97) {
        for (uint16_t r : (*map)->replicas(static_cast<uint16_t>(slot))) {
          if (r >= (*map)->nodes().size()) Fail("replica index out of range", reply.str);
        }
      }
    }
    for (const Reply& e : reply.elements) {
      if (e.type == ReplyType::kString) Use(e);  // MGET-like: one entity value per element
    }
    return;
  }
  if (reply.type == ReplyType::kString) {
    size_t total = 0;
    auto st = granary::redis::ForEachSection(
        reply.str, [&](uint32_t, std::string_view body) { total += body.size(); });
    if (st.ok() && total > reply.str.size()) Fail("sections larger than the value", reply.str);
    std::string_view body;
    (void)granary::redis::FindSection(reply.str, 0x01020304u, &body);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  Reply reply;
  std::string error;
  while (!in.empty()) {
    const int64_t used = granary::redis::ParseReply(in, &reply, &error);
    if (used <= 0) break;
    if (static_cast<uint64_t>(used) > in.size()) Fail("used more bytes than given", in);
    Use(reply);
    const std::string_view whole = in.substr(0, used);
    Reply again;
    if (granary::redis::ParseReply(whole, &again, &error) != used) {
      Fail("the reply alone parses differently", whole);
    }
    // A reply is complete only at its end: cut short anywhere, it is incomplete (0) or an error
    // (-1) but never a shorter complete reply. Checked at a few cuts to stay linear.
    for (size_t cut : {size_t{0}, whole.size() / 2, whole.size() - 1}) {
      if (cut >= whole.size()) continue;
      if (granary::redis::ParseReply(whole.substr(0, cut), &again, &error) > 0) {
        Fail("a prefix of a reply is a complete reply", whole);
      }
    }
    in.remove_prefix(used);
  }
  return 0;
}
