#include "granary/serving/http/http_server.h"

#include <fmt/format.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <list>
#include <mutex>
#include <optional>

#include "granary/common/strings.h"

namespace granary::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

constexpr size_t kHeaderLimitBytes = 16 * 1024;

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

// Compares without an early exit, so the time taken does not reveal the token.
// (The length is not hidden; tokens are long and random.)
bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
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

class Session;

// One thread, its io_context and its listening socket. Sessions are touched only on its thread.
struct Worker {
  asio::io_context ioc{1};
  // Keeps run() going while a handler owes an answer and no socket operation is pending.
  asio::executor_work_guard<asio::io_context::executor_type> work{ioc.get_executor()};
  std::optional<tcp::acceptor> acceptor;
  std::thread thread;
  std::list<std::weak_ptr<Session>> sessions;
  // Metric series looked up once per (route, status) by this thread; no lock afterwards.
  std::map<std::pair<int, int>, Counter*> request_counters;
};

struct HttpServer::Impl {
  HttpServerOptions options;
  std::vector<Route> routes;
  std::vector<std::unique_ptr<Worker>> workers;
  std::atomic<int64_t> in_flight{0};
  std::atomic<bool> stopping{false};
  std::once_flag stop_once;
  std::vector<Histogram*> latency;  // per route, and one more for unmatched requests

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
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer::Impl* server, Worker* worker)
      : stream_(std::move(socket)), server_(server), worker_(worker) {}

  void Start() { ReadHeader(); }

  // On the worker thread: closes the connection if it is waiting for a request.
  void CloseIfIdle() {
    if (!in_request_) {
      beast::error_code ec;
      stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
      stream_.close();
    }
  }

  // On the worker thread after it stopped: releases the socket.
  void ForceClose() {
    beast::error_code ec;
    stream_.socket().close(ec);
  }

 private:
  void ReadHeader() {
    if (server_->stopping.load()) return Close();  // no new requests once Stop() began
    parser_.emplace();
    parser_->body_limit(server_->options.body_limit_bytes);
    parser_->header_limit(kHeaderLimitBytes);
    in_request_ = false;
    stream_.expires_after(server_->options.idle_timeout);
    bhttp::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    in_request_ = true;
    started_ = SteadyClock::now();
    stream_.expires_after(server_->options.read_timeout);
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

    const int route = server_->FindRoute(request.method, request.path);
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
      std::string_view auth = req[bhttp::field::authorization];
      constexpr std::string_view kBearer = "Bearer ";
      if (!auth.starts_with(kBearer) || !ConstantTimeEquals(auth.substr(kBearer.size()), token)) {
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
    res->body() = std::move(response.body);
    const bool keep = keep_alive_ && !server_->stopping.load();
    res->keep_alive(keep);
    res->prepare_payload();
    CountRequest(route, response.status);
    stream_.expires_after(server_->options.read_timeout);
    bhttp::async_write(stream_, *res,
                       [self = shared_from_this(), res, keep](beast::error_code ec, size_t) {
                         self->server_->in_flight.fetch_sub(1);
                         if (ec || !keep) return self->Close();
                         self->ReadHeader();
                       });
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
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  HttpServer::Impl* server_;
  Worker* worker_;
  bool keep_alive_ = true;
  bool in_request_ = false;
  unsigned version_ = 11;
  SteadyClock::time_point started_;
};

void HttpServer::Impl::Accept(Worker* worker) {
  worker->acceptor->async_accept(
      worker->ioc, [this, worker](beast::error_code ec, tcp::socket socket) {
        if (ec) {
          if (ec == asio::error::operation_aborted || stopping.load()) return;
          // EMFILE and friends: keep accepting; the client sees a refused connection.
          return Accept(worker);
        }
        socket.set_option(tcp::no_delay(true), ec);
        auto session = std::make_shared<Session>(std::move(socket), this, worker);
        worker->sessions.remove_if([](const std::weak_ptr<Session>& s) { return s.expired(); });
        worker->sessions.push_back(session);
        session->Start();
        Accept(worker);
      });
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
  for (int i = 0; i < threads; ++i) {
    auto worker = std::make_unique<Worker>();
    worker->acceptor.emplace(worker->ioc);
    tcp::acceptor& acceptor = *worker->acceptor;
    const tcp::endpoint endpoint(address, port);
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) {
      int one = 1;
      if (setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        ec = beast::error_code(errno, boost::system::system_category());
      }
    }
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status::IOError(fmt::format(
          "cannot listen on {}:{}: {}{}", impl->options.host, port, ec.message(),
          ec == asio::error::address_in_use
              ? "; another process uses that port: stop it or pass --port with a free one"
              : ""));
    }
    port = acceptor.local_endpoint().port();  // with port 0, the others join the one chosen
    impl->workers.push_back(std::move(worker));
  }
  if (impl->options.metrics != nullptr) {
    for (size_t i = 0; i <= impl->routes.size(); ++i) {
      impl->latency.push_back(&impl->options.metrics->GetHistogram(
          "granary_http_request_duration_seconds",
          "Time from a whole request read to its response handed to the socket, by path.",
          LatencyBuckets(),
          {{"path", i < impl->routes.size() ? impl->routes[i].path : "unmatched"}}));
    }
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
