#include "granary/online/redis/router.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <charconv>

namespace granary::redis {
namespace {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr uint32_t kIgnoreTag = 0xffffffffu;
// Redirects and retries of one command before it fails.
constexpr int kMaxAttempts = 32;

bool Retryable(const Status& s) { return s.code() == StatusCode::kUnavailable; }

// "MOVED 3999 127.0.0.1:6381" -> slot and address.
bool ParseRedirect(std::string_view text, uint16_t* slot, NodeAddress* to) {
  size_t a = text.find(' ');
  if (a == std::string_view::npos) return false;
  size_t b = text.find(' ', a + 1);
  if (b == std::string_view::npos) return false;
  std::string_view slot_text = text.substr(a + 1, b - a - 1);
  int s = 0;
  auto [p, ec] = std::from_chars(slot_text.data(), slot_text.data() + slot_text.size(), s);
  if (ec != std::errc() || s < 0 || s >= kNumSlots) return false;
  auto address = NodeAddress::Parse(text.substr(b + 1));
  if (!address.ok()) return false;
  *slot = static_cast<uint16_t>(s);
  *to = std::move(*address);
  return true;
}

}  // namespace

Status ErrorReplyStatus(std::string_view command, std::string_view error) {
  const std::string_view code = error.substr(0, error.find(' '));
  // A command refused inside a script comes back as ERR with this text (Redis 7).
  if (code == "NOPERM" ||
      error.find("user executing the script can't run this command") != std::string_view::npos) {
    return Status::FailedPrecondition(
        fmt::format("the user may not run {} ({}); grant it in the user's ACL rules (Granary needs "
                    "+@read +@write +@keyspace +@scripting and key access ~<project>:*)",
                    command, error));
  }
  if (code == "OOM") {
    return Status::FailedPrecondition(fmt::format(
        "the server is out of memory for {} ({}); raise maxmemory, free memory, or choose an "
        "eviction policy (maxmemory-policy) that may drop keys",
        command, error));
  }
  if (code == "WRONGTYPE") {
    return Status::Corruption(fmt::format(
        "{} met a key that holds another type of value ({}); the key is not Granary's: use "
        "another project name or remove the key",
        command, error));
  }
  return Status::Unavailable(fmt::format("{} failed: {}", command, error));
}

// --------------------------------------------------------------------------------- topology

std::shared_ptr<const SlotMap> RedisTopology::slots(uint64_t* version) const {
  MutexLock lock(&mu_);
  *version = version_.load(std::memory_order_relaxed);
  return slots_;
}

void RedisTopology::Publish(std::shared_ptr<const SlotMap> map, std::optional<uint64_t> based_on) {
  MutexLock lock(&mu_);
  if (based_on && *based_on != version_.load(std::memory_order_relaxed)) return;
  slots_ = std::move(map);
  version_.fetch_add(1, std::memory_order_release);
}

// --------------------------------------------------------------------------------- refresher

// Asks one node after another for CLUSTER SLOTS until one answers. Final: it is destroyed as
// itself (its shared_ptr), never through ReplyHandler, whose destructor is protected and not
// virtual.
class RedisClusterRouter::Refresher final : public ReplyHandler,
                                            public std::enable_shared_from_this<Refresher> {
 public:
  Refresher(RedisClusterRouter* router, std::function<void(Status)> done)
      : router_(router), done_(std::move(done)) {}

  void Start() {
    self_ = shared_from_this();
    std::vector<NodeAddress> candidates;
    router_->SyncSlots();
    if (router_->slots_) {
      for (uint16_t m : router_->slots_->Masters())
        candidates.push_back(router_->slots_->nodes()[m]);
      for (const NodeAddress& n : router_->slots_->nodes()) candidates.push_back(n);
    }
    const auto& seeds = router_->topology_->config().seeds;
    for (size_t i = 0; i < seeds.size(); ++i) {
      candidates.push_back(seeds[(router_->next_seed_ + i) % seeds.size()]);
    }
    ++router_->next_seed_;
    for (const NodeAddress& c : candidates) {
      if (std::find(candidates_.begin(), candidates_.end(), c) == candidates_.end()) {
        candidates_.push_back(c);
      }
    }
    TryNext();
  }

  void Cancel() { router_ = nullptr; }

  void OnReply(uint32_t tag, const Reply& reply) override {
    if (router_ == nullptr) return Finish(Status::Cancelled("router closed"));
    auto map = SlotMap::FromClusterSlots(reply, candidates_[tag]);
    if (!map.ok()) {
      last_ = map.status();
      return TryNext();
    }
    router_->topology_->Publish(std::move(*map));
    router_->topology_->stats().topology_refreshes++;
    Finish(Status::OK());
  }

  void OnFailure(uint32_t tag, const Status& status) override {
    if (router_ == nullptr) return Finish(Status::Cancelled("router closed"));
    last_ = status;
    if (!Retryable(status)) return Finish(status);
    TryNext();
  }

 private:
  void TryNext() {
    while (router_ != nullptr && next_ < candidates_.size()) {
      const uint32_t i = static_cast<uint32_t>(next_++);
      uint16_t n = router_->NodeFor(candidates_[i], false);
      Status why;
      Connection* conn = router_->ConnectionTo(n, &why);
      if (conn == nullptr) {
        last_ = why;
        continue;
      }
      conn->Send(EncodeCommand({"CLUSTER", "SLOTS"}), this, i);
      conn->Flush();
      return;
    }
    Finish(Status::Unavailable(fmt::format("no Redis Cluster node answered CLUSTER SLOTS ({})",
                                           last_.ok() ? "no nodes known" : last_.message())));
  }

  void Finish(Status status) {
    if (finished_) return;
    finished_ = true;
    if (router_ != nullptr) {
      router_->refresher_.reset();
      router_->last_refresh_ = SteadyClock::now();
    }
    auto keep = std::move(self_);
    if (done_) done_(std::move(status));
  }

  RedisClusterRouter* router_;
  std::function<void(Status)> done_;
  std::shared_ptr<Refresher> self_;
  std::vector<NodeAddress> candidates_;
  size_t next_ = 0;
  Status last_;
  bool finished_ = false;
};

// --------------------------------------------------------------------------------- run

// One batch in flight. Final, as Refresher.
class RedisClusterRouter::Run final : public ReplyHandler,
                                      public std::enable_shared_from_this<Run> {
 public:
  Run(RedisClusterRouter* router, std::shared_ptr<Batch> batch)
      : router_(router),
        batch_(std::move(batch)),
        sent_to_(batch_->commands.size(), 0),
        attempts_(batch_->commands.size(), 0),
        asking_(batch_->commands.size(), 0),
        remaining_(batch_->commands.size()),
        retry_timer_(router->executor_) {
    if (batch_->script != nullptr) sent_at_.resize(batch_->commands.size());
  }

  void Start() {
    self_ = shared_from_this();
    if (remaining_ == 0) return Done();
    for (size_t i = 0; i < batch_->commands.size(); ++i) Dispatch(i);
    FlushTouched();
  }

  void OnReply(uint32_t tag, const Reply& reply) override {
    if (tag == kIgnoreTag) return;  // ASKING, SCRIPT LOAD: their command's reply follows
    const size_t i = tag;
    router_->NoteSuccess(sent_to_[i]);
    if (reply.is_error()) {
      std::string_view code = reply.ErrorCode();
      if (code == "MOVED" || code == "ASK") return Redirect(i, reply, code == "ASK");
      if (code == "NOSCRIPT") return ReloadScriptAndResend(i);
      if (code == "TRYAGAIN" || code == "CLUSTERDOWN" || code == "LOADING" ||
          code == "MASTERDOWN" || code == "READONLY") {
        // The cluster is moving (a failover, a migration) or the node is starting.
        router_->RequestRefresh();
        return Retry(
            i, Status::Unavailable(fmt::format(
                   "redis at {}: {}", router_->nodes_[sent_to_[i]].address.ToString(), reply.str)));
      }
    }
    batch_->OnReply(i, reply);
    Finish(i);
  }

  void OnFailure(uint32_t tag, const Status& status) override {
    if (tag == kIgnoreTag) return;
    router_->NoteFailure(sent_to_[tag], status);
    // A connect that failed marks the node down: no retry (NoteFailure asked for a refresh).
    if (router_->nodes_[sent_to_[tag]].down) return Fail(tag, status);
    Retry(tag, status);
  }

 private:
  void Dispatch(size_t i) {
    auto node = router_->Route(batch_->commands[i], attempts_[i], batch_->pinned_node);
    if (!node.ok()) return Retry(i, node.status());
    SendTo(i, *node, false);
  }

  void SendTo(size_t i, uint16_t node, bool asking) {
    Status why;
    bool down = false;
    Connection* conn = router_->ConnectionTo(node, &why, &down);
    if (conn == nullptr) {
      if (!down) return Retry(i, why);
      // Fail fast; the refresh finds the replica that takes over, for the next requests.
      router_->RequestRefresh();
      return Fail(i, why);
    }
    sent_to_[i] = node;
    asking_[i] = asking;
    if (asking) conn->Send(EncodeCommand({"ASKING"}), this, kIgnoreTag);
    if (!sent_at_.empty()) sent_at_[i] = conn->sent();
    conn->Send(batch_->bytes(i), this, static_cast<uint32_t>(i));
    Touch(conn);
  }

  void Redirect(size_t i, const Reply& reply, bool ask) {
    uint16_t slot = 0;
    NodeAddress to;
    if (!ParseRedirect(reply.str, &slot, &to)) {
      return Fail(i,
                  Status::Unavailable("unreadable redirect from Redis: " + std::string(reply.str)));
    }
    if (++attempts_[i] > kMaxAttempts) {
      return Fail(i, Status::Unavailable(fmt::format(
                         "too many redirects for slot {} (last: {}); the cluster keeps moving it",
                         slot, reply.str)));
    }
    auto& stats = router_->topology_->stats();
    if (ask) {
      stats.ask++;
    } else {
      stats.moved++;
      router_->OnMoved(slot, to);
    }
    SendTo(i, router_->NodeFor(to, false), ask);
    FlushTouched();
  }

  void ReloadScriptAndResend(size_t i) {
    const std::string* source = batch_->script;
    Node& node = router_->nodes_[sent_to_[i]];
    if (source == nullptr) {
      return Fail(i, Status::Internal("Redis answered NOSCRIPT to a batch that has no script"));
    }
    if (++attempts_[i] > kMaxAttempts) {
      return Fail(i, Status::Unavailable(fmt::format(
                         "redis at {} keeps answering NOSCRIPT after SCRIPT LOAD: its scripts are "
                         "flushed continuously, or the user may not run SCRIPT LOAD (grant "
                         "+@scripting in its ACL)",
                         node.address.ToString())));
    }
    Connection* conn = node.connection.get();
    if (conn == nullptr || conn->failed()) {
      return Retry(i, Status::Unavailable("connection lost while loading the script"));
    }
    auto& loads = conn->script_loads;
    auto load =
        std::find_if(loads.begin(), loads.end(), [&](const auto& l) { return l.first == source; });
    // A load queued after this command was sent runs before it is sent again; otherwise the
    // server lost the script after any earlier load, and it is loaded once more.
    if (load == loads.end() || load->second < sent_at_[i]) {
      const uint64_t at = conn->sent();
      // Commands behind it on this connection run after the load: pipelining keeps order.
      conn->Send(EncodeCommand({"SCRIPT", "LOAD", *source}), this, kIgnoreTag);
      if (load == loads.end()) {
        loads.emplace_back(source, at);
      } else {
        load->second = at;
      }
    }
    if (asking_[i]) conn->Send(EncodeCommand({"ASKING"}), this, kIgnoreTag);
    sent_at_[i] = conn->sent();
    conn->Send(batch_->bytes(i), this, static_cast<uint32_t>(i));
    Touch(conn);
    FlushTouched();
  }

  void Retry(size_t i, const Status& why) {
    if (!Retryable(why) || router_->closing_) return Fail(i, why);
    const auto now = SteadyClock::now();
    if (!retry_deadline_) {
      retry_deadline_ = now + router_->topology_->config().connection.request_timeout;
    }
    // Standalone: one more try, for a connection that went stale; a cluster may be failing
    // over, so its commands are retried until the budget is spent.
    const bool budget_left = router_->topology_->config().cluster
                                 ? now < *retry_deadline_ && attempts_[i] < kMaxAttempts
                                 : attempts_[i] < 1;
    if (!budget_left) return Fail(i, why);
    ++attempts_[i];
    router_->topology_->stats().retries++;
    retry_queue_.push_back(static_cast<uint32_t>(i));
    if (router_->topology_->config().cluster) router_->RequestRefresh();
    if (timer_armed_) return;
    timer_armed_ = true;
    const int shift = std::min(retry_round_, 5);
    retry_timer_.expires_after(milliseconds(10 << shift));
    auto self = shared_from_this();
    retry_timer_.async_wait([this, self](const boost::system::error_code&) {
      timer_armed_ = false;
      ++retry_round_;
      std::vector<uint32_t> queue;
      queue.swap(retry_queue_);
      for (uint32_t i : queue) {
        if (router_->closing_) {
          Fail(i, Status::Cancelled("the Redis client is shutting down"));
        } else {
          Dispatch(i);
        }
      }
      FlushTouched();
    });
  }

  void Fail(size_t i, const Status& status) {
    if (batch_->allow_partial && status.code() == StatusCode::kUnavailable) {
      if (unavailable_ == 0) first_unavailable_ = status;
      ++unavailable_;
      batch_->OnCommandFailed(i, status);
    } else if (error_.ok()) {
      error_ = status;
    }
    Finish(i);
  }

  void Finish(size_t i) {
    if (--remaining_ == 0) Done();
  }

  void Done() {
    auto keep = std::move(self_);
    // A partial answer needs at least one answered command.
    if (error_.ok() && unavailable_ > 0 && unavailable_ == batch_->commands.size()) {
      error_ = first_unavailable_;
    }
    batch_->OnDone(std::move(error_));
  }

  void Touch(Connection* conn) {
    if (std::find(touched_.begin(), touched_.end(), conn) == touched_.end()) {
      touched_.push_back(conn);
    }
  }
  void FlushTouched() {
    // A flush never fails a connection synchronously (connects and writes complete later), so
    // the pointers stay valid through the loop.
    std::vector<Connection*> touched;
    touched.swap(touched_);
    for (Connection* c : touched) c->Flush();
  }

  RedisClusterRouter* router_;
  std::shared_ptr<Batch> batch_;
  std::shared_ptr<Run> self_;  // alive until Done
  std::vector<uint16_t> sent_to_;
  std::vector<uint8_t> attempts_;
  std::vector<uint8_t> asking_;
  // Script batches: per command, its sent() position on the connection it went to last.
  std::vector<uint64_t> sent_at_;
  size_t remaining_;
  Status error_;
  size_t unavailable_ = 0;  // commands failed as Unavailable in a partial batch
  Status first_unavailable_;
  std::vector<uint32_t> retry_queue_;
  asio::steady_timer retry_timer_;
  bool timer_armed_ = false;
  int retry_round_ = 0;
  std::optional<SteadyClock::time_point> retry_deadline_;
  std::vector<Connection*> touched_;
};

// --------------------------------------------------------------------------------- router

RedisClusterRouter::RedisClusterRouter(const asio::any_io_executor& executor,
                                       std::shared_ptr<RedisTopology> topology)
    : executor_(executor), topology_(std::move(topology)) {}

RedisClusterRouter::~RedisClusterRouter() {
  closing_ = true;
  if (refresher_) refresher_->Cancel();
  for (Node& n : nodes_) {
    if (n.connection) n.connection->Close(Status::Cancelled("the Redis client is shutting down"));
  }
}

void RedisClusterRouter::Execute(std::shared_ptr<Batch> batch) {
  auto run = std::make_shared<Run>(this, std::move(batch));
  asio::post(executor_, [run] { run->Start(); });
}

void RedisClusterRouter::Refresh(std::function<void(Status)> done) {
  if (!topology_->config().cluster) {
    asio::post(executor_, [done = std::move(done)] { done(Status::OK()); });
    return;
  }
  auto refresher = std::make_shared<Refresher>(this, std::move(done));
  if (refresher_) refresher_->Cancel();
  refresher_ = refresher;
  asio::post(executor_, [refresher] { refresher->Start(); });
}

void RedisClusterRouter::RequestRefresh() {
  if (!topology_->config().cluster || refresher_ || closing_) return;
  if (SteadyClock::now() - last_refresh_ < milliseconds(20)) return;
  Refresh(nullptr);
}

std::vector<NodeAddress> RedisClusterRouter::Masters() {
  if (!topology_->config().cluster) return {topology_->config().seeds.at(0)};
  SyncSlots();
  std::vector<NodeAddress> out;
  if (slots_) {
    for (uint16_t m : slots_->Masters()) out.push_back(slots_->nodes()[m]);
  }
  return out;
}

uint16_t RedisClusterRouter::NodeFor(const NodeAddress& address, bool readonly) {
  auto key = std::make_pair(address.ToString(), readonly);
  auto it = node_index_.find(key);
  if (it != node_index_.end()) return it->second;
  Node node;
  node.address = address;
  node.readonly = readonly;
  nodes_.push_back(std::move(node));
  uint16_t index = static_cast<uint16_t>(nodes_.size() - 1);
  node_index_.emplace(std::move(key), index);
  return index;
}

void RedisClusterRouter::SyncSlots() {
  if (topology_->version() != slots_version_ || !slots_) {
    slots_ = topology_->slots(&slots_version_);
  }
}

Result<uint16_t> RedisClusterRouter::Route(const Batch::Command& c, int attempt,
                                           const std::optional<NodeAddress>& pinned) {
  const RouterConfig& config = topology_->config();
  if (pinned) return NodeFor(*pinned, false);
  if (!config.cluster) return NodeFor(config.seeds.at(0), false);
  SyncSlots();
  if (!slots_) return Status::Unavailable("the Redis Cluster slot map is not known yet");
  uint16_t m = slots_->master(c.slot);
  if (m == SlotMap::kNoNode) {
    return Status::Unavailable(fmt::format(
        "no Redis Cluster node serves slot {} (the cluster is reconfiguring, or not every slot "
        "is assigned)",
        c.slot));
  }
  if (config.read_from_replicas && c.read_only && attempt == 0) {
    const auto& replicas = slots_->replicas(c.slot);
    if (!replicas.empty()) {
      return NodeFor(slots_->nodes()[replicas[replica_cursor_++ % replicas.size()]], true);
    }
  }
  return NodeFor(slots_->nodes()[m], false);
}

Connection* RedisClusterRouter::ConnectionTo(uint16_t n, Status* why, bool* down) {
  Node& node = nodes_[n];
  const auto now = SteadyClock::now();
  // A down node's commands wait for nothing: not for its backoff, nor for the connect that
  // probes it (only the command that started that connect does).
  const bool probing = node.down && node.connection && node.connection->connecting();
  if (node.connection && !node.connection->failed() && !probing) return node.connection.get();
  if (probing || (node.failures > 0 && now < node.next_attempt)) {
    if (down != nullptr) *down = node.down;
    *why = Status::Unavailable(
        node.down
            ? fmt::format("{}; the node is down, so its requests fail at once until it "
                          "answers again{}",
                          node.last_failure.message(),
                          topology_->config().cluster ? " or a replica takes over its slots" : "")
            : node.last_failure.message());
    return nullptr;
  }
  ConnectionOptions options = topology_->config().connection;
  options.address = node.address;
  options.readonly = node.readonly;
  if (topology_->config().cluster) options.db = 0;
  node.connection = Connection::Make(executor_, std::move(options));
  topology_->stats().connections_opened++;
  return node.connection.get();
}

void RedisClusterRouter::NoteFailure(uint16_t n, const Status& status) {
  Node& node = nodes_[n];
  Connection* failed = node.connection.get();
  if (failed != nullptr && failed == node.noted_failure_of) return;  // counted already
  node.noted_failure_of = failed;
  node.down = failed != nullptr && failed->failed_to_connect();
  node.failures = std::min(node.failures + 1, 16);
  node.last_failure = status;
  const int shift = std::min(node.failures - 1, 7);
  node.next_attempt = SteadyClock::now() + std::min(milliseconds(10 << shift), milliseconds(1000));
  if (topology_->config().cluster) RequestRefresh();
}

void RedisClusterRouter::OnMoved(uint16_t slot, const NodeAddress& to) {
  SyncSlots();
  if (slots_) {
    const uint16_t m = slots_->master(slot);
    if (m != SlotMap::kNoNode && slots_->nodes()[m] == to) return;  // patched already
    topology_->Publish(slots_->WithSlotMoved(slot, to), slots_version_);
    SyncSlots();
  }
  RequestRefresh();
}

}  // namespace granary::redis
