// RedisClusterRouter: sends batches of commands to a Redis deployment (standalone or Cluster)
// and hands back each command's final reply.
//
// Per batch: each command goes to the node serving its hash slot (the master, or a replica for
// read-only commands when replica reads are on), one pipeline per node, all nodes at once. The
// router follows MOVED (and patches its slot map, then refreshes it with CLUSTER SLOTS) and ASK
// (ASKING first) redirects, loads the batch's Lua script on NOSCRIPT, and retries commands that
// met TRYAGAIN, CLUSTERDOWN, LOADING, a read-only replica or a lost connection, with backoff,
// until the retry budget (request_timeout after the first failure) is spent: then the batch
// fails with Unavailable. A node that failed is not reconnected before its backoff (10 ms,
// doubling to 1 s) has passed.
//
// A node that cannot be connected to (refused, no answer within connect_timeout) is down: from
// that first failed connect, commands routed to it fail at once with Unavailable instead of
// waiting out the retry budget, and the slot map is refreshed, so a Redis Cluster's slots move to
// the replica that takes over as soon as CLUSTER SLOTS shows it. The node is tried again after
// its backoff (at most 1 s); its first reply makes it up again. A connection lost to a live node
// (a timeout, a reset) is not "down": its commands are retried on a new connection.
//
// Threading: a router belongs to one io_context run by one thread; Execute and all callbacks
// run on that thread. The slot map is shared by all routers of a store through RedisTopology
// (thread-safe), so a MOVED seen by one thread serves the others.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "granary/common/mutex.h"
#include "granary/common/status.h"
#include "granary/online/redis/connection.h"
#include "granary/online/redis/resp.h"
#include "granary/online/redis/slot_map.h"

namespace granary::redis {

struct RouterConfig {
  bool cluster = false;
  std::vector<NodeAddress> seeds;  // standalone: the one server
  ConnectionOptions connection;    // credentials and timeouts; the address is set per node
  bool read_from_replicas = false;
};

// Counters for tests and operations. Thread-safe.
struct RouterStats {
  std::atomic<int64_t> moved{0};
  std::atomic<int64_t> ask{0};
  std::atomic<int64_t> retries{0};
  std::atomic<int64_t> topology_refreshes{0};
  std::atomic<int64_t> connections_opened{0};
};

// The configuration and slot map shared by every router of one store. Thread-safe.
class RedisTopology {
 public:
  explicit RedisTopology(RouterConfig config) : config_(std::move(config)) {}
  const RouterConfig& config() const { return config_; }
  RouterStats& stats() { return stats_; }

  // The current slot map (nullptr before the first CLUSTER SLOTS) and its version.
  std::shared_ptr<const SlotMap> slots(uint64_t* version) const;
  uint64_t version() const { return version_.load(std::memory_order_acquire); }
  // Installs `map`; when `based_on` is set, only if the version is still that one (a patch).
  void Publish(std::shared_ptr<const SlotMap> map, std::optional<uint64_t> based_on = {});

 private:
  const RouterConfig config_;
  RouterStats stats_;
  mutable Mutex mu_;
  std::shared_ptr<const SlotMap> slots_ GUARDED_BY(mu_);
  std::atomic<uint64_t> version_{0};
};

// A batch of commands to run. Fill `buffer` and `commands` with Add(), then Execute().
//
// Not thread-safe: one thread fills it; from Execute() until OnDone() the router's thread owns
// it (OnReply and OnDone run there) and no other thread may touch it; after OnDone the thread
// that waited for it may read what the callbacks stored.
class Batch {
 public:
  virtual ~Batch() = default;

  struct Command {
    uint32_t offset = 0;  // in buffer
    uint32_t size = 0;
    uint16_t slot = 0;
    bool read_only = false;
  };
  // Appends one command: `write` encodes it into the buffer (CommandWriter).
  template <typename F>
  void Add(uint16_t slot, bool read_only, F&& write) {
    Command c;
    c.offset = static_cast<uint32_t>(buffer.size());
    c.slot = slot;
    c.read_only = read_only;
    CommandWriter w(&buffer);
    write(w);
    c.size = static_cast<uint32_t>(buffer.size() - c.offset);
    commands.push_back(c);
  }
  std::string_view bytes(size_t i) const {
    return std::string_view(buffer.data() + commands[i].offset, commands[i].size);
  }

  // The final reply of command i: any reply but a redirect or a retryable error (so error
  // replies such as a script's own errors arrive here). Strings valid during the call only.
  virtual void OnReply(size_t i, const Reply& reply) = 0;
  // Once, after every command has its reply, or when the batch failed (the first error).
  virtual void OnDone(Status status) = 0;

  std::string buffer;
  std::vector<Command> commands;
  // Send every command to this node, whatever its slot (SCAN of one node).
  std::optional<NodeAddress> pinned_node;
  // The Lua source of the batch's EVALSHA commands, loaded when a node answers NOSCRIPT.
  const std::string* script = nullptr;

  // Partial answers: a command whose node is down or does not answer within the retry budget
  // (Unavailable) goes to OnCommandFailed instead of failing the batch, and the others are
  // answered. The batch still fails when every command failed so, or on any other error.
  bool allow_partial = false;
  // Command i gets no reply (allow_partial only); OnReply is not called for it.
  virtual void OnCommandFailed(size_t i, const Status& status) {}
};

// The status of an error reply that reached a batch (redirects and retryable errors never do):
// what it means for the caller, with the fix when an operator must act. NOPERM (the ACL user
// may not run the command) and OOM (maxmemory reached) are FailedPrecondition: retrying cannot
// help; WRONGTYPE (a key holds a value that is not Granary's) is Corruption; anything else
// (BUSY, a refused connection limit, ...) is Unavailable. Callers add where (the store).
Status ErrorReplyStatus(std::string_view command, std::string_view error);

class RedisClusterRouter {
 public:
  RedisClusterRouter(const boost::asio::any_io_executor& executor,
                     std::shared_ptr<RedisTopology> topology);
  ~RedisClusterRouter();  // closes the connections
  RedisClusterRouter(const RedisClusterRouter&) = delete;
  RedisClusterRouter& operator=(const RedisClusterRouter&) = delete;

  // Runs the batch; its OnReply/OnDone run on this router's thread, never inside Execute.
  void Execute(std::shared_ptr<Batch> batch);

  // Reads the slot map now (cluster mode), trying each known node; `done` gets the outcome.
  void Refresh(std::function<void(Status)> done);

  // The masters of the deployment (the one server when standalone).
  std::vector<NodeAddress> Masters();

  const boost::asio::any_io_executor& executor() const { return executor_; }

 private:
  class Run;
  class Refresher;
  struct Node {
    NodeAddress address;
    bool readonly = false;
    std::shared_ptr<Connection> connection;
    int failures = 0;   // consecutive
    bool down = false;  // the last connect failed (see the header comment)
    std::chrono::steady_clock::time_point next_attempt;
    Status last_failure;
    const Connection* noted_failure_of = nullptr;  // the failed connection already counted
  };

  // The node index for an address (added when new).
  uint16_t NodeFor(const NodeAddress& address, bool readonly);
  // Where command `c` goes now; `attempt` > 0 avoids replicas. Unavailable when no node serves
  // the slot.
  Result<uint16_t> Route(const Batch::Command& c, int attempt,
                         const std::optional<NodeAddress>& pinned);
  // A usable connection to node n, or nullptr while it is in backoff (then `why` says why, and
  // `*down` whether the node is down: its commands should fail now rather than be retried).
  Connection* ConnectionTo(uint16_t n, Status* why, bool* down = nullptr);
  void NoteFailure(uint16_t n, const Status& status);
  void NoteSuccess(uint16_t n) {
    nodes_[n].failures = 0;
    nodes_[n].down = false;
  }
  void SyncSlots();
  void OnMoved(uint16_t slot, const NodeAddress& to);
  void RequestRefresh();

  boost::asio::any_io_executor executor_;
  std::shared_ptr<RedisTopology> topology_;
  std::shared_ptr<const SlotMap> slots_;
  uint64_t slots_version_ = 0;
  std::vector<Node> nodes_;
  std::map<std::pair<std::string, bool>, uint16_t> node_index_;  // (host:port, readonly)
  std::shared_ptr<Refresher> refresher_;                         // in flight, or nullptr
  std::chrono::steady_clock::time_point last_refresh_;
  size_t next_seed_ = 0;
  bool closing_ = false;
  uint32_t replica_cursor_ = 0;
};

}  // namespace granary::redis
