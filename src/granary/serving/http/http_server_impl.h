// HttpServer's insides, shared by http_server.cc (accepting and admitting connections on the
// workers, starting and stopping them) and http_session.cc (one connection's requests: reading,
// admission control, routing, answering). Not an interface: callers include http_server.h.
#pragma once

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "granary/common/strings.h"
#include "granary/common/unique_fd.h"
#include "granary/serving/http/http_server.h"

namespace granary::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

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

// One connection, on its worker's thread: reads each request (the first bytes under the idle
// timeout, the rest under the read timeout), sheds it when the worker is over its limits, routes
// it to its handler and writes the answer; keep-alive and pipelining. Owned by the callbacks in
// flight (shared_from_this); the worker keeps a weak_ptr to close it.
class Session : public std::enable_shared_from_this<Session> {
 public:
  // `shed`: the worker is at its connection limit; the request gets a 503 and the connection
  // closes.
  Session(tcp::socket socket, HttpServer::Impl* server, Worker* worker, bool shed);
  void Start() { ReadHeader(); }

  // On the worker thread: closes the connection if it is waiting for a request.
  void CloseIfIdle();

  // On the worker thread after it stopped: releases the socket.
  void ForceClose();

 private:
  // Waits for the first bytes of the next request under the idle timeout; then the whole
  // request must arrive within the read timeout.
  void ReadHeader();
  void WaitForRequest();

  // Reads what has arrived with the kernel's receive time of it (SO_TIMESTAMPNS, set at accept),
  // so that the request's wait in the socket queue before this worker got to it is known.
  void ReceiveFirstBytes();
  void ReadRequest();
  void OnHeader(beast::error_code ec);
  void ReadBody();
  void OnReadError(beast::error_code ec);
  void Dispatch();
  void Write(int route, HttpResponse response);

  // Appends this request's `wait` and `total` to the handler's Server-Timing (if any).
  void AddServerTiming(bhttp::response<bhttp::string_body>& res) const;
  void CountSent(int route, SteadyClock::time_point handed);
  void CountRequest(int route, int status);
  void Close();

  // The connection no longer counts as open; once, when its socket closes (on the worker thread,
  // while the server is alive: a handler's `respond` may keep the session itself longer).
  void Uncount();

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

}  // namespace granary::http
