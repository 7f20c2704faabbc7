// RedisOnlineStore's view markers (online_store.h, "View markers"; docs/ONLINE_LAYOUT.md): one
// hash per shard, field = view name, value = EncodeViewMarker.
//
// Standalone, the shard is the server: key "<project>:\0markers". On a cluster, each master holds
// a hash of its own, "<project>:\0markers{m<n>}", whose hash tag "m<n>" is the first (smallest n)
// that maps to a slot the master serves, so that a master that comes back empty shows by the
// absence of its own marker. The keys are found again from the slot map at each read; after a
// reshard that moves such a slot, the master that lost it reads as lost until the next
// incremental run rewrites the markers (a reload that write-if-newer makes cheap). The zero byte
// after the prefix keeps marker keys apart from entity keys (whose first byte is a type tag).
#include <fmt/format.h>

#include "granary/online/redis/redis_store.h"
#include "granary/online/redis/thread_session.h"

namespace granary {
namespace {

using redis::CollectBatch;
using redis::CommandWriter;
using redis::KeySlot;
using redis::ReplyType;

}  // namespace

std::vector<RedisOnlineStore::MarkerShard> RedisOnlineStore::MarkerShards() const {
  const std::string base = prefix_ + std::string(1, '\0') + "markers";
  if (!options_.cluster) return {{Describe(), base}};
  uint64_t version = 0;
  auto slots = topology_->slots(&version);
  std::vector<MarkerShard> out;
  if (!slots) return out;
  for (uint16_t master : slots->Masters()) {
    // Every master serves some slot, and "m0".."m99999" reach every slot: the search ends.
    for (int n = 0; n < 1'000'000; ++n) {
      const std::string tag = "m" + std::to_string(n);
      if (slots->master(KeySlot(tag)) == master) {
        out.push_back({slots->nodes()[master].ToString(), base + "{" + tag + "}"});
        break;
      }
    }
  }
  return out;
}

Status RedisOnlineStore::PutViewMarker(const std::string& view, const ViewMarker& marker) {
  const std::string value = EncodeViewMarker(marker);
  auto batch = std::make_shared<CollectBatch>();
  const auto shards = MarkerShards();
  if (shards.empty()) {
    return Status::Unavailable(
        fmt::format("{}: no master known to write a view marker to", Describe()));
  }
  for (const MarkerShard& shard : shards) {
    batch->Add(KeySlot(shard.key), false, [&](CommandWriter& w) {
      w.Begin(4).Arg("HSET").Arg(shard.key).Arg(view).Arg(value);
    });
  }
  GRANARY_RETURN_NOT_OK(RunSync(batch).WithContext(Describe()));
  for (const auto& r : batch->replies) {
    if (r.type == ReplyType::kError) {
      return redis::ErrorReplyStatus("HSET (view marker)", r.str).WithContext(Describe());
    }
  }
  return Status::OK();
}

Result<std::vector<ShardMarkers>> RedisOnlineStore::ReadViewMarkers() {
  const auto shards = MarkerShards();
  if (shards.empty()) {
    return Status::Unavailable(
        fmt::format("{}: no master known to read view markers from", Describe()));
  }
  auto batch = std::make_shared<CollectBatch>();
  for (const MarkerShard& shard : shards) {
    // Not read_only: a replica may lag behind its master's markers.
    batch->Add(KeySlot(shard.key), false,
               [&](CommandWriter& w) { w.Begin(2).Arg("HGETALL").Arg(shard.key); });
  }
  GRANARY_RETURN_NOT_OK(RunSync(batch).WithContext(Describe()));
  std::vector<ShardMarkers> out;
  for (size_t i = 0; i < shards.size(); ++i) {
    const redis::OwnedReply& r = batch->replies.at(i);
    if (r.type == ReplyType::kError) {
      return redis::ErrorReplyStatus("HGETALL (view markers)", r.str).WithContext(Describe());
    }
    if (r.type != ReplyType::kArray || r.elements.size() % 2 != 0) {
      return Status::Unavailable(
          fmt::format("{}: unexpected reply to HGETALL of the view markers on {}", Describe(),
                      shards[i].shard));
    }
    ShardMarkers markers;
    markers.shard = shards[i].shard;
    for (size_t e = 0; e + 1 < r.elements.size(); e += 2) {
      const std::string& view = r.elements[e].str;
      GRANARY_ASSIGN_OR_RAISE(
          markers.views[view],
          DecodeViewMarker(r.elements[e + 1].str, fmt::format("{}: marker of {} on {}", Describe(),
                                                              view, shards[i].shard)));
    }
    out.push_back(std::move(markers));
  }
  return out;
}

Status RedisOnlineStore::DeleteViewMarkers(const std::vector<std::string>& view_names) {
  if (view_names.empty()) return Status::OK();
  auto batch = std::make_shared<CollectBatch>();
  for (const MarkerShard& shard : MarkerShards()) {
    batch->Add(KeySlot(shard.key), false, [&](CommandWriter& w) {
      w.Begin(2 + view_names.size()).Arg("HDEL").Arg(shard.key);
      for (const std::string& view : view_names) w.Arg(view);
    });
  }
  if (batch->commands.empty()) return Status::OK();
  GRANARY_RETURN_NOT_OK(RunSync(batch).WithContext(Describe()));
  for (const auto& r : batch->replies) {
    if (r.type == ReplyType::kError) {
      return redis::ErrorReplyStatus("HDEL (view markers)", r.str).WithContext(Describe());
    }
  }
  return Status::OK();
}

}  // namespace granary
