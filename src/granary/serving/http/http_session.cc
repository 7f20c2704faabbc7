// One connection's requests (Session, http_server_impl.h) and the bearer token check.
#include <fmt/format.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include <cstring>

#include "granary/serving/http/http_server_impl.h"

namespace granary::http {
namespace {

constexpr size_t kHeaderLimitBytes = 16 * 1024;
// The first read of a request (under the idle timeout) takes what has arrived, up to this.
constexpr size_t kFirstReadBytes = 4096;

}  // namespace

// Compares without an early exit, so the time taken does not reveal the token.
// (The length is not hidden; tokens are long and random.)
static bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

bool BearerMatches(std::string_view authorization, std::string_view token) {
  constexpr std::string_view kScheme = "bearer";
  if (authorization.size() <= kScheme.size() ||
      !beast::iequals(authorization.substr(0, kScheme.size()), kScheme) ||
      authorization[kScheme.size()] != ' ') {
    return false;
  }
  std::string_view credentials = authorization.substr(kScheme.size());
  while (!credentials.empty() && credentials.front() == ' ') credentials.remove_prefix(1);
  return ConstantTimeEquals(credentials, token);
}

Session::Session(tcp::socket socket, HttpServer::Impl* server, Worker* worker, bool shed)
    : stream_(std::move(socket)),
      idle_timer_(stream_.get_executor()),
      server_(server),
      worker_(worker),
      shed_(shed) {
  worker_->connections.fetch_add(1, std::memory_order_relaxed);
  if (server_->overload.open_connections != nullptr) server_->overload.open_connections->Add(1);
}

void Session::CloseIfIdle() {
  if (!in_request_) {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
    idle_timer_.cancel();
    Uncount();
  }
}

void Session::ForceClose() {
  beast::error_code ec;
  stream_.socket().close(ec);
  Uncount();
}

void Session::ReadHeader() {
  if (server_->stopping.load()) return Close();  // no new requests once Stop() began
  parser_.emplace();
  parser_->body_limit(server_->options.body_limit_bytes);
  parser_->header_limit(kHeaderLimitBytes);
  in_request_ = false;
  queue_delay_ = {};
  if (buffer_.size() > 0) return ReadRequest();  // pipelined: the next request began already
  WaitForRequest();
}

void Session::WaitForRequest() {
  const uint64_t generation = ++wait_generation_;
  idle_timer_.expires_after(server_->options.idle_timeout);
  idle_timer_.async_wait([self = shared_from_this(), generation](beast::error_code ec) {
    if (ec || generation != self->wait_generation_) return;
    beast::error_code ignored;
    self->stream_.socket().cancel(ignored);  // the wait below ends: the connection closes
  });
  stream_.socket().async_wait(tcp::socket::wait_read,
                              [self = shared_from_this()](beast::error_code ec) {
                                ++self->wait_generation_;
                                self->idle_timer_.cancel();
                                if (ec) return self->Close();  // idle timeout, closed
                                self->ReceiveFirstBytes();
                              });
}

void Session::ReceiveFirstBytes() {
  auto buffer = buffer_.prepare(kFirstReadBytes);
  iovec iov{buffer.data(), buffer.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  const ssize_t n = ::recvmsg(stream_.socket().native_handle(), &msg, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    return WaitForRequest();
  }
  if (n <= 0) return Close();  // end of stream, reset
  buffer_.commit(static_cast<size_t>(n));
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
      timespec arrived{};
      std::memcpy(&arrived, CMSG_DATA(c), sizeof arrived);
      timespec now{};
      clock_gettime(CLOCK_REALTIME, &now);
      const auto waited = std::chrono::seconds(now.tv_sec - arrived.tv_sec) +
                          std::chrono::nanoseconds(now.tv_nsec - arrived.tv_nsec);
      if (waited.count() > 0) {
        queue_delay_ = std::chrono::duration_cast<std::chrono::microseconds>(waited);
      }
    }
  }
  ReadRequest();
}

void Session::ReadRequest() {
  stream_.expires_after(server_->options.read_timeout);
  bhttp::async_read_header(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
}

void Session::OnHeader(beast::error_code ec) {
  if (ec) return OnReadError(ec);
  in_request_ = true;
  started_ = SteadyClock::now();
  auto& req = parser_->get();
  if (bhttp::token_list{req[bhttp::field::expect]}.exists("100-continue")) {
    // curl and others wait for this before sending a larger body.
    auto cont = std::make_shared<bhttp::response<bhttp::empty_body>>(bhttp::status::continue_,
                                                                     req.version());
    bhttp::async_write(stream_, *cont,
                       [self = shared_from_this(), cont](beast::error_code ec, size_t) {
                         if (ec) return self->Close();
                         self->ReadBody();
                       });
    return;
  }
  ReadBody();
}

void Session::ReadBody() {
  bhttp::async_read(stream_, buffer_, *parser_,
                    [self = shared_from_this()](beast::error_code ec, size_t) {
                      if (ec) return self->OnReadError(ec);
                      self->Dispatch();
                    });
}

void Session::OnReadError(beast::error_code ec) {
  const bool parse_error =
      ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() &&
      ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message;
  if (!parse_error) return Close();  // end of stream, timeout, reset: nothing to answer
  keep_alive_ = false;
  in_request_ = true;
  started_ = SteadyClock::now();
  server_->in_flight.fetch_add(1);
  ++worker_->in_flight;
  if (ec == bhttp::error::body_limit) {
    return Write(-1, JsonError(413, fmt::format("request body is larger than the limit of {} "
                                                "bytes; send fewer entities per request",
                                                server_->options.body_limit_bytes)));
  }
  Write(-1, JsonError(400, fmt::format("malformed HTTP request: {}", ec.message())));
}

void Session::Dispatch() {
  auto& req = parser_->get();
  HttpRequest request;
  request.method = std::string(req.method_string());
  std::string_view target = req.target();
  size_t q = target.find('?');
  request.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) request.query = std::string(target.substr(q + 1));
  request.content_type = std::string(req[bhttp::field::content_type]);
  request.body = std::move(req.body());
  request.executor = stream_.get_executor();
  keep_alive_ = req.keep_alive();
  version_ = req.version();
  server_->in_flight.fetch_add(1);
  const int worker_in_flight = worker_->in_flight++;

  const int route = server_->FindRoute(request.method, request.path);
  // Admission control: answered at once, before any work, so the admitted keep their latency.
  if (shed_) {
    keep_alive_ = false;
    if (server_->overload.shed_connection_limit != nullptr) {
      server_->overload.shed_connection_limit->Increment();
    }
    return Write(route, server_->Overloaded(
                            fmt::format("{} connections open on this worker (--max-connections {})",
                                        worker_->connections.load(std::memory_order_relaxed) - 1,
                                        server_->options.max_connections)));
  }
  const auto max_delay = server_->options.max_queue_delay;
  if (max_delay.count() > 0 && queue_delay_ > max_delay) {
    if (server_->overload.shed_queue_delay != nullptr) {
      server_->overload.shed_queue_delay->Increment();
    }
    return Write(route, server_->Overloaded(fmt::format(
                            "the request waited {} ms for this worker (--max-queue-delay {} ms)",
                            queue_delay_.count() / 1000, max_delay.count())));
  }
  if (server_->worker_max_in_flight > 0 && worker_in_flight >= server_->worker_max_in_flight) {
    if (server_->overload.shed_in_flight_limit != nullptr) {
      server_->overload.shed_in_flight_limit->Increment();
    }
    return Write(route, server_->Overloaded(
                            fmt::format("{} requests in flight on this worker (--max-in-flight {})",
                                        worker_in_flight, server_->options.max_in_flight)));
  }
  if (route == -1) {
    return Write(route, JsonError(404, server_->NoRouteMessage(request.path)));
  }
  if (route == -2) {
    HttpResponse r =
        JsonError(405, fmt::format("{} does not take {}; use {}", request.path, request.method,
                                   server_->AllowedMethods(request.path)));
    r.headers.emplace_back("Allow", server_->AllowedMethods(request.path));
    return Write(route, std::move(r));
  }
  const Route& r = server_->routes[route];
  const std::string& token = server_->options.bearer_token;
  if (!token.empty() && !r.is_public) {
    if (!BearerMatches(req[bhttp::field::authorization], token)) {
      HttpResponse e = JsonError(401,
                                 "missing or wrong bearer token; send the header "
                                 "'Authorization: Bearer <token>' given to granary serve");
      e.headers.emplace_back("WWW-Authenticate", "Bearer");
      return Write(route, std::move(e));
    }
  }
  auto answered = std::make_shared<std::atomic<bool>>(false);
  Respond respond = [self = shared_from_this(), route, answered](HttpResponse response) {
    if (answered->exchange(true)) return;  // a second answer is a handler bug; ignore it
    auto executor = self->stream_.get_executor();
    asio::dispatch(executor, [self, route, response = std::move(response)]() mutable {
      self->Write(route, std::move(response));
    });
  };
  try {
    r.handler(request, std::move(respond));
  } catch (const std::exception& e) {
    // Handlers return errors as values; an exception here is a bug. Keep serving.
    if (!answered->exchange(true)) {
      Write(route, JsonError(500, fmt::format("internal error: {}", e.what())));
    }
  }
}

void Session::Write(int route, HttpResponse response) {
  auto res = std::make_shared<bhttp::response<bhttp::string_body>>();
  res->version(version_);
  res->result(static_cast<unsigned>(response.status));
  res->set(bhttp::field::server, "granary");
  res->set(bhttp::field::content_type, response.content_type);
  for (auto& [name, value] : response.headers) res->set(name, value);
  if (server_->options.server_timing) AddServerTiming(*res);
  res->body() = std::move(response.body);
  const bool keep = keep_alive_ && !server_->stopping.load();
  res->keep_alive(keep);
  res->prepare_payload();
  CountRequest(route, response.status);
  stream_.expires_after(server_->options.read_timeout);
  bhttp::async_write(stream_, *res,
                     [self = shared_from_this(), res, keep, route, handed = SteadyClock::now()](
                         beast::error_code ec, size_t) {
                       self->server_->in_flight.fetch_sub(1);
                       --self->worker_->in_flight;
                       if (!ec) self->CountSent(route, handed);
                       if (ec || !keep) return self->Close();
                       self->ReadHeader();
                     });
}

void Session::AddServerTiming(bhttp::response<bhttp::string_body>& res) const {
  const double total_ms =
      std::chrono::duration<double, std::milli>(SteadyClock::now() - started_).count();
  const double wait_ms = static_cast<double>(queue_delay_.count()) / 1000.0;
  const std::string_view handler_timing = res["Server-Timing"];
  res.set("Server-Timing", fmt::format("{}{}wait;dur={:.3f}, total;dur={:.3f}", handler_timing,
                                       handler_timing.empty() ? "" : ", ", wait_ms, total_ms));
}

void Session::CountSent(int route, SteadyClock::time_point handed) {
  if (server_->send_latency.empty()) return;
  const int index = route >= 0 ? route : static_cast<int>(server_->routes.size());
  server_->send_latency[index]->Observe(
      std::chrono::duration<double>(SteadyClock::now() - handed).count());
}

void Session::CountRequest(int route, int status) {
  MetricsRegistry* metrics = server_->options.metrics;
  if (metrics == nullptr) return;
  const int index = route >= 0 ? route : static_cast<int>(server_->routes.size());
  Counter*& counter = worker_->request_counters[{index, status}];
  if (counter == nullptr) {
    const std::string path = route >= 0 ? server_->routes[route].path : "unmatched";
    counter = &metrics->GetCounter("granary_http_requests_total",
                                   "HTTP requests answered, by path and status code.",
                                   {{"path", path}, {"code", std::to_string(status)}});
  }
  counter->Increment();
  const double seconds = std::chrono::duration<double>(SteadyClock::now() - started_).count();
  server_->latency[index]->Observe(seconds);
}

void Session::Close() {
  in_request_ = false;
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream_.close();
  idle_timer_.cancel();
  Uncount();
}

void Session::Uncount() {
  if (uncounted_) return;
  uncounted_ = true;
  worker_->connections.fetch_sub(1, std::memory_order_relaxed);
  if (server_->overload.open_connections != nullptr) {
    server_->overload.open_connections->Add(-1);
  }
}

}  // namespace granary::http
