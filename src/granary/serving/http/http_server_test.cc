#include "granary/serving/http/http_server.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <map>
#include <sstream>
#include <thread>

#include "granary/serving/http/test_client.h"

namespace granary::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

using testing::Client;

Route Echo() {
  return {"POST", "/echo", [](HttpRequest& req, Respond respond) {
            respond({200, "text/plain",
                     req.method + " " + req.path + "?" + req.query + " " + req.body});
          }};
}

Route Health() {
  return {"GET", "/health",
          [](HttpRequest&, Respond respond) {
            respond({200, "text/plain", "ok"});
          },
          /*is_public=*/true};
}

std::unique_ptr<HttpServer> StartServer(HttpServerOptions options, std::vector<Route> routes) {
  options.port = 0;
  if (options.threads == 0) options.threads = 2;
  auto server = HttpServer::Start(std::move(options), std::move(routes));
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  return std::move(server).ValueOrDie();
}

TEST(HttpServer, RoutesByMethodAndPathOverOneKeepAliveConnection) {
  auto server = StartServer({}, {Echo(), Health()});
  Client client(server->port());
  auto a = client.Send(bhttp::verb::post, "/echo?x=1", "hello");
  EXPECT_EQ(a.result_int(), 200);
  EXPECT_EQ(a.body(), "POST /echo?x=1 hello");
  EXPECT_EQ(a[bhttp::field::content_type], "text/plain");
  EXPECT_TRUE(a.keep_alive());
  auto b = client.Send(bhttp::verb::get, "/health");  // same connection
  EXPECT_EQ(b.result_int(), 200);
  EXPECT_EQ(b.body(), "ok");
}

TEST(HttpServer, UnknownPathIs404AndWrongMethodIs405WithAllow) {
  auto server = StartServer({}, {Echo(), Health()});
  Client client(server->port());
  auto missing = client.Send(bhttp::verb::get, "/nope");
  EXPECT_EQ(missing.result_int(), 404);
  EXPECT_EQ(missing[bhttp::field::content_type], "application/json");
  EXPECT_NE(missing.body().find(R"("code":"not_found")"), std::string::npos) << missing.body();
  EXPECT_NE(missing.body().find("no endpoint /nope"), std::string::npos);
  auto wrong = client.Send(bhttp::verb::get, "/echo");
  EXPECT_EQ(wrong.result_int(), 405);
  EXPECT_EQ(wrong[bhttp::field::allow], "POST");
}

TEST(HttpServer, ABodyOverTheLimitIs413AndTheConnectionCloses) {
  auto server = StartServer({.body_limit_bytes = 1024}, {Echo()});
  Client client(server->port());
  auto res = client.Send(bhttp::verb::post, "/echo", std::string(4096, 'x'));
  EXPECT_EQ(res.result_int(), 413);
  EXPECT_NE(res.body().find("larger than the limit of 1024 bytes"), std::string::npos);
  EXPECT_TRUE(client.ClosedByServer());
}

TEST(HttpServer, MalformedHttpIs400) {
  auto server = StartServer({}, {Echo()});
  Client client(server->port());
  client.SendRaw("POST /echo HTTP/1.1\r\nContent-Length: banana\r\n\r\n");
  auto res = client.Read();
  EXPECT_EQ(res.result_int(), 400);
  EXPECT_NE(res.body().find("malformed HTTP request"), std::string::npos) << res.body();
}

TEST(HttpServer, BearerTokenIsRequiredExceptOnPublicRoutes) {
  auto server = StartServer({.bearer_token = "s3cret"}, {Echo(), Health()});
  Client client(server->port());
  auto none = client.Send(bhttp::verb::post, "/echo", "x");
  EXPECT_EQ(none.result_int(), 401);
  EXPECT_EQ(none[bhttp::field::www_authenticate], "Bearer");
  auto wrong = client.Send(bhttp::verb::post, "/echo", "x", {{"Authorization", "Bearer s3cres"}});
  EXPECT_EQ(wrong.result_int(), 401);
  auto right = client.Send(bhttp::verb::post, "/echo", "x", {{"Authorization", "Bearer s3cret"}});
  EXPECT_EQ(right.result_int(), 200);
  EXPECT_EQ(client.Send(bhttp::verb::get, "/health").result_int(), 200);
}

TEST(HttpServer, TheBearerSchemeIsCaseInsensitive) {
  auto server = StartServer({.bearer_token = "s3cret"}, {Echo()});
  Client client(server->port());
  for (const char* header : {"bearer s3cret", "BEARER s3cret", "Bearer   s3cret"}) {
    EXPECT_EQ(
        client.Send(bhttp::verb::post, "/echo", "x", {{"Authorization", header}}).result_int(), 200)
        << header;
  }
  for (const char* header : {"Bearers3cret", "Basic s3cret", "bearer S3CRET", "bearer"}) {
    EXPECT_EQ(
        client.Send(bhttp::verb::post, "/echo", "x", {{"Authorization", header}}).result_int(), 401)
        << header;
  }
}

TEST(HttpServer, ExpectContinueGetsAnInterimResponse) {
  auto server = StartServer({}, {Echo()});
  Client client(server->port());
  client.SendRaw(
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  auto interim = client.Read();
  EXPECT_EQ(interim.result_int(), 100);
  client.SendRaw("hello");
  auto res = client.Read();
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "POST /echo? hello");
}

TEST(HttpServer, AHandlerMayAnswerLaterFromAnotherThread) {
  std::vector<std::thread> helpers;
  std::mutex mu;
  Route later{"POST", "/later", [&](HttpRequest& req, Respond respond) {
                std::lock_guard lock(mu);
                helpers.emplace_back([respond = std::move(respond), body = req.body] {
                  std::this_thread::sleep_for(std::chrono::milliseconds(20));
                  respond({200, "text/plain", "late " + body});
                  respond({500, "text/plain", "ignored second answer"});
                });
              }};
  auto server = StartServer({}, {later});
  Client client(server->port());
  EXPECT_EQ(client.Send(bhttp::verb::post, "/later", "a").body(), "late a");
  EXPECT_EQ(client.Send(bhttp::verb::post, "/later", "b").body(), "late b");
  std::lock_guard lock(mu);
  for (auto& t : helpers) t.join();
}

TEST(HttpServer, HandlersGetTheExecutorOfTheirWorkerThread) {
  Route on_worker{"GET", "/post", [](HttpRequest& req, Respond respond) {
                    const auto handler_thread = std::this_thread::get_id();
                    boost::asio::post(req.executor, [respond, handler_thread] {
                      const bool same = std::this_thread::get_id() == handler_thread;
                      respond({200, "text/plain", same ? "same thread" : "other thread"});
                    });
                  }};
  auto server = StartServer({}, {on_worker});
  Client client(server->port());
  EXPECT_EQ(client.Send(bhttp::verb::get, "/post").body(), "same thread");
}

TEST(HttpServer, AThrowingHandlerGives500AndTheServerKeepsServing) {
  Route bad{"GET", "/bad", [](HttpRequest&, Respond) { throw std::runtime_error("boom"); }};
  auto server = StartServer({}, {bad, Health()});
  Client client(server->port());
  auto res = client.Send(bhttp::verb::get, "/bad");
  EXPECT_EQ(res.result_int(), 500);
  EXPECT_NE(res.body().find("boom"), std::string::npos);
  EXPECT_EQ(client.Send(bhttp::verb::get, "/health").result_int(), 200);
}

TEST(HttpServer, StopLetsInFlightRequestsFinishAndClosesIdleConnections) {
  std::thread helper;
  std::atomic<bool> handler_started{false};
  Route slow{"POST", "/slow", [&](HttpRequest&, Respond respond) {
               handler_started = true;
               helper = std::thread([respond = std::move(respond)] {
                 std::this_thread::sleep_for(std::chrono::milliseconds(200));
                 respond({200, "text/plain", "finished"});
               });
             }};
  auto server = StartServer({}, {slow, Health()});
  Client idle(server->port());
  EXPECT_EQ(idle.Send(bhttp::verb::get, "/health").result_int(), 200);

  Client busy(server->port());
  bhttp::response<bhttp::string_body> res;
  std::thread client_thread([&] { res = busy.Send(bhttp::verb::post, "/slow", "x"); });
  while (!handler_started) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  server->Stop();  // returns after the slow request was answered
  client_thread.join();
  helper.join();
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "finished");
  EXPECT_FALSE(res.keep_alive());  // told to close: the server is stopping
  EXPECT_TRUE(idle.ClosedByServer());
  EXPECT_EQ(server->in_flight(), 0);
}

TEST(HttpServer, AnIdleConnectionIsClosedAfterTheIdleTimeout) {
  auto server = StartServer({.idle_timeout = std::chrono::milliseconds(100)}, {Health()});
  Client client(server->port());
  EXPECT_EQ(client.Send(bhttp::verb::get, "/health").result_int(), 200);
  EXPECT_TRUE(client.ClosedByServer());  // blocks until the server gives up on it
}

TEST(HttpServer, TheReadTimeoutBoundsAClientDrippingItsHeaders) {
  // The idle timeout (a minute) is not what cuts a request that has begun: the read timeout is.
  auto server = StartServer({.read_timeout = std::chrono::milliseconds(200),
                             .idle_timeout = std::chrono::milliseconds(60'000)},
                            {Health()});
  Client client(server->port());
  client.SendRaw("GET /health HTTP/1.1\r\n");
  // A header byte every 20 ms, up to 1,000 of them (20 s): the server closes the connection
  // long before, and a write then fails.
  bool cut = false;
  for (int i = 0; i < 1000 && !cut; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    cut = !client.TrySendRaw("X");
  }
  EXPECT_TRUE(cut) << "the server kept a connection whose headers never ended";
}

TEST(HttpServer, AKeepAliveConnectionMayIdleLongerThanTheReadTimeout) {
  auto server = StartServer({.read_timeout = std::chrono::milliseconds(50),
                             .idle_timeout = std::chrono::milliseconds(60'000)},
                            {Health()});
  Client client(server->port());
  EXPECT_EQ(client.Send(bhttp::verb::get, "/health").result_int(), 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // six read timeouts, idle
  EXPECT_EQ(client.Send(bhttp::verb::get, "/health").result_int(), 200);
}

// A route whose answers wait until the test releases them.
struct HeldAnswers {
  std::mutex mu;
  std::vector<Respond> held;
  Route route{"POST", "/held", [this](HttpRequest&, Respond respond) {
                std::lock_guard lock(mu);
                held.push_back(std::move(respond));
              }};
  size_t count() {
    std::lock_guard lock(mu);
    return held.size();
  }
  void ReleaseAll() {
    std::lock_guard lock(mu);
    for (auto& r : held) r({200, "text/plain", "released"});
    held.clear();
  }
};

TEST(HttpServer, BeyondTheInFlightLimitARequestGets503WithRetryAfterAtOnce) {
  MetricsRegistry metrics;
  HeldAnswers answers;
  auto server = StartServer({.threads = 1, .max_in_flight = 2, .metrics = &metrics},
                            {answers.route, Health()});
  std::vector<std::unique_ptr<Client>> holders;
  std::vector<std::thread> threads;
  std::vector<bhttp::response<bhttp::string_body>> held_responses(2);
  // Every client exists before a thread starts, and each thread gets its own: a push_back that
  // grows `holders` while a thread reads it would be a race (the test's, not the server's).
  for (int i = 0; i < 2; ++i) holders.push_back(std::make_unique<Client>(server->port()));
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([client = holders[i].get(), response = &held_responses[i]] {
      *response = client->Send(bhttp::verb::post, "/held");
    });
  }
  while (answers.count() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  Client late(server->port());
  auto res = late.Send(bhttp::verb::get, "/health");
  EXPECT_EQ(res.result_int(), 503);
  EXPECT_EQ(res[bhttp::field::retry_after], "1");
  EXPECT_NE(res.body().find("the server is overloaded: 2 requests in flight on this worker "
                            "(--max-in-flight 2); retry after 1 s"),
            std::string::npos)
      << res.body();
  EXPECT_TRUE(res.keep_alive());  // the connection stays: a retry may use it
  answers.ReleaseAll();
  for (auto& t : threads) t.join();
  for (auto& r : held_responses) EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(late.Send(bhttp::verb::get, "/health").result_int(), 200);
  EXPECT_NE(metrics.Render().find(R"(granary_http_shed_requests_total{limit="in_flight"} 1)"),
            std::string::npos)
      << metrics.Render();
}

TEST(HttpServer, BeyondTheConnectionLimitANewConnectionGets503AndIsClosed) {
  MetricsRegistry metrics;
  auto server = StartServer({.threads = 1, .max_connections = 2, .metrics = &metrics}, {Health()});
  std::vector<std::unique_ptr<Client>> open;
  for (int i = 0; i < 2; ++i) {
    open.push_back(std::make_unique<Client>(server->port()));
    EXPECT_EQ(open.back()->Send(bhttp::verb::get, "/health").result_int(), 200);
  }
  Client third(server->port());
  auto refused = third.Send(bhttp::verb::get, "/health");
  EXPECT_EQ(refused.result_int(), 503);
  EXPECT_EQ(refused[bhttp::field::retry_after], "1");
  EXPECT_FALSE(refused.keep_alive());
  EXPECT_TRUE(third.ClosedByServer());
  EXPECT_NE(refused.body().find("2 connections open on this worker (--max-connections 2)"),
            std::string::npos)
      << refused.body();
  for (auto& client : open) {
    EXPECT_EQ(client->Send(bhttp::verb::get, "/health").result_int(), 200);
  }
  const std::string text = metrics.Render();
  EXPECT_NE(text.find(R"(granary_http_shed_requests_total{limit="connections"} 1)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("granary_http_open_connections 2"), std::string::npos) << text;
  // Once the held connections close, a new one is served (the server sees the close a moment
  // later: a few tries).
  open.clear();
  int status = 0;
  for (int i = 0; i < 200 && status != 200; ++i) {
    Client again(server->port());
    status = again.Send(bhttp::verb::get, "/health").result_int();
    if (status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(status, 200);
}

TEST(HttpServer, FarBeyondTheConnectionLimitANewConnectionIsClosedAtAccept) {
  MetricsRegistry metrics;
  auto server = StartServer({.threads = 1, .max_connections = 1, .metrics = &metrics}, {Health()});
  // One served, then up to the margin (16) connections that would get a 503 once they send a
  // request; they send none. The next ones are closed at once.
  std::vector<std::unique_ptr<Client>> open;
  open.push_back(std::make_unique<Client>(server->port()));
  EXPECT_EQ(open.back()->Send(bhttp::verb::get, "/health").result_int(), 200);
  // The kernel completes the connections before the server's worker accepts them, which on a
  // loaded machine can be well after this loop: open more than the margin, then wait for the
  // worker to close one at accept.
  for (int i = 0; i < 40; ++i) open.push_back(std::make_unique<Client>(server->port()));
  bool closed_at_accept = false;
  for (int wait = 0; wait < 1000 && !closed_at_accept; ++wait) {
    closed_at_accept = metrics.Render().find(
                           R"(granary_http_refused_connections_total{reason="connection_limit"} )"
                           "0") == std::string::npos;
    if (!closed_at_accept) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(closed_at_accept) << metrics.Render();
  EXPECT_TRUE(open.back()->ClosedByServer());
  EXPECT_EQ(open.front()->Send(bhttp::verb::get, "/health").result_int(), 200);
}

TEST(HttpServer, ARequestThatWaitedLongerThanTheMaxQueueDelayGets503) {
  MetricsRegistry metrics;
  std::atomic<bool> blocking{false};
  // A handler that holds its worker (handlers must not block; this one plays an overloaded
  // worker), so the next request waits in its socket.
  Route busy{"POST", "/busy", [&](HttpRequest&, Respond respond) {
               blocking = true;
               std::this_thread::sleep_for(std::chrono::milliseconds(300));
               respond({200, "text/plain", "done"});
             }};
  auto server = StartServer(
      {.threads = 1, .max_queue_delay = std::chrono::milliseconds(50), .metrics = &metrics},
      {busy, Health()});
  Client waiting(server->port());
  EXPECT_EQ(waiting.Send(bhttp::verb::get, "/health").result_int(), 200);  // connected, served
  Client holder(server->port());
  std::thread hold([&] { EXPECT_EQ(holder.Send(bhttp::verb::post, "/busy").body(), "done"); });
  while (!blocking) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto res = waiting.Send(bhttp::verb::get, "/health");  // read 300 ms later at the earliest
  hold.join();
  EXPECT_EQ(res.result_int(), 503);
  EXPECT_EQ(res[bhttp::field::retry_after], "1");
  EXPECT_NE(res.body().find("for this worker (--max-queue-delay 50 ms); retry after 1 s"),
            std::string::npos)
      << res.body();
  EXPECT_TRUE(res.keep_alive());
  EXPECT_EQ(waiting.Send(bhttp::verb::get, "/health").result_int(), 200);  // not behind now
  EXPECT_NE(metrics.Render().find(R"(granary_http_shed_requests_total{limit="queue_delay"} 1)"),
            std::string::npos)
      << metrics.Render();
}

TEST(HttpServer, NewConnectionsGoToTheWorkerWithFewest) {
  // Each connection stays on the worker that admitted it; its handler runs there.
  Route whoami{"GET", "/whoami", [](HttpRequest&, Respond respond) {
                 std::ostringstream id;
                 id << std::this_thread::get_id();
                 respond({200, "text/plain", id.str()});
               }};
  auto server = StartServer({.threads = 2}, {whoami});
  std::vector<std::unique_ptr<Client>> open;
  std::map<std::string, int> per_worker;
  for (int i = 0; i < 20; ++i) {
    open.push_back(std::make_unique<Client>(server->port()));
    ++per_worker[open.back()->Send(bhttp::verb::get, "/whoami").body()];
  }
  ASSERT_EQ(per_worker.size(), 2u);
  for (const auto& [thread, count] : per_worker) {
    EXPECT_GE(count, 8) << "connections by worker thread: " << thread << " has " << count;
  }
}

TEST(HttpServer, CountsRequestsByPathAndStatusInMetrics) {
  MetricsRegistry metrics;
  auto server = StartServer({.metrics = &metrics}, {Echo(), Health()});
  Client client(server->port());
  client.Send(bhttp::verb::get, "/health");
  client.Send(bhttp::verb::get, "/health");
  client.Send(bhttp::verb::get, "/nope");
  const std::string text = metrics.Render();
  EXPECT_NE(text.find(R"(granary_http_requests_total{path="/health",code="200"} 2)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(granary_http_requests_total{path="unmatched",code="404"} 1)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(granary_http_request_duration_seconds_count{path="/health"} 2)"),
            std::string::npos)
      << text;
}

// "a;dur=1.5, b;dur=2" as {a: 1.5, b: 2}; the metric names in order in *names.
std::map<std::string, double> ParseServerTiming(std::string_view header,
                                                std::vector<std::string>* names) {
  std::map<std::string, double> out;
  std::istringstream in{std::string(header)};
  std::string metric;
  while (std::getline(in, metric, ',')) {
    while (!metric.empty() && metric.front() == ' ') metric.erase(0, 1);
    const size_t dur = metric.find(";dur=");
    EXPECT_NE(dur, std::string::npos) << header;
    if (dur == std::string::npos) continue;
    names->push_back(metric.substr(0, dur));
    out[names->back()] = std::stod(metric.substr(dur + 5));
  }
  return out;
}

TEST(HttpServer, ServerTimingAddsTheWaitAndTotalToEveryAnswerAfterTheHandlers) {
  Route timed = {"GET", "/timed", [](HttpRequest&, Respond respond) {
                   HttpResponse r{200, "text/plain", "timed", {}};
                   r.headers.emplace_back("Server-Timing", "app;dur=1.250");
                   respond(std::move(r));
                 }};
  auto server = StartServer({.server_timing = true}, {Echo(), timed});
  Client client(server->port());
  auto echo = client.Send(bhttp::verb::post, "/echo", "hello");
  EXPECT_EQ(echo.body(), "POST /echo? hello");
  std::vector<std::string> names;
  auto timing = ParseServerTiming(echo["Server-Timing"], &names);
  EXPECT_EQ(names, (std::vector<std::string>{"wait", "total"})) << echo["Server-Timing"];
  EXPECT_GE(timing["wait"], 0);
  EXPECT_GE(timing["total"], 0);

  names.clear();
  auto merged = client.Get("/timed");
  timing = ParseServerTiming(merged["Server-Timing"], &names);
  EXPECT_EQ(names, (std::vector<std::string>{"app", "wait", "total"})) << merged["Server-Timing"];
  EXPECT_EQ(timing["app"], 1.25);
  // Errors the server answers itself carry it too.
  auto missing = client.Get("/nope");
  EXPECT_EQ(missing.result_int(), 404);
  EXPECT_NE(missing["Server-Timing"].find("total;dur="), std::string_view::npos);
}

TEST(HttpServer, WithoutServerTimingOnlyTheHandlersOwnHeaderIsSent) {
  Route timed = {"GET", "/timed", [](HttpRequest&, Respond respond) {
                   HttpResponse r{200, "text/plain", "timed", {}};
                   r.headers.emplace_back("Server-Timing", "app;dur=1.250");
                   respond(std::move(r));
                 }};
  auto server = StartServer({}, {Echo(), timed});
  Client client(server->port());
  auto echo = client.Send(bhttp::verb::post, "/echo", "hello");
  EXPECT_EQ(echo.count("Server-Timing"), 0u);
  EXPECT_EQ(client.Get("/timed")["Server-Timing"], "app;dur=1.250");
}

TEST(HttpServer, APortInUseIsAClearError) {
  asio::io_context ioc;
  tcp::acceptor taken(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const uint16_t port = taken.local_endpoint().port();
  auto server = HttpServer::Start({.port = port, .threads = 1}, {Health()});
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), StatusCode::kIOError);
  EXPECT_NE(server.status().message().find("pass --port with a free one"), std::string::npos)
      << server.status().message();
}

TEST(HttpServer, ASecondServerOnTheSamePortGetsAddressInUse) {
  auto first = StartServer({}, {Health()});  // two workers accepting on the port
  auto second = HttpServer::Start({.port = first->port(), .threads = 2}, {Health()});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kIOError);
  EXPECT_NE(
      second.status().message().find(fmt::format(
          "another process (perhaps another granary serve) listens on port {}", first->port())),
      std::string::npos)
      << second.status().message();
  Client client(first->port());
  EXPECT_EQ(client.Send(bhttp::verb::get, "/health").result_int(), 200);
}

TEST(HttpServer, ABadHostIsAClearError) {
  auto server = HttpServer::Start({.host = "localhost:80", .port = 0}, {Health()});
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.status().message().find("is not an IP address"), std::string::npos);
}

}  // namespace
}  // namespace granary::http
