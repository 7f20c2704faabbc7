#include "granary/serving/http/http_server.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
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
  options.threads = 2;
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

TEST(HttpServer, ABadHostIsAClearError) {
  auto server = HttpServer::Start({.host = "localhost:80", .port = 0}, {Health()});
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.status().message().find("is not an IP address"), std::string::npos);
}

}  // namespace
}  // namespace granary::http
