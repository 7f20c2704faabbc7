// Connection: one pipelined RESP connection to one Redis node, on Boost.Asio.
//
// Commands are queued with Send() and written together; replies come back in order and go to
// each command's handler. The connection opens lazily on the first Send: TCP connect (bounded
// by connect_timeout), then AUTH, SELECT and READONLY, pipelined in front of the first commands.
// While commands are pending, the node must send some reply bytes at least every
// request_timeout, or the connection fails with Unavailable: a dead or frozen node never hangs a
// caller. A failed connection fails every pending command (OnFailure) and accepts no more; the
// owner makes a new one.
//
// Not thread-safe: create, use and destroy it on its executor's thread. Handlers run there too.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "granary/common/status.h"
#include "granary/online/redis/resp.h"
#include "granary/online/redis/slot_map.h"

namespace granary::redis {

struct ConnectionOptions {
  NodeAddress address;
  std::string username;   // ACL user; empty: AUTH with the password only
  std::string password;   // empty: no AUTH
  int db = 0;             // SELECT when not 0 (standalone only)
  bool readonly = false;  // READONLY: this connection may read from a cluster replica
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds request_timeout{2000};
};

// Receives the replies of the commands it sent.
class ReplyHandler {
 public:
  // The reply to the command sent with `tag`; its strings are valid only during the call.
  virtual void OnReply(uint32_t tag, const Reply& reply) = 0;
  // The connection failed before the reply came.
  virtual void OnFailure(uint32_t tag, const Status& status) = 0;

 protected:
  ~ReplyHandler() = default;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  static std::shared_ptr<Connection> Make(const boost::asio::any_io_executor& executor,
                                          ConnectionOptions options);
  ~Connection();

  // Queues one encoded command (CommandWriter). The handler must stay alive until it was called.
  // Nothing is written before Flush(), so a pipeline goes out in one write.
  void Send(std::string_view command, ReplyHandler* handler, uint32_t tag);
  // Writes the queued commands (connecting first when needed).
  void Flush();
  // Closes the socket; pending commands fail with `why`.
  void Close(const Status& why);

  bool failed() const { return state_ == State::kFailed; }
  // Failed before the connection was up (refused, no answer within connect_timeout, unknown
  // host): the node is down, not merely a connection lost.
  bool failed_to_connect() const { return failed_to_connect_; }
  // Not connected yet (no Flush, or the connect in progress).
  bool connecting() const { return state_ == State::kNew || state_ == State::kConnecting; }
  const Status& failure() const { return failure_; }
  const NodeAddress& address() const { return options_.address; }
  size_t pending() const { return pending_.size(); }

  // Commands queued with Send() so far: the position of the next one in this connection's order.
  uint64_t sent() const { return sent_; }

  // Per script source, the sent() position of the last SCRIPT LOAD the router queued here. A
  // NOSCRIPT reply to a command queued before it needs no other load (the load runs before the
  // command is sent again); one to a command queued after it means the server lost its scripts
  // again (SCRIPT FLUSH, a restart), so the router loads once more.
  std::vector<std::pair<const std::string*, uint64_t>> script_loads;

 private:
  enum class State { kNew, kConnecting, kReady, kFailed };
  enum class Internal : uint32_t { kAuth, kSelect, kReadonly };
  struct Pending {
    ReplyHandler* handler;  // nullptr: a handshake command (tag is an Internal)
    uint32_t tag;
  };

  Connection(const boost::asio::any_io_executor& executor, ConnectionOptions options);
  void Connect();
  void OnConnected();
  void StartWrite();
  void StartRead();
  void ProcessInput();
  void HandleInternal(Internal what, const Reply& reply);
  void Fail(Status status);
  void ArmTimer();
  void OnTimer();
  std::string Where() const { return "redis at " + options_.address.ToString(); }

  ConnectionOptions options_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::steady_timer timer_;
  bool timer_armed_ = false;
  std::chrono::steady_clock::time_point armed_for_;
  uint64_t timer_generation_ = 0;
  std::chrono::steady_clock::time_point deadline_;  // connect deadline, or last progress + timeout
  State state_ = State::kNew;
  Status failure_;
  bool failed_to_connect_ = false;
  std::string out_;      // queued, not yet being written
  std::string writing_;  // being written
  bool write_in_flight_ = false;
  // Received bytes: [in_begin_, in_end_) of in_ are not parsed yet.
  std::unique_ptr<char[]> in_;
  size_t in_capacity_ = 0, in_begin_ = 0, in_end_ = 0;
  std::deque<Pending> pending_;
  uint64_t sent_ = 0;
  Reply reply_;  // reused between replies
};

}  // namespace granary::redis
