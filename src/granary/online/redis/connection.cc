#include "granary/online/redis/connection.h"

#include <fmt/format.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>
#include <cstring>

namespace granary::redis {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

constexpr size_t kMinFreeBytes = 16 * 1024;

std::string Millis(std::chrono::milliseconds ms) { return std::to_string(ms.count()) + " ms"; }

}  // namespace

std::shared_ptr<Connection> Connection::Make(const asio::any_io_executor& executor,
                                             ConnectionOptions options) {
  return std::shared_ptr<Connection>(new Connection(executor, std::move(options)));
}

Connection::Connection(const asio::any_io_executor& executor, ConnectionOptions options)
    : options_(std::move(options)), socket_(executor), resolver_(executor), timer_(executor) {}

Connection::~Connection() {
  boost::system::error_code ec;
  socket_.close(ec);
}

void Connection::Send(std::string_view command, ReplyHandler* handler, uint32_t tag) {
  if (state_ == State::kFailed) {
    handler->OnFailure(tag, failure_);
    return;
  }
  if (pending_.empty()) deadline_ = SteadyClock::now() + options_.request_timeout;
  out_.append(command);
  pending_.push_back({handler, tag});
  ++sent_;
}

void Connection::Flush() {
  switch (state_) {
    case State::kNew:
      Connect();
      break;
    case State::kReady:
      StartWrite();
      ArmTimer();
      break;
    default:
      break;  // written once connected
  }
}

void Connection::Connect() {
  state_ = State::kConnecting;
  deadline_ = SteadyClock::now() + options_.connect_timeout;
  ArmTimer();
  auto self = shared_from_this();
  auto on_connect = [this, self](const boost::system::error_code& ec, const tcp::endpoint&) {
    if (state_ != State::kConnecting) return;
    if (ec) {
      return Fail(
          Status::Unavailable(fmt::format("cannot connect to {}: {}", Where(), ec.message())));
    }
    OnConnected();
  };
  boost::system::error_code ec;
  asio::ip::address ip = asio::ip::make_address(options_.address.host, ec);
  if (!ec) {
    std::array<tcp::endpoint, 1> endpoints{tcp::endpoint(ip, options_.address.port)};
    asio::async_connect(socket_, endpoints, on_connect);
    return;
  }
  resolver_.async_resolve(options_.address.host, std::to_string(options_.address.port),
                          [this, self, on_connect](const boost::system::error_code& ec,
                                                   tcp::resolver::results_type results) {
                            if (state_ != State::kConnecting) return;
                            if (ec) {
                              return Fail(Status::Unavailable(fmt::format(
                                  "cannot resolve the host of {}: {}", Where(), ec.message())));
                            }
                            asio::async_connect(socket_, results, on_connect);
                          });
}

void Connection::OnConnected() {
  boost::system::error_code ec;
  socket_.set_option(tcp::no_delay(true), ec);
  // The handshake goes in front of the commands queued while connecting, in the same write.
  std::string handshake;
  std::vector<Pending> internal;
  CommandWriter w(&handshake);
  if (!options_.password.empty()) {
    if (options_.username.empty()) {
      w.Begin(2).Arg("AUTH").Arg(options_.password);
    } else {
      w.Begin(3).Arg("AUTH").Arg(options_.username).Arg(options_.password);
    }
    internal.push_back({nullptr, static_cast<uint32_t>(Internal::kAuth)});
  }
  if (options_.db != 0) {
    w.Begin(2).Arg("SELECT").Arg(static_cast<int64_t>(options_.db));
    internal.push_back({nullptr, static_cast<uint32_t>(Internal::kSelect)});
  }
  if (options_.readonly) {
    w.Begin(1).Arg("READONLY");
    internal.push_back({nullptr, static_cast<uint32_t>(Internal::kReadonly)});
  }
  for (auto it = internal.rbegin(); it != internal.rend(); ++it) pending_.push_front(*it);
  out_.insert(0, handshake);
  state_ = State::kReady;
  deadline_ = SteadyClock::now() + options_.request_timeout;
  in_capacity_ = 64 * 1024;
  in_.reset(new char[in_capacity_]);
  StartRead();
  StartWrite();
  ArmTimer();
}

void Connection::StartWrite() {
  if (write_in_flight_ || out_.empty() || state_ != State::kReady) return;
  write_in_flight_ = true;
  writing_.swap(out_);
  out_.clear();
  auto self = shared_from_this();
  asio::async_write(socket_, asio::buffer(writing_),
                    [this, self](const boost::system::error_code& ec, size_t) {
                      write_in_flight_ = false;
                      if (state_ != State::kReady) return;
                      if (ec) {
                        return Fail(Status::Unavailable(
                            fmt::format("lost the connection to {}: {}", Where(), ec.message())));
                      }
                      writing_.clear();
                      StartWrite();
                    });
}

void Connection::StartRead() {
  if (in_capacity_ - in_end_ < kMinFreeBytes) {
    const size_t used = in_end_ - in_begin_;
    if (in_begin_ > 0 && in_capacity_ - used >= kMinFreeBytes && used < in_capacity_ / 2) {
      std::memmove(in_.get(), in_.get() + in_begin_, used);
    } else {
      size_t capacity = std::max(in_capacity_ * 2, used + kMinFreeBytes);
      std::unique_ptr<char[]> bigger(new char[capacity]);
      std::memcpy(bigger.get(), in_.get() + in_begin_, used);
      in_ = std::move(bigger);
      in_capacity_ = capacity;
    }
    in_begin_ = 0;
    in_end_ = used;
  }
  auto self = shared_from_this();
  socket_.async_read_some(
      asio::buffer(in_.get() + in_end_, in_capacity_ - in_end_),
      [this, self](const boost::system::error_code& ec, size_t n) {
        if (state_ != State::kReady) return;
        if (ec) {
          return Fail(Status::Unavailable(
              ec == asio::error::eof
                  ? fmt::format("{} closed the connection", Where())
                  : fmt::format("lost the connection to {}: {}", Where(), ec.message())));
        }
        in_end_ += n;
        deadline_ = SteadyClock::now() + options_.request_timeout;
        ProcessInput();
        if (state_ == State::kReady) StartRead();
      });
}

void Connection::ProcessInput() {
  std::string error;
  auto self = shared_from_this();  // a handler may drop the last other reference
  while (in_begin_ < in_end_ && state_ == State::kReady) {
    std::string_view data(in_.get() + in_begin_, in_end_ - in_begin_);
    int64_t used = ParseReply(data, &reply_, &error);
    if (used == 0) break;
    if (used < 0) {
      return Fail(
          Status::Unavailable(fmt::format("{} sent an unreadable reply: {}", Where(), error)));
    }
    in_begin_ += used;
    if (pending_.empty()) {
      return Fail(Status::Unavailable(fmt::format("{} sent a reply nobody asked for", Where())));
    }
    Pending p = pending_.front();
    pending_.pop_front();
    if (p.handler == nullptr) {
      HandleInternal(static_cast<Internal>(p.tag), reply_);
    } else {
      p.handler->OnReply(p.tag, reply_);
    }
  }
  if (in_begin_ == in_end_) in_begin_ = in_end_ = 0;
}

void Connection::HandleInternal(Internal what, const Reply& reply) {
  if (!reply.is_error()) return;
  switch (what) {
    case Internal::kAuth:
      return Fail(Status::InvalidArgument(fmt::format(
          "{} refused the credentials ({}); check online_store.username and password (or the "
          "connection string's password=) in granary.yaml",
          Where(), reply.str)));
    case Internal::kSelect:
      return Fail(Status::InvalidArgument(
          fmt::format("{} refused SELECT {} ({}); check db= in the connection string", Where(),
                      options_.db, reply.str)));
    case Internal::kReadonly:
      return Fail(Status::InvalidArgument(
          fmt::format("{} refused READONLY ({}); read_from_replicas needs a Redis Cluster", Where(),
                      reply.str)));
  }
}

void Connection::ArmTimer() {
  // A timer armed for a later time (the connect deadline) is moved earlier when needed.
  if (timer_armed_ && armed_for_ <= deadline_) return;
  timer_armed_ = true;
  armed_for_ = deadline_;
  const uint64_t generation = ++timer_generation_;
  timer_.expires_at(deadline_);
  auto self = shared_from_this();
  timer_.async_wait([this, self, generation](const boost::system::error_code& ec) {
    if (generation != timer_generation_) return;  // re-armed since
    timer_armed_ = false;
    if (ec || state_ == State::kFailed) return;
    OnTimer();
  });
}

void Connection::OnTimer() {
  const bool waiting = state_ == State::kConnecting || !pending_.empty();
  if (!waiting) return;
  if (SteadyClock::now() >= deadline_) {
    if (state_ == State::kConnecting) {
      return Fail(Status::Unavailable(
          fmt::format("cannot connect to {}: no answer within {} (online_store.connect_timeout "
                      "in granary.yaml)",
                      Where(), Millis(options_.connect_timeout))));
    }
    // A frozen or dead node, or one only slow (long scripts on a loaded server): name the
    // setting that tells them apart.
    return Fail(Status::Unavailable(
        fmt::format("{} sent no reply within {} (its request_timeout); if the server is only "
                    "slow, raise online_store.request_timeout in granary.yaml",
                    Where(), Millis(options_.request_timeout))));
  }
  ArmTimer();
}

void Connection::Close(const Status& why) { Fail(why); }

void Connection::Fail(Status status) {
  if (state_ == State::kFailed) return;
  failed_to_connect_ = state_ == State::kConnecting;
  state_ = State::kFailed;
  failure_ = std::move(status);
  boost::system::error_code ec;
  socket_.close(ec);
  resolver_.cancel();
  timer_.cancel();
  auto self = shared_from_this();
  std::deque<Pending> pending;
  pending.swap(pending_);
  for (const Pending& p : pending) {
    if (p.handler != nullptr) p.handler->OnFailure(p.tag, failure_);
  }
  out_.clear();
}

}  // namespace granary::redis
