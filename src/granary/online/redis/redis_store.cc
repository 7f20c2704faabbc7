#include "granary/online/redis/redis_store.h"

#include <arrow/api.h>
#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <charconv>
#include <thread>

#include "granary/online/redis/entity_value.h"
#include "granary/online/redis/thread_session.h"
#include "granary/online/value_codec.h"

// The write path (WriteBatch) is in redis_store_write.cc; the per-thread sessions and the
// blocking batches both use are in thread_session.h.

namespace granary {
namespace {

namespace asio = boost::asio;
using redis::Batch;
using redis::CollectBatch;
using redis::CommandWriter;
using redis::KeySlot;
using redis::Reply;
using redis::ReplyType;
using redis::RunUntil;
using redis::SyncBatch;
using redis::ViewIdBytes;

std::chrono::milliseconds Millis(Duration d) {
  return std::chrono::milliseconds(std::max<int64_t>(1, d.micros / 1000));
}

// GET of every entity key of a read; assembles the OnlineFeatures when done.
class ReadBatch : public Batch {
 public:
  ReadBatch(const OnlineReadRequest& request, const std::string& prefix, const Clock* clock,
            OnlineStore::ReadCallback done)
      : builder_(request), clock_(clock), done_(std::move(done)) {
    // One GET per row of each distinct key column.
    for (const ViewRead& read : request.views) {
      const EntityKeyColumn* column = read.keys.get();
      size_t base = commands.size();
      bool seen = false;
      for (const auto& [c, b] : columns_) {
        if (c == column) {
          base = b;
          seen = true;
        }
      }
      view_base_.push_back(base);
      if (seen) continue;
      columns_.emplace_back(column, base);
      std::string key = prefix;
      for (size_t r = 0; r < column->size(); ++r) {
        key.resize(prefix.size());
        key.append(column->key(r));
        Add(KeySlot(key), /*read_only=*/true,
            [&](CommandWriter& w) { w.Begin(2).Arg("GET").Arg(key); });
      }
    }
    spans_.resize(commands.size());
    allow_partial = request.allow_partial;
    if (allow_partial) unread_.resize(commands.size());
    view_ids_.reserve(request.views.size());
    for (const ViewRead& read : request.views) view_ids_.push_back(read.view->view_id());
    builder_.arena()->reserve(commands.size() * 256);
  }

  void OnReply(size_t i, const Reply& reply) override {
    if (reply.type == ReplyType::kString) {
      spans_[i] = {builder_.arena()->size(), reply.str.size()};
      builder_.arena()->append(reply.str);
    } else if (reply.type != ReplyType::kNil && error_.ok()) {
      error_ = reply.is_error()
                   ? redis::ErrorReplyStatus("GET", reply.str)
                   : Status::Unavailable("unexpected reply to GET: " + std::string(reply.str));
    }
  }

  void OnCommandFailed(size_t i, const Status&) override { unread_[i] = 1; }

  void OnDone(Status status) override {
    if (status.ok()) status = error_;
    if (!status.ok()) return done_(status);
    if (allow_partial) MarkUnread();
    const std::string& arena = *builder_.arena();
    // One pass over each fetched value: every section goes to the views that asked for it.
    std::vector<std::pair<uint32_t, size_t>> wanted;  // (view id, view) of one key column
    for (const auto& [column, base] : columns_) {
      wanted.clear();
      for (size_t v = 0; v < view_base_.size(); ++v) {
        if (view_base_[v] == base) wanted.emplace_back(view_ids_[v], v);
      }
      for (size_t r = 0; r < num_rows(); ++r) {
        const auto [offset, size] = spans_[base + r];
        if (size == 0) continue;
        Status st = redis::ForEachSection(
            std::string_view(arena.data() + offset, size), [&](uint32_t id, std::string_view body) {
              for (const auto& [view_id, v] : wanted) {
                if (view_id == id) builder_.SetBody(v, r, body.data() - arena.data(), body.size());
              }
            });
        if (!st.ok()) return done_(st);
      }
    }
    done_(builder_.Finish(clock_->Now()));
  }

 private:
  size_t num_rows() const { return columns_.empty() ? 0 : columns_[0].first->size(); }

  // Rows whose GET failed (their node is down) read INVALID in every view of their key column.
  void MarkUnread() {
    for (size_t v = 0; v < view_base_.size(); ++v) {
      for (size_t r = 0; r < num_rows(); ++r) {
        if (unread_[view_base_[v] + r]) builder_.SetUnavailable(v, r);
      }
    }
  }

  OnlineFeaturesBuilder builder_;
  const Clock* clock_;
  OnlineStore::ReadCallback done_;
  std::vector<std::pair<const EntityKeyColumn*, size_t>> columns_;  // first command of each
  std::vector<size_t> view_base_;  // per view: first command of its key column
  std::vector<uint32_t> view_ids_;
  std::vector<std::pair<size_t, size_t>> spans_;  // per command: value in the arena (size 0: none)
  std::vector<uint8_t> unread_;                   // per command, partial reads: 1 when it failed
  Status error_;
};

Result<int> ParseInt(std::string_view text) {
  int v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size()) {
    return Status::InvalidArgument(fmt::format("'{}' is not a number", text));
  }
  return v;
}

std::atomic<uint64_t> g_serial{0};

// Per thread: the session tables holding a session of this thread. When the thread exits, its
// sessions are released from the stores that still exist, so a store used by many short-lived
// threads does not keep their connections open.
class ThreadExitHook {
 public:
  void Add(const std::shared_ptr<redis::ThreadSessionTable>& table) {
    std::erase_if(tables_, [](const auto& t) { return t.expired(); });
    tables_.push_back(table);
  }
  ~ThreadExitHook() {
    const std::thread::id self = std::this_thread::get_id();
    for (const auto& weak : tables_) {
      if (auto table = weak.lock()) table->Release(self);
    }
  }

 private:
  std::vector<std::weak_ptr<redis::ThreadSessionTable>> tables_;
};

}  // namespace

uint64_t RedisOnlineStore::NextSerial() { return ++g_serial; }

Status RedisOnlineStore::ParseConnectionString(std::string_view text, Options* options) {
  size_t start = 0;
  bool first = true;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string_view part =
        text.substr(start, comma == std::string_view::npos ? text.npos : comma - start);
    start = comma == std::string_view::npos ? text.size() + 1 : comma + 1;
    if (first) {
      first = false;
      auto address = redis::NodeAddress::Parse(part);
      if (!address.ok()) {
        return Status::InvalidArgument("online_store.connection_string: " +
                                       address.status().message());
      }
      options->nodes = {address->ToString()};
      continue;
    }
    size_t eq = part.find('=');
    std::string_view name = part.substr(0, eq);
    std::string_view value =
        eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1);
    if (name == "password") {
      options->password = std::string(value);
    } else if (name == "username") {
      options->username = std::string(value);
    } else if (name == "db") {
      auto db = ParseInt(value);
      if (!db.ok() || *db < 0) {
        return Status::InvalidArgument(
            fmt::format("online_store.connection_string: db={} is not a database number", value));
      }
      options->db = *db;
    } else {
      return Status::InvalidArgument(
          fmt::format("online_store.connection_string: unknown option '{}'; write "
                      "host:port[,password=...][,username=...][,db=N] (TLS is not supported)",
                      name));
    }
  }
  return Status::OK();
}

Result<std::unique_ptr<RedisOnlineStore>> RedisOnlineStore::Open(Options options) {
  if (options.nodes.empty()) {
    return Status::InvalidArgument(
        "no Redis address: set online_store.connection_string (redis) "
        "or online_store.nodes (redis_cluster) in granary.yaml");
  }
  if (!options.cluster && options.nodes.size() != 1) {
    return Status::InvalidArgument("a standalone Redis store takes exactly one address");
  }
  redis::RouterConfig config;
  config.cluster = options.cluster;
  for (const std::string& n : options.nodes) {
    GRANARY_ASSIGN_OR_RAISE(redis::NodeAddress a, redis::NodeAddress::Parse(n));
    config.seeds.push_back(std::move(a));
  }
  config.connection.username = options.username;
  config.connection.password = options.password;
  config.connection.db = options.cluster ? 0 : options.db;
  config.connection.connect_timeout = Millis(options.connect_timeout);
  config.connection.request_timeout = Millis(options.request_timeout);
  config.read_from_replicas = options.cluster && options.read_from_replicas;

  std::unique_ptr<RedisOnlineStore> store(new RedisOnlineStore());
  store->options_ = options;
  store->prefix_ = options.project + ":";
  store->write_script_ = redis::kWriteScript;
  store->delete_script_ = redis::kDeleteViewsScript;
  store->topology_ = std::make_shared<redis::RedisTopology>(std::move(config));
  store->sessions_ = std::make_shared<redis::ThreadSessionTable>(store->topology_);
  ThreadSession& session = store->ThisThread();
  if (options.cluster) {
    Status refreshed;
    bool done = false;
    session.router->Refresh([&](Status s) {
      refreshed = std::move(s);
      done = true;
    });
    RunUntil(session, &done);
    GRANARY_RETURN_NOT_OK(refreshed);
  }
  // Load the scripts where the first master is (others load them on NOSCRIPT); this checks the
  // address and the credentials as well.
  auto load = std::make_shared<CollectBatch>();
  load->pinned_node = store->Masters().at(0);
  for (const std::string* script : {&store->write_script_, &store->delete_script_}) {
    load->Add(0, false,
              [&](CommandWriter& w) { w.Begin(3).Arg("SCRIPT").Arg("LOAD").Arg(*script); });
  }
  GRANARY_RETURN_NOT_OK(store->RunSync(load));
  for (const auto& r : load->replies) {
    if (r.type == ReplyType::kError) {
      return redis::ErrorReplyStatus("SCRIPT LOAD", r.str).WithContext(store->Describe());
    }
    if (r.type != ReplyType::kString) {
      return Status::Unavailable(
          fmt::format("{}: unexpected reply to SCRIPT LOAD: {}", store->Describe(), r.str));
    }
  }
  store->write_sha_ = load->replies[0].str;
  store->delete_sha_ = load->replies[1].str;
  return store;
}

RedisOnlineStore::~RedisOnlineStore() {
  // No call is running (the store outlives its calls). Exiting threads may still release their
  // own sessions meanwhile: the table is shared with their exit hooks.
  if (sessions_) sessions_->Clear();
  MutexLock lock(&external_mu_);
  external_.clear();
}

std::string RedisOnlineStore::Describe() const {
  std::string nodes;
  for (const auto& n : options_.nodes) nodes += (nodes.empty() ? "" : ",") + n;
  return fmt::format("{} at {}", options_.cluster ? "redis cluster" : "redis", nodes);
}

RedisOnlineStore::ThreadSession& RedisOnlineStore::ThisThread() {
  struct Cache {
    uint64_t serial = 0;
    ThreadSession* session = nullptr;
  };
  thread_local Cache cache;
  if (cache.serial == serial_) return *cache.session;
  // A thread that switches between stores finds its session of this one again.
  bool made = false;
  ThreadSession* session = sessions_->ForThisThread(&made);
  if (made) {
    thread_local ThreadExitHook exit_hook;
    exit_hook.Add(sessions_);
  }
  cache = {serial_, session};
  return *session;
}

size_t RedisOnlineStore::thread_sessions() const { return sessions_->size(); }

Status RedisOnlineStore::RunSync(const std::shared_ptr<SyncBatch>& batch) {
  ThreadSession& session = ThisThread();
  session.router->Execute(batch);
  RunUntil(session, &batch->done);
  return batch->status();
}

std::vector<redis::NodeAddress> RedisOnlineStore::Masters() const {
  if (!options_.cluster) return {topology_->config().seeds.at(0)};
  uint64_t version = 0;
  auto slots = topology_->slots(&version);
  std::vector<redis::NodeAddress> out;
  if (slots) {
    for (uint16_t m : slots->Masters()) out.push_back(slots->nodes()[m]);
  }
  if (out.empty()) out.push_back(topology_->config().seeds.at(0));
  return out;
}
Result<OnlineFeatures> RedisOnlineStore::Read(const OnlineReadRequest& request) {
  GRANARY_RETURN_NOT_OK(request.Validate());
  std::optional<Result<OnlineFeatures>> result;
  bool done = false;
  auto batch =
      std::make_shared<ReadBatch>(request, prefix_, options_.clock, [&](Result<OnlineFeatures> r) {
        result.emplace(std::move(r));
        done = true;
      });
  ThreadSession& session = ThisThread();
  session.router->Execute(batch);
  RunUntil(session, &done);
  if (!result->ok()) return result->status().WithContext(Describe());
  return std::move(*result);
}

void RedisOnlineStore::AsyncRead(const asio::any_io_executor& executor, OnlineReadRequest request,
                                 ReadCallback done) {
  Status valid = request.Validate();
  if (!valid.ok()) {
    asio::post(executor, [done = std::move(done), valid] { done(valid); });
    return;
  }
  redis::RedisClusterRouter* router = RouterFor(executor);
  std::string where = Describe();
  auto batch = std::make_shared<ReadBatch>(
      request, prefix_, options_.clock,
      [done = std::move(done), where = std::move(where)](Result<OnlineFeatures> r) {
        if (!r.ok()) return done(r.status().WithContext(where));
        done(std::move(r));
      });
  router->Execute(batch);  // posts: `done` never runs inside AsyncRead
}

redis::RedisClusterRouter* RedisOnlineStore::RouterFor(const asio::any_io_executor& executor) {
  const void* context = &asio::query(executor, asio::execution::context);
  struct Cache {
    uint64_t serial = 0;
    const void* context = nullptr;
    redis::RedisClusterRouter* router = nullptr;
  };
  thread_local Cache cache;
  if (cache.serial == serial_ && cache.context == context) return cache.router;
  MutexLock lock(&external_mu_);
  redis::RedisClusterRouter* router = nullptr;
  for (auto& [c, r] : external_) {
    if (c == context) router = r.get();
  }
  if (router == nullptr) {
    external_.emplace_back(context,
                           std::make_unique<redis::RedisClusterRouter>(executor, topology_));
    router = external_.back().second.get();
  }
  cache = {serial_, context, router};
  return router;
}

Status RedisOnlineStore::ForEachKeyPage(
    const std::function<Status(const std::vector<std::string>&)>& act) {
  for (const redis::NodeAddress& master : Masters()) {
    std::string cursor = "0";
    do {
      auto scan = std::make_shared<CollectBatch>();
      scan->pinned_node = master;
      const std::string pattern = prefix_ + "*";
      scan->Add(0, true, [&](CommandWriter& w) {
        w.Begin(6).Arg("SCAN").Arg(cursor).Arg("MATCH").Arg(pattern).Arg("COUNT").Arg(
            int64_t{1000});
      });
      GRANARY_RETURN_NOT_OK(RunSync(scan).WithContext(Describe()));
      const redis::OwnedReply& reply = scan->replies.at(0);
      if (reply.type == ReplyType::kError) {
        return redis::ErrorReplyStatus("SCAN", reply.str).WithContext(Describe());
      }
      if (reply.type != ReplyType::kArray || reply.elements.size() != 2) {
        return Status::Unavailable(fmt::format("{}: unexpected SCAN reply from {}: {}", Describe(),
                                               master.ToString(), reply.str));
      }
      cursor = reply.elements[0].str;
      std::vector<std::string> keys;
      for (const auto& k : reply.elements[1].elements) keys.push_back(k.str);
      if (!keys.empty()) GRANARY_RETURN_NOT_OK(act(keys));
    } while (cursor != "0");
  }
  return Status::OK();
}

Status RedisOnlineStore::DeleteViews(const std::vector<std::string>& view_names) {
  std::vector<std::string> ids;
  for (const std::string& name : view_names) ids.push_back(ViewIdBytes(ViewIdOf(name)));
  GRANARY_RETURN_NOT_OK(DeleteViewMarkers(view_names));
  return ForEachKeyPage([&](const std::vector<std::string>& keys) {
    auto batch = std::make_shared<CollectBatch>();
    batch->script = &delete_script_;
    for (const std::string& key : keys) {
      if (IsMarkerKey(key)) continue;  // a hash, not an entity value
      batch->Add(KeySlot(key), false, [&](CommandWriter& w) {
        w.Begin(4 + ids.size()).Arg("EVALSHA").Arg(delete_sha_).Arg(int64_t{1}).Arg(key);
        for (const std::string& id : ids) w.Arg(id);
      });
    }
    if (batch->commands.empty()) return Status::OK();
    GRANARY_RETURN_NOT_OK(RunSync(batch).WithContext(Describe()));
    for (const auto& r : batch->replies) {
      if (r.type == ReplyType::kError) {
        return redis::ErrorReplyStatus("the delete script (EVALSHA)", r.str)
            .WithContext(Describe());
      }
    }
    return Status::OK();
  });
}

Status RedisOnlineStore::DeleteAll() {
  return ForEachKeyPage([&](const std::vector<std::string>& keys) {
    auto batch = std::make_shared<CollectBatch>();
    for (const std::string& key : keys) {
      batch->Add(KeySlot(key), false, [&](CommandWriter& w) { w.Begin(2).Arg("UNLINK").Arg(key); });
    }
    GRANARY_RETURN_NOT_OK(RunSync(batch).WithContext(Describe()));
    for (const auto& r : batch->replies) {
      if (r.type == ReplyType::kError) {
        return redis::ErrorReplyStatus("UNLINK", r.str).WithContext(Describe());
      }
    }
    return Status::OK();
  });
}

}  // namespace granary
