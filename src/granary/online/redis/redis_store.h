// The Redis online store, standalone or Cluster (docs/ONLINE_LAYOUT.md, "Redis").
//
// Why a RESP client of Granary's own (redis/resp.h, connection.h, router.h) rather than
// hiredis: Debian's hiredis 0.14 has no cluster support, and its asynchronous API wants its own
// event-loop adapter, which for Asio would mean wrapping its file descriptor and re-implementing
// redirects, per-node pipelines and timeouts around it anyway. The client here is Asio-native:
// connections live on the caller's io_context (no extra thread, no lock on a request), pipeline
// per node, and follow MOVED/ASK.
//
// Blocking calls (WriteBatch, Read, deletes) run their I/O on the calling thread: each thread
// that calls them gets an io_context and connections of its own, one session per (store,
// thread) kept until the store goes or the thread exits, so a call costs no thread hand-off and
// threads never share a connection. AsyncRead runs on the
// caller's io_context (see OnlineStore's threading contract); every io_context that calls it must
// be run by exactly one thread (the HTTP server's one-io_context-per-core model).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "granary/common/mutex.h"
#include "granary/online/online_store.h"
#include "granary/online/redis/router.h"

namespace granary {
namespace redis {
struct ThreadSession;  // thread_session.h
class ThreadSessionTable;
class SyncBatch;
}  // namespace redis

class RedisOnlineStore final : public OnlineStore {
 public:
  struct Options {
    bool cluster = false;
    std::vector<std::string> nodes;   // "host:port"; standalone: exactly one
    std::string username;             // ACL user; empty: the default user
    std::string password;             // empty: no AUTH
    int db = 0;                       // standalone only
    bool read_from_replicas = false;  // cluster: reads go to replicas (READONLY)
    std::string project;              // keys are "<project>:<entity key>"
    const Clock* clock = &SystemClock::Default();
    Duration connect_timeout = Duration::Seconds(2);
    Duration request_timeout = Duration::Seconds(2);
  };

  // Reads "host:port[,password=...][,username=...][,db=N]" into options (nodes, password,
  // username, db). InvalidArgument naming the bad part and the accepted form.
  static Status ParseConnectionString(std::string_view text, Options* options);

  // Connects, checks the credentials (and reads the slot map of a cluster), loads the scripts.
  static Result<std::unique_ptr<RedisOnlineStore>> Open(Options options);
  ~RedisOnlineStore() override;

  Result<WriteStats> WriteBatch(const ViewLayout& view, const arrow::RecordBatch& rows) override;
  Result<OnlineFeatures> Read(const OnlineReadRequest& request) override;
  void AsyncRead(const boost::asio::any_io_executor& executor, OnlineReadRequest request,
                 ReadCallback done) override;
  Status DeleteViews(const std::vector<std::string>& view_names) override;
  Status DeleteAll() override;
  Status PutViewMarker(const std::string& view, const ViewMarker& marker) override;
  Result<std::vector<ShardMarkers>> ReadViewMarkers() override;
  std::string Describe() const override;

  // The Redis key of an entity key; for tests and tools.
  std::string KeyOf(std::string_view entity_key) const { return prefix_ + std::string(entity_key); }
  // Redirects, retries and reconnections so far.
  const redis::RouterStats& stats() const { return topology_->stats(); }
  // Threads holding a session (an io_context and connections) of this store; for tests.
  size_t thread_sessions() const;

 private:
  using ThreadSession = redis::ThreadSession;
  RedisOnlineStore() = default;
  // The calling thread's io_context and router for this store.
  ThreadSession& ThisThread();
  // Runs a batch on the calling thread and waits for it.
  Status RunSync(const std::shared_ptr<redis::SyncBatch>& batch);
  redis::RedisClusterRouter* RouterFor(const boost::asio::any_io_executor& executor);
  std::vector<redis::NodeAddress> Masters() const;
  // SCANs every master for this project's keys and runs `act` on each page of keys.
  Status ForEachKeyPage(const std::function<Status(const std::vector<std::string>&)>& act);
  // The view markers' hash of each shard (redis_markers.cc).
  struct MarkerShard {
    std::string shard;  // master address, or Describe() standalone
    std::string key;
  };
  std::vector<MarkerShard> MarkerShards() const;
  Status DeleteViewMarkers(const std::vector<std::string>& view_names);
  bool IsMarkerKey(const std::string& key) const {
    return key.size() > prefix_.size() && key.compare(0, prefix_.size(), prefix_) == 0 &&
           key[prefix_.size()] == '\0';
  }

  Options options_;
  std::string prefix_;
  std::string write_script_, delete_script_;  // sources
  std::string write_sha_, delete_sha_;
  std::shared_ptr<redis::RedisTopology> topology_;
  const uint64_t serial_ = NextSerial();
  // Sessions of the threads that made blocking calls, one per thread; shared with those threads'
  // exit hooks, which release their sessions.
  std::shared_ptr<redis::ThreadSessionTable> sessions_;
  // Routers for callers' io_contexts, by execution context.
  Mutex external_mu_;
  std::vector<std::pair<const void*, std::unique_ptr<redis::RedisClusterRouter>>> external_
      GUARDED_BY(external_mu_);

  static uint64_t NextSerial();
};

}  // namespace granary
