#include "redis_baseline.h"

#include "granary/online/entity_key.h"
#include "granary/online/redis/slot_map.h"
#include "granary/online/varint.h"

namespace granary::bench {

Result<RawRedis> RawRedis::Connect(const std::vector<std::string>& masters, bool cluster) {
  RawRedis raw;
  raw.cluster_ = cluster;
  for (const std::string& m : masters) {
    GRANARY_ASSIGN_OR_RAISE(redis::NodeAddress a, redis::NodeAddress::Parse(m));
    redisContext* c = redisConnect(a.host.c_str(), a.port);
    if (c == nullptr || c->err) return Status::Unavailable("hiredis cannot connect to " + m);
    raw.nodes_.push_back(c);
    raw.ports_.push_back(a.port);
  }
  return raw;
}

Status RawRedis::LoadSlots() {
  if (!cluster_) return Status::OK();
  slot_node_.assign(redis::kNumSlots, 0);
  auto* r = static_cast<redisReply*>(redisCommand(nodes_[0], "CLUSTER SLOTS"));
  for (size_t i = 0; r && i < r->elements; ++i) {
    redisReply* range = r->element[i];
    int port = static_cast<int>(range->element[2]->element[1]->integer);
    for (size_t n = 0; n < ports_.size(); ++n) {
      if (ports_[n] != port) continue;
      for (long long s = range->element[0]->integer; s <= range->element[1]->integer; ++s)
        slot_node_[s] = static_cast<int>(n);
    }
  }
  if (r) freeReplyObject(r);
  return Status::OK();
}

size_t RawRedis::GetAll(const std::vector<std::string>& keys) {
  std::vector<int> sent(nodes_.size(), 0);
  for (const std::string& key : keys) {
    const int node = cluster_ ? slot_node_[redis::KeySlot(key)] : 0;
    const char* argv[2] = {"GET", key.data()};
    size_t lens[2] = {3, key.size()};
    redisAppendCommandArgv(nodes_[node], 2, argv, lens);
    ++sent[node];
  }
  size_t bytes = 0;
  for (size_t n = 0; n < nodes_.size(); ++n) {
    for (int i = 0; i < sent[n]; ++i) {
      void* reply = nullptr;
      redisGetReply(nodes_[n], &reply);
      if (reply) {
        bytes += static_cast<redisReply*>(reply)->len;
        freeReplyObject(reply);
      }
    }
  }
  return bytes;
}

void RawRedis::Close() {
  for (auto* c : nodes_) redisFree(c);
  nodes_.clear();
}

std::string RedisKey(int64_t id) {
  std::string k = "bench:";
  entity_key::AppendInteger(&k, id);
  return k;
}

int64_t UsedMemory(const testing::RedisServer& s) {
  return std::stoll(s.Info("memory", "used_memory").ValueOrDie());
}

Result<int64_t> RewriteAsHashes(const testing::RedisServer& server, int64_t n) {
  redisContext* ctx = redisConnect("127.0.0.1", server.port());
  if (ctx == nullptr || ctx->err) return Status::Unavailable("hiredis cannot connect");
  int64_t value_bytes = 0;
  for (int64_t id = 0; id < n; ++id) {
    std::string key = RedisKey(id);
    auto* r = static_cast<redisReply*>(redisCommand(ctx, "GET %b", key.data(), key.size()));
    std::string value(r->str, r->len);
    freeReplyObject(r);
    value_bytes += static_cast<int64_t>(value.size());
    size_t pos = 1;
    std::vector<std::string> args = {"HSET", key + "#h"};
    while (pos < value.size()) {
      std::string field = value.substr(pos, 4);
      pos += 4;
      uint64_t len = 0;
      layout::GetVarint(value, &pos, &len);
      args.push_back(field);
      args.push_back(value.substr(pos, len));
      pos += len;
    }
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    r = static_cast<redisReply*>(
        redisCommandArgv(ctx, static_cast<int>(argv.size()), argv.data(), lens.data()));
    freeReplyObject(r);
    r = static_cast<redisReply*>(
        redisCommand(ctx, "PEXPIRE %b 7776000000", (key + "#h").data(), key.size() + 2));
    freeReplyObject(r);
    r = static_cast<redisReply*>(redisCommand(ctx, "DEL %b", key.data(), key.size()));
    freeReplyObject(r);
  }
  redisFree(ctx);
  return value_bytes;
}

}  // namespace granary::bench
