// HttpServer: HTTP/1.1 on Boost.Beast, the transport of the feature server. It knows no domain:
// it parses requests, enforces limits, routes by method and path to handlers from a table, and
// writes what they answer. The handlers (serving/service.h) do the work.
//
// Threading: one worker thread per core (by default), each with its own io_context, all
// accepting from one listening socket (each worker holds a duplicate of its descriptor): a
// connection lives on one thread from accept to close and nothing is shared on a request's path.
// The socket is not SO_REUSEPORT, so another process that binds the port gets "address in use"
// instead of silently taking half of the connections.
// A handler runs on the connection's worker thread. It may answer at once or later (after an
// asynchronous store read): `respond` may be called from any thread, exactly once; the response
// is written on the connection's thread. A handler must not block its thread.
//
// Limits: request body size (413); read timeout, from the first byte of a request to its last
// (headers and body: a client that drips bytes is cut there; the connection is closed); idle
// keep-alive timeout (no byte of a next request); optional bearer token (401) on every path
// except those marked public.
//
// Overload (admission control, per worker, so a worker never waits on another): beyond
// `max_connections` open connections a new connection gets a 503 with Retry-After and is closed,
// and beyond that plus a margin it is closed at accept; beyond `max_in_flight` requests received
// and not yet answered a request gets a 503 with Retry-After at once (the connection stays open);
// a request that waited in its socket longer than `max_queue_delay` before the worker read it
// (the kernel's receive timestamp says when it arrived) gets the same 503, at the cost of a
// parse and a short write, so an overloaded worker sheds the requests that queued instead of
// serving every request late. The requests admitted keep their latency and the clients, answered
// at once, do not pile up connections. Out
// of file descriptors (EMFILE), a worker gives up a descriptor it keeps in reserve to accept and
// refuse (503) the connections waiting, and backs off when it cannot, so the accept loop never
// spins; it logs that once per 10 s and counts it in the metrics.
//
// Stop() stops accepting, lets in-flight requests finish (up to a drain timeout), closes idle
// connections and joins the workers.
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
  // From the first byte of a request to its last (headers and body).
  std::chrono::milliseconds read_timeout{10'000};
  // A keep-alive connection waiting for the first byte of its next request.
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds drain_timeout{10'000};  // Stop(): in-flight requests may finish
  // Admission control for the whole server, split evenly between the workers (rounded up);
  // 0: no bound. See the header comment.
  int max_connections = 0;
  int max_in_flight = 0;
  // A request whose first bytes waited longer than this in its socket before the worker read
  // them gets a 503 at once (the worker is behind); 0: no bound.
  std::chrono::milliseconds max_queue_delay{0};
  std::chrono::seconds retry_after{1};  // the Retry-After of a 503 when overloaded
  // "Authorization: Bearer <token>" is required when set (the scheme in any case, RFC 7235).
  std::string bearer_token;
  MetricsRegistry* metrics = nullptr;  // requests by path and status, latency; null: none
  // Every response carries a Server-Timing header (W3C Server Timing; durations in ms) with
  // `wait` (the request's first bytes in its socket before the worker read them) and `total`
  // (from its headers read to its response handed to the socket), after whatever timings the
  // handler put in a Server-Timing header of its own. Off: the handler's header alone, if any.
  bool server_timing = false;
  // Where the server tells the operator about trouble (out of file descriptors); null: nowhere.
  // Called from the worker threads.
  std::function<void(std::string_view)> log;
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

// Whether an Authorization header (or gRPC's `authorization` metadata) is "Bearer <token>": the
// scheme is case-insensitive and may be followed by more than one space (RFC 7235, section 2.1);
// the token is compared exactly, in constant time.
bool BearerMatches(std::string_view authorization, std::string_view token);

}  // namespace granary::http
