// Internal to the Redis online store (redis_store.cc, redis_store_write.cc); not part of the
// online interface. A blocking call of RedisOnlineStore runs its I/O on the calling thread: the
// thread's session (an io_context and a router with its own connections) is looked up in the
// store's ThreadSessionTable, a SyncBatch is executed on it and the thread runs the io_context
// until the batch is done.
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "granary/common/mutex.h"
#include "granary/common/status.h"
#include "granary/online/redis/router.h"
#include "granary/online/varint.h"

namespace granary::redis {

namespace asio = boost::asio;

// One thread's io_context and router (with its connections) for one store.
struct ThreadSession {
  std::thread::id owner;
  asio::io_context io{1};
  std::unique_ptr<RedisClusterRouter> router;  // destroyed before `io`
};

// The sessions of one store, at most one per thread. Thread-safe.
class ThreadSessionTable {
 public:
  explicit ThreadSessionTable(std::shared_ptr<RedisTopology> topology)
      : topology_(std::move(topology)) {}

  // The calling thread's session, made on first use. `made` says whether it is new.
  ThreadSession* ForThisThread(bool* made) {
    const std::thread::id self = std::this_thread::get_id();
    MutexLock lock(&mu_);
    *made = false;
    for (const auto& session : sessions_) {
      if (session->owner == self) return session.get();
    }
    auto session = std::make_unique<ThreadSession>();
    session->owner = self;
    session->router = std::make_unique<RedisClusterRouter>(session->io.get_executor(), topology_);
    sessions_.push_back(std::move(session));
    *made = true;
    return sessions_.back().get();
  }

  // Closes and forgets the session of `thread` (which has no call running).
  void Release(std::thread::id thread) {
    std::unique_ptr<ThreadSession> gone;
    {
      MutexLock lock(&mu_);
      for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
        if ((*it)->owner == thread) {
          gone = std::move(*it);
          sessions_.erase(it);
          break;
        }
      }
    }
    // Closed outside the lock: closing connections runs no code of other sessions.
  }

  // Closes every session (the store is going; no call is running).
  void Clear() {
    std::vector<std::unique_ptr<ThreadSession>> gone;
    MutexLock lock(&mu_);
    gone.swap(sessions_);
  }

  size_t size() {
    MutexLock lock(&mu_);
    return sessions_.size();
  }

 private:
  const std::shared_ptr<RedisTopology> topology_;
  Mutex mu_;
  std::vector<std::unique_ptr<ThreadSession>> sessions_ GUARDED_BY(mu_);
};

// Runs the session's io_context until `*done`. Only the session's owner thread calls it.
inline void RunUntil(ThreadSession& session, const bool* done) {
  while (!*done) {
    if (session.io.stopped()) session.io.restart();
    session.io.run_one();
  }
}

// A batch whose outcome a blocking caller waits for (on its own thread's io_context).
class SyncBatch : public Batch {
 public:
  void OnDone(Status status) override {
    if (!status.ok() && error_.ok()) error_ = std::move(status);
    done = true;
  }
  const Status& status() const { return error_; }
  bool done = false;

 protected:
  void SetError(Status s) {
    if (error_.ok()) error_ = std::move(s);
  }

 private:
  Status error_;
};

// Any commands; keeps every reply.
// Any commands; keeps every reply.
class CollectBatch : public SyncBatch {
 public:
  void OnReply(size_t i, const Reply& reply) override {
    if (replies.size() < commands.size()) replies.resize(commands.size());
    replies[i] = OwnedReply::From(reply);
  }
  std::vector<OwnedReply> replies;
};

// The 4 bytes that name a view in an entity value (docs/ONLINE_LAYOUT.md).
inline std::string ViewIdBytes(uint32_t id) {
  std::string s;
  layout::PutFixed<uint32_t>(&s, id);
  return s;
}

}  // namespace granary::redis
