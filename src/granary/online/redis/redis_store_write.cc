// RedisOnlineStore's write path (WriteBatch): SET NX for absent keys, the write script for the
// others (docs/ONLINE_LAYOUT.md, "Redis"). Reads, deletes and the sessions are in redis_store.cc.
#include <arrow/api.h>

#include <algorithm>
#include <deque>
#include <numeric>

#include "granary/online/redis/entity_value.h"
#include "granary/online/redis/redis_store.h"
#include "granary/online/redis/thread_session.h"
#include "granary/online/value_codec.h"

namespace granary {
namespace {

using redis::CommandWriter;
using redis::KeySlot;
using redis::Reply;
using redis::ReplyType;
using redis::RunUntil;
using redis::SyncBatch;

// Keys per EVALSHA on a standalone server, and rows per batch sent to the store threads. In a
// cluster each EVALSHA has one key: keys of a batch rarely share a slot, and a multi-key command
// meets TRYAGAIN while its slot migrates.
constexpr size_t kKeysPerScript = 64;
constexpr int64_t kRowsPerBatch = 4096;

// EVALSHA of the write script: counts stored and skipped rows.
class WriteScriptBatch : public SyncBatch {
 public:
  void OnReply(size_t i, const Reply& reply) override {
    if (reply.type == ReplyType::kInteger) {
      stats.written += reply.integer;
      stats.skipped_older += static_cast<int64_t>(keys_per_command[i]) - reply.integer;
      return;
    }
    if (!reply.is_error()) {  // the script returns a count or an error, nothing else
      return SetError(
          Status::Internal("unexpected reply to the write script: " + std::string(reply.str)));
    }
    SetError(reply.str.rfind("GRANARY", 0) == 0
                 ? Status::Corruption(std::string(reply.str.substr(8)))
                 : redis::ErrorReplyStatus("the write script (EVALSHA)", reply.str));
  }
  std::vector<uint16_t> keys_per_command;
  WriteStats stats;
};

// SET key value NX [PX ttl] per row: stores the rows whose entity has no key yet (a blind write,
// a third of the script's server CPU) and lists the others for the write script.
class SetAbsentBatch : public SyncBatch {
 public:
  void OnReply(size_t i, const Reply& reply) override {
    if (reply.is_error()) return SetError(redis::ErrorReplyStatus("SET NX", reply.str));
    if (reply.type == ReplyType::kNil) {
      present.push_back(row_of_command[i]);
    } else {
      ++stored;
    }
  }
  std::vector<uint32_t> row_of_command;  // offset in the chunk
  std::vector<uint32_t> present;         // rows whose key exists: for the script
  int64_t stored = 0;
};

}  // namespace

Result<WriteStats> RedisOnlineStore::WriteBatch(const ViewLayout& view,
                                                const arrow::RecordBatch& rows) {
  GRANARY_ASSIGN_OR_RAISE(EntityKeyColumn keys, EncodeEntityKeys(view, rows));
  GRANARY_ASSIGN_OR_RAISE(BodyEncoder encoder, BodyEncoder::Make(view, rows));
  const std::string view_id = redis::ViewIdBytes(view.view_id());
  const int64_t ttl_ms =
      view.key_ttl().micros <= 0 ? 0 : std::max<int64_t>(1, view.key_ttl().micros / 1000);
  // Batches in flight at once on this thread: their pipelines overlap on every node.
  constexpr size_t kMaxInFlight = 4;
  ThreadSession& session = ThisThread();
  std::deque<std::shared_ptr<WriteScriptBatch>> in_flight;
  WriteStats total;
  Status first_error;
  auto wait_one = [&] {
    auto batch = std::move(in_flight.front());
    in_flight.pop_front();
    RunUntil(session, &batch->done);
    if (!batch->status().ok() && first_error.ok()) first_error = batch->status();
    total += batch->stats;
  };

  std::string key, body, value;
  std::vector<uint16_t> slots;
  // The write script for rows `chunk` (offsets from `begin`, in batch order: a key's rows stay in
  // order), up to kKeysPerScript keys per EVALSHA.
  auto queue_script = [&](int64_t begin, const std::vector<uint32_t>& chunk) -> Status {
    auto batch = std::make_shared<WriteScriptBatch>();
    batch->script = &write_script_;
    const size_t n = chunk.size();
    for (size_t g = 0; g < n;) {
      const size_t limit = options_.cluster ? 1 : kKeysPerScript;
      const size_t g_end = std::min(n, g + limit);
      const size_t count = g_end - g;
      Status encode_status;
      batch->Add(slots[chunk[g]], false, [&](CommandWriter& w) {
        w.Begin(3 + 2 * count + 2).Arg("EVALSHA").Arg(write_sha_).Arg(static_cast<int64_t>(count));
        for (size_t i = g; i < g_end; ++i) {
          key.assign(prefix_).append(keys.key(begin + chunk[i]));
          w.Arg(key);
        }
        w.Arg(view_id).Arg(ttl_ms);
        for (size_t i = g; i < g_end; ++i) {
          body.clear();
          Status st = encoder.Append(begin + chunk[i], &body);
          if (!st.ok() && encode_status.ok()) encode_status = st;
          w.Arg(body);
        }
      });
      if (!encode_status.ok()) return encode_status;
      batch->keys_per_command.push_back(static_cast<uint16_t>(count));
      g = g_end;
    }
    session.router->Execute(batch);
    in_flight.push_back(std::move(batch));
    if (in_flight.size() >= kMaxInFlight) wait_one();
    return Status::OK();
  };
  // A first load finds most keys absent: SET NX stores those at a third of the script's server
  // CPU (bench/materialize), and only the keys that exist go through the script. The chunk waits
  // for its SET NX replies and queues the script for the rest before the next chunk is sent, so
  // a key's commands reach its node in row order. Once fewer than half of a chunk's keys were
  // absent (a nightly run rewrites known entities), the rest of the call uses the script alone.
  bool set_absent_first = true;
  auto set_absent = [&](int64_t begin, size_t n, std::vector<uint32_t>* present) -> Status {
    auto batch = std::make_shared<SetAbsentBatch>();
    for (size_t i = 0; i < n; ++i) {
      body.clear();
      GRANARY_RETURN_NOT_OK(encoder.Append(begin + i, &body));
      value.assign(1, redis::kEntityValueVersion);
      redis::AppendSection(&value, view.view_id(), body);
      batch->Add(slots[i], false, [&](CommandWriter& w) {
        key.assign(prefix_).append(keys.key(begin + i));
        w.Begin(ttl_ms > 0 ? 6 : 4).Arg("SET").Arg(key).Arg(value).Arg("NX");
        if (ttl_ms > 0) w.Arg("PX").Arg(ttl_ms);
      });
      batch->row_of_command.push_back(static_cast<uint32_t>(i));
    }
    session.router->Execute(batch);
    RunUntil(session, &batch->done);
    if (!batch->status().ok()) return batch->status().WithContext(Describe());
    total.written += batch->stored;
    std::sort(batch->present.begin(), batch->present.end());
    *present = std::move(batch->present);
    if (static_cast<size_t>(batch->stored) * 2 < n) set_absent_first = false;
    return Status::OK();
  };

  std::vector<uint32_t> chunk;
  for (int64_t begin = 0; begin < rows.num_rows(); begin += kRowsPerBatch) {
    const int64_t end = std::min(rows.num_rows(), begin + kRowsPerBatch);
    const size_t n = static_cast<size_t>(end - begin);
    slots.resize(n);
    for (size_t i = 0; i < n; ++i) {
      key.assign(prefix_).append(keys.key(begin + i));
      slots[i] = options_.cluster ? KeySlot(key) : 0;
    }
    Status st;
    if (set_absent_first) {
      // Earlier chunks' scripts first: their keys may recur here.
      while (!in_flight.empty()) wait_one();
      st = set_absent(begin, n, &chunk);
    } else {
      chunk.resize(n);
      std::iota(chunk.begin(), chunk.end(), 0);
    }
    if (st.ok() && !chunk.empty()) st = queue_script(begin, chunk);
    if (!st.ok()) {
      // Batches already queued run on this thread's event loop: finish them now rather than
      // when the thread next makes a call, long after this one returned.
      while (!in_flight.empty()) wait_one();
      return st;
    }
  }
  while (!in_flight.empty()) wait_one();
  GRANARY_RETURN_NOT_OK(first_error.WithContext(Describe()));
  return total;
}

Result<int64_t> RedisOnlineStore::WriteTiles(const ViewLayout& tiles_view,
                                             const EntityKeyColumn& keys,
                                             const std::vector<std::string>& records,
                                             const TileWriteOptions& options) {
  if (tiles_view.tiles() == nullptr || records.size() != keys.size()) {
    return Status::Internal("WriteTiles: a tile layout and one record string per key");
  }
  const std::string view_id = redis::ViewIdBytes(tiles_view.view_id());
  const std::string fingerprint = redis::ViewIdBytes(tiles_view.fingerprint());
  const int64_t ttl_ms = tiles_view.key_ttl().micros <= 0
                             ? 0
                             : std::max<int64_t>(1, tiles_view.key_ttl().micros / 1000);
  const std::string replace =
      options.replace_through ? std::to_string(options.replace_through->micros) : std::string();
  const std::string expire = std::to_string(options.expire_before.micros);
  int64_t written = 0;
  std::string key;
  for (size_t begin = 0; begin < keys.size(); begin += kRowsPerBatch) {
    const size_t end = std::min(keys.size(), begin + static_cast<size_t>(kRowsPerBatch));
    auto batch = std::make_shared<redis::CollectBatch>();
    batch->script = &tile_script_;
    const size_t limit = options_.cluster ? 1 : kKeysPerScript;
    for (size_t g = begin; g < end; g += limit) {
      const size_t g_end = std::min(end, g + limit);
      key.assign(prefix_).append(keys.key(g));
      batch->Add(options_.cluster ? KeySlot(key) : 0, false, [&](CommandWriter& w) {
        w.Begin(3 + 2 * (g_end - g) + 5)
            .Arg("EVALSHA")
            .Arg(tile_sha_)
            .Arg(static_cast<int64_t>(g_end - g));
        for (size_t i = g; i < g_end; ++i) {
          key.assign(prefix_).append(keys.key(i));
          w.Arg(key);
        }
        w.Arg(view_id).Arg(ttl_ms).Arg(fingerprint).Arg(replace).Arg(expire);
        for (size_t i = g; i < g_end; ++i) w.Arg(records[i]);
      });
    }
    GRANARY_RETURN_NOT_OK(RunSync(batch).WithContext(Describe()));
    for (const auto& r : batch->replies) {
      if (r.type == ReplyType::kInteger) {
        written += r.integer;
      } else if (r.type == ReplyType::kError) {
        return (r.str.rfind("GRANARY", 0) == 0
                    ? Status::Corruption(r.str.substr(8))
                    : redis::ErrorReplyStatus("the tile script (EVALSHA)", r.str))
            .WithContext(Describe());
      } else {
        return Status::Internal("unexpected reply to the tile script: " + r.str);
      }
    }
  }
  return written;
}

}  // namespace granary
