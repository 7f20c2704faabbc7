#include "granary/serving/http/http_server.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstring>
#include <list>
#include <mutex>
#include <optional>
#include <utility>

#include "granary/common/strings.h"

namespace granary::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

constexpr size_t kHeaderLimitBytes = 16 * 1024;
// The first read of a request (under the idle timeout) takes what has arrived, up to this.
constexpr size_t kFirstReadBytes = 4096;
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

// A descriptor owned; closed on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }
  // Gives the descriptor up without closing it.
  int Release() { return std::exchange(fd_, -1); }
  void Reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

int64_t SteadyMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             SteadyClock::now().time_since_epoch())
      .count();
}

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

HttpResponse JsonError(int status, std::string_view message) {
  HttpResponse r;
  r.status = status;
  r.body =
      fmt::format(R"({{"error":{{"status":{},"code":"{}","message":)", status, CodeName(status));
  AppendJsonString(&r.body, message);
  r.body += "}}";
  return r;
}

class Session;

// One thread, its io_context and its duplicate of the listening socket. Sessions are touched
// only on its thread.
struct Worker {
  asio::io_context ioc{1};
  // Keeps run() going while a handler owes an answer and no socket operation is pending.
  asio::executor_work_guard<asio::io_context::executor_type> work{ioc.get_executor()};
  std::optional<tcp::acceptor> acceptor;
  asio::steady_timer accept_backoff{ioc};
  // Given up to accept (and refuse) a connection when the process is out of descriptors.
  UniqueFd reserve_fd;
  std::thread thread;
  std::list<std::weak_ptr<Session>> sessions;
  // Open connections of this worker. Changed on its thread; atomic only so that Stop() (after
  // the thread joined) and tests may read it.
  std::atomic<int> connections{0};
  int in_flight = 0;  // requests received and not yet answered; this thread only
  // Metric series looked up once per (route, status) by this thread; no lock afterwards.
  std::map<std::pair<int, int>, Counter*> request_counters;
};

// Counters of admission control and descriptor trouble, looked up once at Start().
struct OverloadMetrics {
  Gauge* open_connections = nullptr;
  Counter* shed_connection_limit = nullptr;     // 503: the worker is at its connection limit
  Counter* shed_in_flight_limit = nullptr;      // 503: the worker is at its in-flight limit
  Counter* shed_queue_delay = nullptr;          // 503: the request waited too long to be read
  Counter* refused_connection_limit = nullptr;  // closed at accept: far beyond the limit
  Counter* refused_fd_limit = nullptr;          // out of descriptors: refused with the reserve
  Counter* accept_errors = nullptr;             // accept failed and nothing could be done
};

struct HttpServer::Impl {
  HttpServerOptions options;
  std::vector<Route> routes;
  std::vector<std::unique_ptr<Worker>> workers;
  tcp listen_protocol = tcp::v4();
  std::atomic<int64_t> in_flight{0};
  std::atomic<bool> stopping{false};
  std::once_flag stop_once;
  std::vector<Histogram*> latency;  // per route, and one more for unmatched requests
  // Per route, and unmatched: from a response handed to the socket to its last byte taken by
  // the kernel (a large answer waits for the client to read; docs/PERFORMANCE.md).
  std::vector<Histogram*> send_latency;
  OverloadMetrics overload;
  int worker_max_connections = 0;  // 0: no bound
  int worker_max_in_flight = 0;    // 0: no bound
  // Out of descriptors: refusals since the last log line, and when it was written.
  std::atomic<int64_t> fd_refusals_unlogged{0};
  std::atomic<int64_t> fd_last_log_ms{0};

  // The route index for a path and method; -1 when the path is unknown, -2 when the path is
  // known but not with this method.
  int FindRoute(std::string_view method, std::string_view path) const {
    bool path_known = false;
    for (size_t i = 0; i < routes.size(); ++i) {
      if (routes[i].path == path) {
        path_known = true;
        if (routes[i].method == method) return static_cast<int>(i);
      }
    }
    return path_known ? -2 : -1;
  }
  std::string AllowedMethods(std::string_view path) const {
    std::string out;
    for (const auto& r : routes) {
      if (r.path == path) out += (out.empty() ? "" : ", ") + r.method;
    }
    return out;
  }
  // "no endpoint /x, did you mean '/y'? The endpoints are: GET /health, ...": every route of
  // the table, so the message never falls behind it.
  std::string NoRouteMessage(std::string_view path) const {
    std::vector<std::string> paths;
    std::string list;
    for (const auto& r : routes) {
      paths.push_back(r.path);
      list += (list.empty() ? "" : ", ") + r.method + " " + r.path;
    }
    const std::string hint = DidYouMean(path, paths);
    return fmt::format("no endpoint {}{} {} endpoints are: {}", path, hint,
                       hint.empty() ? "; the" : "The", list);
  }
  void Accept(Worker* worker);
  void Admit(Worker* worker, tcp::socket socket);
  void AdmitOn(Worker* worker, tcp::socket socket);
  void OnAcceptError(Worker* worker, const beast::error_code& ec);
  int RefuseWaitingConnections(Worker* worker);
  void LogFdShortage(int64_t refused, const beast::error_code& ec);
  HttpResponse Overloaded(std::string_view why) const {
    HttpResponse r = JsonError(503, fmt::format("the server is overloaded: {}; retry after {} s",
                                                why, options.retry_after.count()));
    r.headers.emplace_back("Retry-After", std::to_string(options.retry_after.count()));
    return r;
  }
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  // `shed`: the worker is at its connection limit; the request gets a 503 and the connection
  // closes.
  Session(tcp::socket socket, HttpServer::Impl* server, Worker* worker, bool shed)
      : stream_(std::move(socket)),
        idle_timer_(stream_.get_executor()),
        server_(server),
        worker_(worker),
        shed_(shed) {
    worker_->connections.fetch_add(1, std::memory_order_relaxed);
    if (server_->overload.open_connections != nullptr) server_->overload.open_connections->Add(1);
  }

  void Start() { ReadHeader(); }

  // On the worker thread: closes the connection if it is waiting for a request.
  void CloseIfIdle() {
    if (!in_request_) {
      beast::error_code ec;
      stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
      stream_.close();
      idle_timer_.cancel();
      Uncount();
    }
  }

  // On the worker thread after it stopped: releases the socket.
  void ForceClose() {
    beast::error_code ec;
    stream_.socket().close(ec);
    Uncount();
  }

 private:
  // Waits for the first bytes of the next request under the idle timeout; then the whole
  // request must arrive within the read timeout.
  void ReadHeader() {
    if (server_->stopping.load()) return Close();  // no new requests once Stop() began
    parser_.emplace();
    parser_->body_limit(server_->options.body_limit_bytes);
    parser_->header_limit(kHeaderLimitBytes);
    in_request_ = false;
    queue_delay_ = {};
    if (buffer_.size() > 0) return ReadRequest();  // pipelined: the next request began already
    WaitForRequest();
  }

  void WaitForRequest() {
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

  // Reads what has arrived with the kernel's receive time of it (SO_TIMESTAMPNS, set at accept),
  // so that the request's wait in the socket queue before this worker got to it is known.
  void ReceiveFirstBytes() {
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

  void ReadRequest() {
    stream_.expires_after(server_->options.read_timeout);
    bhttp::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
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

  void ReadBody() {
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        if (ec) return self->OnReadError(ec);
                        self->Dispatch();
                      });
  }

  void OnReadError(beast::error_code ec) {
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

  void Dispatch() {
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
      return Write(route, server_->Overloaded(fmt::format(
                              "{} connections open on this worker (--max-connections {})",
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
      return Write(route, server_->Overloaded(fmt::format(
                              "{} requests in flight on this worker (--max-in-flight {})",
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

  void Write(int route, HttpResponse response) {
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

  // Appends this request's `wait` and `total` to the handler's Server-Timing (if any).
  void AddServerTiming(bhttp::response<bhttp::string_body>& res) const {
    const double total_ms =
        std::chrono::duration<double, std::milli>(SteadyClock::now() - started_).count();
    const double wait_ms = static_cast<double>(queue_delay_.count()) / 1000.0;
    const std::string_view handler_timing = res["Server-Timing"];
    res.set("Server-Timing", fmt::format("{}{}wait;dur={:.3f}, total;dur={:.3f}", handler_timing,
                                         handler_timing.empty() ? "" : ", ", wait_ms, total_ms));
  }

  void CountSent(int route, SteadyClock::time_point handed) {
    if (server_->send_latency.empty()) return;
    const int index = route >= 0 ? route : static_cast<int>(server_->routes.size());
    server_->send_latency[index]->Observe(
        std::chrono::duration<double>(SteadyClock::now() - handed).count());
  }

  void CountRequest(int route, int status) {
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

  void Close() {
    in_request_ = false;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
    idle_timer_.cancel();
    Uncount();
  }

  // The connection no longer counts as open; once, when its socket closes (on the worker thread,
  // while the server is alive: a handler's `respond` may keep the session itself longer).
  void Uncount() {
    if (uncounted_) return;
    uncounted_ = true;
    worker_->connections.fetch_sub(1, std::memory_order_relaxed);
    if (server_->overload.open_connections != nullptr) {
      server_->overload.open_connections->Add(-1);
    }
  }

  beast::tcp_stream stream_;
  asio::steady_timer idle_timer_;  // waiting for the first bytes of a request
  uint64_t wait_generation_ = 0;   // a timer that fires after its wait ended does nothing
  // How long the current request's first bytes waited in the socket before they were read.
  std::chrono::microseconds queue_delay_{0};
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  HttpServer::Impl* server_;
  Worker* worker_;
  const bool shed_;
  bool uncounted_ = false;
  bool keep_alive_ = true;
  bool in_request_ = false;
  unsigned version_ = 11;
  SteadyClock::time_point started_;
};

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
