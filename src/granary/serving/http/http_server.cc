// HttpServer: the workers, accepting and admitting connections (least connections across
// workers, refusals when out of descriptors), starting and stopping; JSON errors. One
// connection's requests are http_session.cc's.
#include "granary/serving/http/http_server.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "granary/serving/http/http_server_impl.h"

namespace granary::http {
namespace {

// After an accept error that leaves nothing to do (no reserve descriptor), wait this long before
// accepting again, so a lasting error does not spin the worker.
constexpr auto kAcceptBackoff = std::chrono::milliseconds(50);
// Out of file descriptors: one log line per this period at most.
constexpr int64_t kFdLogPeriodMs = 10'000;
// Connections a worker accepts at once when it finds them waiting.
constexpr int kAcceptBatch = 64;

std::string_view CodeName(int status) {
  switch (status) {
    case 400:
      return "invalid_argument";
    case 401:
      return "unauthenticated";
    case 404:
      return "not_found";
    case 405:
      return "method_not_allowed";
    case 408:
      return "timeout";
    case 409:
      return "conflict";
    case 413:
      return "payload_too_large";
    case 415:
      return "unsupported_media_type";
    case 501:
      return "not_implemented";
    case 503:
      return "unavailable";
    default:
      return status >= 500 ? "internal" : "error";
  }
}

void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      default:
        if (c < 0x20) {
          *out += fmt::format("\\u{:04x}", c);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

int64_t SteadyMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             SteadyClock::now().time_since_epoch())
      .count();
}

}  // namespace

HttpResponse JsonError(int status, std::string_view message) {
  HttpResponse r;
  r.status = status;
  r.body =
      fmt::format(R"({{"error":{{"status":{},"code":"{}","message":)", status, CodeName(status));
  AppendJsonString(&r.body, message);
  r.body += "}}";
  return r;
}

void HttpServer::Impl::Accept(Worker* worker) {
  worker->acceptor->async_accept(
      worker->ioc, [this, worker](beast::error_code ec, tcp::socket socket) {
        if (ec == asio::error::operation_aborted || stopping.load()) return;
        if (ec) return OnAcceptError(worker, ec);
        Admit(worker, std::move(socket));
        // Take what else waits in the accept queue now, not one per turn of the event loop: a
        // worker busy with requests would accept too slowly, the queue would fill and new
        // clients' SYNs be dropped (then retried after a second or more).
        for (int i = 0; i < kAcceptBatch; ++i) {
          tcp::socket next(worker->ioc);
          worker->acceptor->accept(next, ec);  // non-blocking: would_block when none waits
          if (ec == asio::error::would_block || ec == asio::error::try_again) break;
          if (ec) return OnAcceptError(worker, ec);
          Admit(worker, std::move(next));
        }
        Accept(worker);
      });
}

// The kernel wakes whichever worker waits in accept, so an idle worker would take most new
// connections while a busy one takes few; keep-alive connections stay where they land. So a
// connection goes to the worker with the fewest open connections (moved there as a descriptor
// when that is another worker): least connections, as SO_REUSEPORT's hash spread them before.
void HttpServer::Impl::Admit(Worker* worker, tcp::socket socket) {
  Worker* target = worker;
  for (auto& w : workers) {
    if (w->connections.load(std::memory_order_relaxed) <
        target->connections.load(std::memory_order_relaxed)) {
      target = w.get();
    }
  }
  if (target == worker || target->connections.load(std::memory_order_relaxed) + 1 >=
                              worker->connections.load(std::memory_order_relaxed)) {
    return AdmitOn(worker, std::move(socket));
  }
  beast::error_code ec;
  auto fd = std::make_shared<UniqueFd>(socket.release(ec));
  if (ec) return;  // cannot happen on a socket with no operation pending; it closed
  // Counted on the target from now, so a burst of accepts spreads before the moves arrive.
  target->connections.fetch_add(1, std::memory_order_relaxed);
  asio::post(target->ioc, [this, target, fd] {
    target->connections.fetch_sub(1, std::memory_order_relaxed);
    if (stopping.load()) return;  // the descriptor closes with `fd`
    beast::error_code assign_ec;
    tcp::socket moved(target->ioc);
    moved.assign(listen_protocol, fd->get(), assign_ec);
    if (assign_ec) return;
    fd->Release();
    AdmitOn(target, std::move(moved));
  });
}

void HttpServer::Impl::AdmitOn(Worker* worker, tcp::socket socket) {
  beast::error_code ec;
  const int open = worker->connections.load(std::memory_order_relaxed);
  bool shed = false;
  if (worker_max_connections > 0 && open >= worker_max_connections) {
    // Up to a margin beyond the limit, a new connection is read and answered 503 (a client
    // learns to retry later); beyond it, closed at once (reset) so that descriptors and memory
    // stay bounded whatever the clients do.
    const int margin = std::max(16, worker_max_connections / 4);
    if (open >= worker_max_connections + margin) {
      socket.set_option(asio::socket_base::linger(true, 0), ec);
      socket.close(ec);
      if (overload.refused_connection_limit != nullptr) {
        overload.refused_connection_limit->Increment();
      }
      return;
    }
    shed = true;
  }
  socket.set_option(tcp::no_delay(true), ec);
  // The kernel's receive time of each segment, for the queue delay (see ReceiveFirstBytes).
  int one = 1;
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
  auto session = std::make_shared<Session>(std::move(socket), this, worker, shed);
  worker->sessions.remove_if([](const std::weak_ptr<Session>& s) { return s.expired(); });
  worker->sessions.push_back(session);
  session->Start();
}

void HttpServer::Impl::OnAcceptError(Worker* worker, const beast::error_code& ec) {
  const int e = ec.value();
  const bool out_of_fds = ec.category() == boost::system::system_category() &&
                          (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM);
  if (out_of_fds) {
    const int refused = RefuseWaitingConnections(worker);
    if (refused > 0) {
      if (overload.refused_fd_limit != nullptr) overload.refused_fd_limit->Increment(refused);
      LogFdShortage(refused, ec);
      return Accept(worker);  // the queue is empty now: wait for the next connection
    }
    LogFdShortage(0, ec);
  }
  if (overload.accept_errors != nullptr) overload.accept_errors->Increment();
  // Nothing could be done (no reserve descriptor, or another error): wait before trying again,
  // so a lasting error does not spin the worker.
  worker->accept_backoff.expires_after(kAcceptBackoff);
  worker->accept_backoff.async_wait([this, worker](beast::error_code wait_ec) {
    if (wait_ec || stopping.load()) return;
    Accept(worker);
  });
}

// Out of descriptors, the waiting connections cannot be accepted the usual way: give up the
// reserve descriptor, accept each waiting connection with it and answer 503 (a prompt refusal
// instead of a client that hangs), then take the reserve back. Returns how many were refused.
int HttpServer::Impl::RefuseWaitingConnections(Worker* worker) {
  if (worker->reserve_fd.get() < 0) {
    worker->reserve_fd.Reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    return 0;  // the reserve was used up earlier and is back now (or still unavailable)
  }
  static const std::string kResponse = [] {
    const std::string body = JsonError(503,
                                       "the server is out of file descriptors; retry later "
                                       "(its operator should raise the limit: ulimit -n)")
                                 .body;
    return fmt::format(
        "HTTP/1.1 503 Service Unavailable\r\nServer: granary\r\nContent-Type: "
        "application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{}",
        body.size(), body);
  }();
  worker->reserve_fd.Reset();
  const int listener = worker->acceptor->native_handle();
  int refused = 0;
  // Bounded, so a flood cannot keep this worker here for long.
  for (; refused < 256; ++refused) {
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) break;  // EAGAIN: none waiting; or still out of descriptors
    // Read what the client sent already, so that closing does not reset the connection before
    // it reads the answer.
    char scratch[4096];
    for (int i = 0; i < 16 && ::recv(fd, scratch, sizeof scratch, MSG_DONTWAIT) > 0; ++i) {
    }
    ssize_t ignored = ::send(fd, kResponse.data(), kResponse.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)ignored;
    ::shutdown(fd, SHUT_WR);
    ::close(fd);
  }
  worker->reserve_fd.Reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  return refused;
}

void HttpServer::Impl::LogFdShortage(int64_t refused, const beast::error_code& ec) {
  fd_refusals_unlogged.fetch_add(refused);
  if (!options.log) return;
  const int64_t now = SteadyMillis();
  int64_t last = fd_last_log_ms.load();
  if (last != 0 && now - last < kFdLogPeriodMs) return;
  if (!fd_last_log_ms.compare_exchange_strong(last, now)) return;  // another worker logs
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  options.log(fmt::format(
      "out of file descriptors ({}; the limit is {}): {} connections refused with a 503 since "
      "the last report; raise the limit (ulimit -n, or LimitNOFILE= under systemd) or lower "
      "--max-connections",
      ec.message(), static_cast<int64_t>(limit.rlim_cur), fd_refusals_unlogged.exchange(0)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl, uint16_t port)
    : impl_(std::move(impl)), port_(port) {}

HttpServer::~HttpServer() { Stop(); }

int64_t HttpServer::in_flight() const { return impl_->in_flight.load(); }

Result<std::unique_ptr<HttpServer>> HttpServer::Start(HttpServerOptions options,
                                                      std::vector<Route> routes) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->routes = std::move(routes);
  int threads = impl->options.threads > 0
                    ? impl->options.threads
                    : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  beast::error_code ec;
  const auto address = asio::ip::make_address(impl->options.host, ec);
  if (ec) {
    return Status::InvalidArgument(fmt::format(
        "--host '{}' is not an IP address; use 127.0.0.1 (this machine only) or 0.0.0.0 (every "
        "interface)",
        impl->options.host));
  }
  uint16_t port = impl->options.port;
  // One listening socket, without SO_REUSEPORT: a second server on the port fails to bind (the
  // kernel says "address in use") instead of sharing the connections. Every worker accepts from
  // a duplicate of it on its own io_context; the kernel hands each connection to one of them.
  for (int i = 0; i < threads; ++i) impl->workers.push_back(std::make_unique<Worker>());
  tcp::acceptor& first = impl->workers[0]->acceptor.emplace(impl->workers[0]->ioc);
  const tcp::endpoint endpoint(address, port);
  first.open(endpoint.protocol(), ec);
  // SO_REUSEADDR only lets a restarted server bind while old connections are in TIME_WAIT; on
  // Linux it does not let two sockets listen on one port.
  if (!ec) first.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) first.bind(endpoint, ec);
  if (!ec) first.listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) first.native_non_blocking(true, ec);  // the refusal loop must never block
  if (!ec) first.non_blocking(true, ec);         // nor the accept loop (would_block)
  if (!ec) {
    // Turns the kernel's receive timestamps on now (they start a moment after the first socket
    // asks for them), so the first connections' queue delays are known too.
    int one = 1;
    ::setsockopt(first.native_handle(), SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
  }
  if (ec) {
    return Status::IOError(fmt::format(
        "cannot listen on {}:{}: {}{}", impl->options.host, port, ec.message(),
        ec == asio::error::address_in_use
            ? fmt::format("; another process (perhaps another granary serve) listens on port {}: "
                          "stop it or pass --port with a free one",
                          port)
            : ""));
  }
  port = first.local_endpoint().port();
  impl->listen_protocol = endpoint.protocol();
  for (int i = 1; i < threads; ++i) {
    const int fd = ::fcntl(first.native_handle(), F_DUPFD_CLOEXEC, 0);
    if (fd >= 0) {
      impl->workers[i]->acceptor.emplace(impl->workers[i]->ioc);
      impl->workers[i]->acceptor->assign(endpoint.protocol(), fd, ec);
    }
    if (fd >= 0 && !ec) impl->workers[i]->acceptor->non_blocking(true, ec);
    if (fd < 0 || ec) {
      if (fd >= 0 && !impl->workers[i]->acceptor->is_open()) ::close(fd);
      return Status::IOError(
          fmt::format("cannot share the listening socket of {}:{} with worker "
                      "{}: {}; raise the file descriptor limit (ulimit -n)",
                      impl->options.host, port, i, fd < 0 ? std::strerror(errno) : ec.message()));
    }
  }
  for (auto& worker : impl->workers) {
    worker->reserve_fd.Reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  }
  const auto per_worker = [threads](int total) {
    return total > 0 ? (total + threads - 1) / threads : 0;
  };
  impl->worker_max_connections = per_worker(impl->options.max_connections);
  impl->worker_max_in_flight = per_worker(impl->options.max_in_flight);
  if (impl->options.metrics != nullptr) {
    for (size_t i = 0; i <= impl->routes.size(); ++i) {
      impl->latency.push_back(&impl->options.metrics->GetHistogram(
          "granary_http_request_duration_seconds",
          "Time from a request's headers read to its response handed to the socket, by path.",
          LatencyBuckets(),
          {{"path", i < impl->routes.size() ? impl->routes[i].path : "unmatched"}}));
      impl->send_latency.push_back(&impl->options.metrics->GetHistogram(
          "granary_http_response_send_seconds",
          "Time from a response handed to the socket to its last byte taken by the kernel (the "
          "client reading a large answer), by path.",
          LatencyBuckets(),
          {{"path", i < impl->routes.size() ? impl->routes[i].path : "unmatched"}}));
    }
    MetricsRegistry& m = *impl->options.metrics;
    OverloadMetrics& o = impl->overload;
    o.open_connections = &m.GetGauge("granary_http_open_connections", "HTTP connections open now.");
    constexpr std::string_view kShed =
        "Requests answered 503 at once by admission control, by the limit reached.";
    o.shed_connection_limit =
        &m.GetCounter("granary_http_shed_requests_total", kShed, {{"limit", "connections"}});
    o.shed_in_flight_limit =
        &m.GetCounter("granary_http_shed_requests_total", kShed, {{"limit", "in_flight"}});
    o.shed_queue_delay =
        &m.GetCounter("granary_http_shed_requests_total", kShed, {{"limit", "queue_delay"}});
    constexpr std::string_view kRefused =
        "Connections refused at accept, by reason: far beyond --max-connections (closed), or "
        "out of file descriptors (answered 503 with the reserve descriptor).";
    o.refused_connection_limit = &m.GetCounter("granary_http_refused_connections_total", kRefused,
                                               {{"reason", "connection_limit"}});
    o.refused_fd_limit =
        &m.GetCounter("granary_http_refused_connections_total", kRefused, {{"reason", "fd_limit"}});
    o.accept_errors =
        &m.GetCounter("granary_http_accept_errors_total",
                      "Accept errors after which a worker waited 50 ms before accepting again.");
  }
  Impl* raw = impl.get();
  for (auto& worker : raw->workers) {
    raw->Accept(worker.get());
    worker->thread = std::thread([w = worker.get()] { w->ioc.run(); });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl), port));
}

void HttpServer::Stop() {
  std::call_once(impl_->stop_once, [this] {
    impl_->stopping.store(true);
    for (auto& worker : impl_->workers) {
      asio::post(worker->ioc, [w = worker.get()] {
        beast::error_code ec;
        w->acceptor->close(ec);
        w->accept_backoff.cancel();
        for (auto& weak : w->sessions) {
          if (auto s = weak.lock()) s->CloseIfIdle();
        }
      });
    }
    const auto deadline = SteadyClock::now() + impl_->options.drain_timeout;
    while (impl_->in_flight.load() > 0 && SteadyClock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    for (auto& worker : impl_->workers) worker->ioc.stop();
    for (auto& worker : impl_->workers) {
      if (worker->thread.joinable()) worker->thread.join();
    }
    // The threads are gone: close what is left (connections that were mid-write when Stop()
    // began), so no client waits on a socket nobody serves.
    for (auto& worker : impl_->workers) {
      for (auto& weak : worker->sessions) {
        if (auto s = weak.lock()) s->ForceClose();
      }
    }
  });
}

}  // namespace granary::http
