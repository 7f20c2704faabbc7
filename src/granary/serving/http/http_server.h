// HttpServer: HTTP/1.1 on Boost.Beast, the transport of the feature server. It knows no domain:
// it parses requests, enforces limits, routes by method and path to handlers from a table, and
// writes what they answer. The handlers (serving/service.h) do the work.
//
// Threading: one worker thread per core (by default), each with its own io_context and its own
// listening socket on the same port (SO_REUSEPORT: the kernel spreads connections), so a
// connection lives on one thread from accept to close and nothing is shared on a request's path.
// A handler runs on the connection's worker thread. It may answer at once or later (after an
// asynchronous store read): `respond` may be called from any thread, exactly once; the response
// is written on the connection's thread. A handler must not block its thread.
//
// Limits: request body size (413), header and body read timeout (408 semantics: the connection is
// closed), idle keep-alive timeout, optional bearer token (401) on every path except those marked
// public. Stop() stops accepting, lets in-flight requests finish (up to a drain timeout), closes
// idle connections and joins the workers.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "granary/common/metrics.h"
#include "granary/common/result.h"

namespace granary::http {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query string
  std::string query;   // after '?', may be empty
  std::string body;
  std::string content_type;
  // The executor of the worker thread the request arrived on: pass it to asynchronous store
  // calls so their completions run on this thread.
  boost::asio::any_io_executor executor;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

// Answers a request; call exactly once, from any thread.
using Respond = std::function<void(HttpResponse)>;
using Handler = std::function<void(HttpRequest& request, Respond respond)>;

struct Route {
  std::string method;
  std::string path;
  Handler handler;
  bool is_public = false;  // served without the bearer token (e.g. /health)
};

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 6566;  // 0: pick a free port (see HttpServer::port())
  int threads = 0;       // 0: one per core
  size_t body_limit_bytes = 1 << 20;
  std::chrono::milliseconds read_timeout{10'000};   // to receive one whole request
  std::chrono::milliseconds idle_timeout{60'000};   // keep-alive connection without a request
  std::chrono::milliseconds drain_timeout{10'000};  // Stop(): in-flight requests may finish
  std::string bearer_token;            // when set, "Authorization: Bearer <token>" is required
  MetricsRegistry* metrics = nullptr;  // requests by path and status, latency; null: none
};

// A JSON error body: {"error": {"status": 404, "code": "not_found", "message": "..."}}.
HttpResponse JsonError(int status, std::string_view message);

// Thread-safe.
class HttpServer {
 public:
  // Binds and starts the workers; errors when the address cannot be bound (in use, bad host).
  static Result<std::unique_ptr<HttpServer>> Start(HttpServerOptions options,
                                                   std::vector<Route> routes);
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The bound port (useful with port 0).
  uint16_t port() const { return port_; }
  // Requests received and not yet answered.
  int64_t in_flight() const;

  // Graceful stop; idempotent. Returns after every worker thread has exited.
  void Stop();

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl, uint16_t port);
  std::unique_ptr<Impl> impl_;
  uint16_t port_;
};

}  // namespace granary::http
