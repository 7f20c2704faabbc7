// The feature server over real HTTP on 127.0.0.1: the endpoints, their errors, registry reload
// while serving and concurrent clients, against RocksDB and a real redis-server. (The command,
// signals and a Redis restart are tested end to end in tests/test_serve_*.py.)
#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "granary/common/json.h"
#include "granary/online/redis/redis_store.h"
#include "granary/online/rocksdb/rocksdb_store.h"
#include "granary/serving/http/test_client.h"
#include "granary/serving/http_routes.h"
#include "granary/serving/service.h"
#include "granary/testing/redis_server.h"
#include "granary/testing/serving_definitions.h"

namespace granary {
namespace {

using http::testing::Client;
using testing::kPushDefinitions;
using testing::TestRepo;

std::string Rfc3339(Timestamp t) { return FormatTimestamp(t); }

class FeatureServerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "redis") {
      redis_ = granary::testing::RedisServer::Start().ValueOrDie();
      RedisOnlineStore::Options options;
      options.nodes = {redis_->address()};
      options.project = "shop";
      store_ = RedisOnlineStore::Open(options).ValueOrDie();
    } else {
      store_ = RocksDbOnlineStore::Open(repo_.root() / "data/online", {}).ValueOrDie();
    }
    StartServer(/*server_timing=*/false, &server_, &http_);
  }
  // A feature server over store_ and the repository's registry, and its HTTP server.
  void StartServer(bool server_timing, std::unique_ptr<FeatureServer>* server,
                   std::unique_ptr<http::HttpServer>* http) {
    FeatureServerOptions options;
    options.repo_root = repo_.root();
    options.registry = RegistryLocation::Sqlite(repo_.registry_path());
    options.default_key_ttl = Duration::Days(90);
    options.store_kind = GetParam();
    options.max_entities = 100;
    options.registry_poll_interval = std::chrono::milliseconds(20);
    options.metrics = &metrics_;
    options.server_timing = server_timing;
    *server = FeatureServer::Make(options, store_.get()).ValueOrDie();
    http::HttpServerOptions http_options;
    http_options.port = 0;
    http_options.threads = 2;
    http_options.metrics = &metrics_;
    http_options.server_timing = server_timing;
    *http = http::HttpServer::Start(http_options, HttpRoutes((*server)->endpoints())).ValueOrDie();
  }
  void TearDown() override {
    if (timed_http_) timed_http_->Stop();
    http_->Stop();
    timed_server_.reset();
    server_.reset();
    // A Redis store's connections live on the io_contexts of the workers that used them: the
    // store goes before either HTTP server.
    store_.reset();
    timed_http_.reset();
    http_.reset();
  }

  // Pushes customer rows to the online store through POST /push.
  void PushRows(const std::vector<int64_t>& customers, Timestamp at, double score) {
    std::string ids, times, scores, failures, labels;
    for (size_t i = 0; i < customers.size(); ++i) {
      const char* sep = i ? ", " : "";
      ids += sep + std::to_string(customers[i]);
      times += std::string(sep) + "\"" + Rfc3339(at) + "\"";
      scores += sep + std::to_string(score);
      failures += sep + std::to_string(i);
      labels += std::string(sep) + "[\"l" + std::to_string(i) + "\"]";
    }
    Client client(http_->port());
    auto res = client.Post("/push", R"({"push_source_name": "payments_push", "df": {)"
                                    R"("customer_id": [)" +
                                        ids + R"(], "event_timestamp": [)" + times +
                                        R"(], "score": [)" + scores + R"(], "failures": [)" +
                                        failures + R"(], "labels": [)" + labels + "]}}");
    ASSERT_EQ(res.result_int(), 200) << res.body();
  }

  static boost::json::value Json(const std::string& text) {
    JsonParseOptions options;  // responses write NaN as Python does
    options.allow_non_finite = true;
    auto parsed = ParseJson(text, options);
    EXPECT_TRUE(parsed.ok()) << parsed.status().ToString() << ": " << text;
    boost::json::value doc = parsed.ok() ? std::move(*parsed) : boost::json::value();
    return doc;
  }

  TestRepo repo_{kPushDefinitions};
  MetricsRegistry metrics_;
  std::unique_ptr<granary::testing::RedisServer> redis_;
  std::unique_ptr<OnlineStore> store_;
  std::unique_ptr<FeatureServer> server_;
  std::unique_ptr<http::HttpServer> http_;
  // Started by tests of --server-timing.
  std::unique_ptr<FeatureServer> timed_server_;
  std::unique_ptr<http::HttpServer> timed_http_;
};

TEST(DefaultSplitThreads, HelpersOnlyOnTheCoresTheWorkersLeave) {
  EXPECT_EQ(DefaultSplitThreads(2, 2), 1);  // every core a worker's: never split
  EXPECT_EQ(DefaultSplitThreads(8, 8), 1);
  EXPECT_EQ(DefaultSplitThreads(4, 2), 1);
  EXPECT_EQ(DefaultSplitThreads(2, 8), 3);  // at most one helper per worker
  EXPECT_EQ(DefaultSplitThreads(1, 8), 2);
  EXPECT_EQ(DefaultSplitThreads(4, 6), 3);  // the two cores left
}

TEST_P(FeatureServerTest, PushThenGetOnlineFeaturesInFeastsShape) {
  const Timestamp now = SystemClock::Default().Now();
  PushRows({1001, 1002}, now - Duration::Minutes(5), 0.5);
  PushRows({1003}, now - Duration::Days(2), 0.75);  // older than risk's ttl of 1d
  Client client(http_->port());
  auto res = client.Post("/get-online-features",
                         R"({"features": ["risk:score", "risk:labels"],
                             "entities": {"customer_id": [1001, 1003, 9]}})");
  ASSERT_EQ(res.result_int(), 200) << res.body();
  EXPECT_EQ(res[boost::beast::http::field::content_type], "application/json");
  auto doc = Json(res.body());
  const auto& names = doc.at("metadata").at("feature_names");
  ASSERT_EQ(names.as_array().size(), 3u);
  EXPECT_STREQ(names.at(0).as_string().c_str(), "customer_id");
  EXPECT_STREQ(names.at(1).as_string().c_str(), "score");
  const auto& score = doc.at("results").at(1);
  EXPECT_EQ(score.at("values").at(0).to_number<double>(), 0.5);
  EXPECT_STREQ(score.at("statuses").at(0).as_string().c_str(), "PRESENT");
  EXPECT_STREQ(score.at("statuses").at(1).as_string().c_str(), "OUTSIDE_MAX_AGE");
  EXPECT_TRUE(score.at("values").at(1).is_null());
  EXPECT_STREQ(score.at("statuses").at(2).as_string().c_str(), "NOT_FOUND");
  EXPECT_STREQ(doc.at("results").at(2).at("values").at(0).at(0).as_string().c_str(), "l0");

  // A feature service, and full feature names.
  res = client.Post("/get-online-features",
                    R"({"feature_service": "risk_v1", "full_feature_names": true,
                        "entities": {"customer_id": [1002]}})");
  ASSERT_EQ(res.result_int(), 200) << res.body();
  doc = Json(res.body());
  EXPECT_STREQ(doc.at("metadata").at("feature_names").at(1).as_string().c_str(), "risk__score");
  EXPECT_EQ(doc.at("results").at(2).at("values").at(0).as_int64(),
            1);  // failures of the second row pushed
}

TEST_P(FeatureServerTest, TheCompactFormOverHttpHasTheDefaultFormsValues) {
  const Timestamp now = SystemClock::Default().Now();
  PushRows({1001, 1002}, now - Duration::Minutes(5), 0.5);
  PushRows({1003}, now - Duration::Days(2), 0.75);  // older than risk's ttl of 1d
  Client client(http_->port());
  const std::string request =
      R"({"features": ["risk:score", "risk:labels"], "full_feature_names": true,
          "entities": {"customer_id": [1001, 1002, 1003, 9]})";
  auto full = client.Post("/get-online-features", request + "}");
  auto compact = client.Post("/get-online-features", request + R"(, "include_statuses": false,
                                           "include_event_timestamps": false})");
  ASSERT_EQ(full.result_int(), 200) << full.body();
  ASSERT_EQ(compact.result_int(), 200) << compact.body();
  auto a = Json(full.body()), b = Json(compact.body());
  EXPECT_EQ(a.at("metadata"), b.at("metadata"));
  const auto& results = a.at("results").as_array();
  ASSERT_EQ(b.at("results").as_array().size(), results.size());
  for (size_t i = 0; i < results.size(); ++i) {
    const auto& column = b.at("results").at(i).as_object();
    EXPECT_EQ(column.size(), 1u) << compact.body();  // {"values": [...]} only
    EXPECT_EQ(column.at("values"), results[i].at("values")) << "column " << i;
  }
  EXPECT_LT(compact.body().size(), full.body().size() / 2);
  // An ill-typed field is a 400 naming it.
  auto bad = client.Post("/get-online-features", request + R"(, "include_statuses": "no"})");
  EXPECT_EQ(bad.result_int(), 400);
  EXPECT_NE(bad.body().find("include_statuses: must be true or false, not a string"),
            std::string::npos)
      << bad.body();
}

TEST_P(FeatureServerTest, ServerTimingSaysWhereTheTimeWentAndLeavesTheAnswersBytes) {
  const Timestamp now = SystemClock::Default().Now();
  std::vector<int64_t> customers;
  for (int64_t c = 1000; c < 1040; ++c) customers.push_back(c);
  PushRows(customers, now - Duration::Minutes(5), 0.5);
  StartServer(/*server_timing=*/true, &timed_server_, &timed_http_);
  Client plain(http_->port()), timed(timed_http_->port());
  std::string ids;
  for (int64_t c = 995; c < 1045; ++c) ids += (ids.empty() ? "" : ", ") + std::to_string(c);
  for (const std::string form : {"", R"(, "include_statuses": false)"}) {
    const std::string request = R"({"features": ["risk:score", "risk:labels"], )"
                                R"("entities": {"customer_id": [)" +
                                ids + "]}" + form + "}";
    auto a = plain.Post("/get-online-features", request);
    auto b = timed.Post("/get-online-features", request);
    ASSERT_EQ(a.result_int(), 200) << a.body();
    ASSERT_EQ(b.result_int(), 200) << b.body();
    EXPECT_EQ(a.body(), b.body());  // the same bytes, whether timed or not
    EXPECT_EQ(a.count("Server-Timing"), 0u);
    // "read;dur=R, json;dur=J, wait;dur=W, total;dur=T", milliseconds.
    const std::string header(b["Server-Timing"]);
    std::vector<std::string> names;
    std::map<std::string, double> ms;
    for (size_t at = 0; at < header.size();) {
      size_t end = header.find(", ", at);
      if (end == std::string::npos) end = header.size();
      const std::string metric = header.substr(at, end - at);
      const size_t dur = metric.find(";dur=");
      ASSERT_NE(dur, std::string::npos) << header;
      names.push_back(metric.substr(0, dur));
      ms[names.back()] = std::stod(metric.substr(dur + 5));
      at = end + 2;
    }
    EXPECT_EQ(names, (std::vector<std::string>{"read", "json", "wait", "total"})) << header;
    for (const auto& [name, value] : ms) EXPECT_GE(value, 0) << name << " in " << header;
    // The request's time in the server holds its read and its JSON (each rounded to 1 us).
    EXPECT_GE(ms["total"] + 0.002, ms["read"] + ms["json"]) << header;
  }
  // An error answer has no read to report, only the server's own times.
  auto bad = timed.Post("/get-online-features", R"({"features": ["risk:nope"],
                                                   "entities": {"customer_id": [1]}})");
  EXPECT_EQ(bad.result_int(), 400);
  const std::string header(bad["Server-Timing"]);
  EXPECT_EQ(header.find("read;"), std::string::npos) << header;
  EXPECT_NE(header.find("total;dur="), std::string::npos) << header;
}

TEST_P(FeatureServerTest, BadRequestsAre4xxWithAJsonErrorThatSaysWhere) {
  Client client(http_->port());
  struct Case {
    std::string body;
    int status;
    std::string message_part;
  };
  std::string hundred_and_one = "[0";
  for (int i = 1; i <= 100; ++i) hundred_and_one += "," + std::to_string(i);
  hundred_and_one += "]";
  const std::vector<Case> cases = {
      {"{", 400, "the request is not valid JSON: line 1, column 2"},
      {R"({"features": ["risk:scor"], "entities": {"customer_id": [1]}})", 400,
       "feature view 'risk' has no feature 'scor', did you mean 'score'?"},
      {R"({"features": ["rsk:score"], "entities": {"customer_id": [1]}})", 400,
       "unknown feature view 'rsk' in 'rsk:score', did you mean 'risk'?"},
      {R"({"features": ["risk:score"], "entities": {"customer_id": [1, "abc"]}})", 400,
       "entities.customer_id[1]: the string \\\"abc\\\" is not an int64"},
      {R"({"features": ["risk:score"], "entities": {"customer": [1]}})", 400,
       "entities: 'customer' is not a join key of any entity, did you mean 'customer_id'?"},
      {R"({"features": ["risk:score"], "entities": {}})", 400, "the request has no entities"},
      {R"({})", 400, "the request names no features"},
      {R"({"features": ["risk:score"], "entities": {"customer_id": )" + hundred_and_one + "}}", 400,
       "the request asks for 101 entity rows; the limit is 100 per request"},
      {R"({"push_source_name": "payments_push"})", 400, "unknown request field 'push_source_name'"},
  };
  for (const Case& c : cases) {
    auto res = client.Post("/get-online-features", c.body);
    EXPECT_EQ(res.result_int(), c.status) << c.body << " -> " << res.body();
    EXPECT_NE(res.body().find(c.message_part), std::string::npos) << c.body << " -> " << res.body();
    EXPECT_NE(res.body().find(R"({"error":{"status":400,"code":"invalid_argument","message":)"),
              std::string::npos)
        << res.body();
  }
  auto push = client.Post("/push", R"({"push_source_name": "payments_push",
                                       "df": {"customer_id": [1, "abc"]}})");
  EXPECT_EQ(push.result_int(), 400);
  EXPECT_NE(push.body().find(R"(df.customer_id[1]: expected int64, got \"abc\")"),
            std::string::npos)
      << push.body();
  EXPECT_EQ(client.Get("/nope").result_int(), 404);
  EXPECT_EQ(client.Get("/push").result_int(), 405);
  // The server is still well after all of that.
  EXPECT_EQ(client.Get("/health").result_int(), 200);
}

TEST_P(FeatureServerTest, HealthMetricsAndRegistry) {
  Client client(http_->port());
  auto health = client.Get("/health");
  ASSERT_EQ(health.result_int(), 200) << health.body();
  auto doc = Json(health.body());
  EXPECT_STREQ(doc.at("status").as_string().c_str(), "ok");
  EXPECT_TRUE(doc.at("store").at("reachable").as_bool());
  EXPECT_STREQ(doc.at("store").at("type").as_string().c_str(), GetParam().c_str());
  EXPECT_EQ(doc.at("registry").at("version").as_int64(), 1);
  EXPECT_STREQ(doc.at("registry").at("project").as_string().c_str(), "shop");

  client.Post("/get-online-features",
              R"({"features": ["risk:score"], "entities": {"customer_id": [1, 2]}})");
  client.Post("/get-online-features", "{");
  auto metrics = client.Get("/metrics");
  ASSERT_EQ(metrics.result_int(), 200);
  EXPECT_EQ(metrics[boost::beast::http::field::content_type],
            "text/plain; version=0.0.4; charset=utf-8");
  const std::string& text = metrics.body();
  for (const std::string& line : std::vector<std::string>{
           R"(granary_http_requests_total{path="/get-online-features",code="200"} 1)",
           R"(granary_http_requests_total{path="/get-online-features",code="400"} 1)",
           R"(granary_serving_errors_total{path="/get-online-features",kind="invalid_argument"} 1)",
           R"(granary_serving_entities_per_request_count 1)",
           R"(granary_serving_entities_per_request_sum 2)",
           std::string(R"(granary_online_store_read_seconds_count{store=")") + GetParam() +
               R"("} 1)",
           R"(granary_registry_version 1)",
           // Both answers were sent before this request was read (one keep-alive connection).
           R"(granary_http_response_send_seconds_count{path="/get-online-features"} 2)",
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
  EXPECT_NE(text.find("granary_http_request_duration_seconds_bucket{path=\"/get-online-features\""),
            std::string::npos);

  auto registry = client.Get("/registry");
  ASSERT_EQ(registry.result_int(), 200);
  doc = Json(registry.body());
  EXPECT_STREQ(doc.at("project").as_string().c_str(), "shop");
  EXPECT_EQ(doc.at("version").as_int64(), 1);
  EXPECT_STREQ(doc.at("data_sources").at(1).at("type").as_string().c_str(), "push");
  EXPECT_STREQ(doc.at("data_sources").at(1).at("batch_source").as_string().c_str(), "payments");
  EXPECT_STREQ(doc.at("feature_views").at(0).at("ttl").as_string().c_str(), "1d");
}

TEST_P(FeatureServerTest, AnApplyWhileServingIsPickedUpWithoutARestart) {
  Client client(http_->port());
  const std::string request =
      R"({"features": ["fresh:new_feature"], "entities": {"customer_id": [1]}})";
  auto before = client.Post("/get-online-features", request);
  EXPECT_EQ(before.result_int(), 400);
  std::string text = kPushDefinitions;
  text.insert(text.find("feature_services:"),
              "  - name: fresh\n    entities: [customer]\n    source: payments\n    schema:\n"
              "      - {name: new_feature, type: int64}\n");
  repo_.Apply(text);
  int status = 0;
  for (int i = 0; i < 500 && status != 200; ++i) {  // the poller checks every 20 ms
    status = client.Post("/get-online-features", request).result_int();
    if (status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(status, 200);
  auto health = Json(client.Get("/health").body());
  EXPECT_EQ(health.at("registry").at("version").as_int64(), 2);
}

TEST_P(FeatureServerTest, ConcurrentClientsEachGetTheirOwnAnswers) {
  std::vector<int64_t> customers;
  for (int64_t c = 0; c < 50; ++c) customers.push_back(c);
  PushRows(customers, SystemClock::Default().Now() - Duration::Minutes(1), 2.5);
  constexpr int kClients = 8, kRequests = 50;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&, t] {
      Client client(http_->port());
      for (int i = 0; i < kRequests; ++i) {
        const int64_t c = (t * kRequests + i) % 50;
        auto res = client.Post("/get-online-features",
                               R"({"features": ["risk_counts:failures"], "entities": )"
                               R"({"customer_id": [)" +
                                   std::to_string(c) + "]}}");
        auto doc = Json(res.body());
        if (res.result_int() == 200 && doc.at("results").at(1).at("values").at(0).as_int64() == c &&
            doc.at("results").at(0).at("values").at(0).as_int64() == c) {
          ok.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kClients * kRequests);
}

TEST_P(FeatureServerTest, PushToOfflineAppendsToTheBatchSource) {
  Client client(http_->port());
  auto res = client.Post("/push", R"({"push_source_name": "payments_push", "to": "offline",
      "df": {"customer_id": [7], "event_timestamp": ["2026-01-15T07:00:00Z"], "score": [1.0],
             "failures": [1], "labels": [null]}})");
  ASSERT_EQ(res.result_int(), 200) << res.body();
  auto doc = Json(res.body());
  EXPECT_EQ(doc.at("rows").as_int64(), 1);
  ASSERT_EQ(doc.at("offline").at("files").as_array().size(), 1u);
  EXPECT_TRUE(std::filesystem::exists(repo_.root() /
                                      doc.at("offline").at("files").at(0).as_string().c_str()));
  auto single = client.Post("/push", R"({"push_source_name": "single_push", "to": "offline",
      "df": {"customer_id": [7], "event_timestamp": ["2026-01-15T07:00:00Z"], "score": [1.0]}})");
  EXPECT_EQ(single.result_int(), 400);
  EXPECT_NE(single.body().find("is the single file data/single.parquet"), std::string::npos)
      << single.body();
}

INSTANTIATE_TEST_SUITE_P(Stores, FeatureServerTest, ::testing::Values("rocksdb", "redis"),
                         [](const auto& info) { return info.param; });

// A store that goes down: 503 with a message naming it; health says so too.
TEST(FeatureServer, AStoreThatIsDownIs503) {
  TestRepo repo(kPushDefinitions);
  auto redis = granary::testing::RedisServer::Start().ValueOrDie();
  RedisOnlineStore::Options store_options;
  store_options.nodes = {redis->address()};
  store_options.project = "shop";
  store_options.connect_timeout = Duration::Microseconds(200'000);
  store_options.request_timeout = Duration::Microseconds(200'000);
  auto store = RedisOnlineStore::Open(store_options).ValueOrDie();
  MetricsRegistry metrics;
  FeatureServerOptions options;
  options.repo_root = repo.root();
  options.registry = RegistryLocation::Sqlite(repo.registry_path());
  options.store_kind = "redis";
  options.registry_poll_interval = std::chrono::milliseconds(0);
  options.metrics = &metrics;
  auto server = FeatureServer::Make(options, store.get()).ValueOrDie();
  auto http = http::HttpServer::Start({.port = 0, .threads = 1}, HttpRoutes(server->endpoints()))
                  .ValueOrDie();
  redis->Kill();
  Client client(http->port());
  auto res = client.Post("/get-online-features",
                         R"({"features": ["risk:score"], "entities": {"customer_id": [1]}})");
  EXPECT_EQ(res.result_int(), 503) << res.body();
  EXPECT_NE(res.body().find(R"("code":"unavailable")"), std::string::npos) << res.body();
  EXPECT_NE(res.body().find("the online store (redis at " + redis->address() +
                            ") is unavailable; retry later"),
            std::string::npos)
      << res.body();
  auto health = client.Get("/health");
  EXPECT_EQ(health.result_int(), 503);
  EXPECT_NE(health.body().find(R"("reachable":false)"), std::string::npos) << health.body();
  auto push = client.Post("/push", R"({"push_source_name": "payments_push",
      "df": {"customer_id": [7], "event_timestamp": ["2026-01-15T07:00:00Z"], "score": [1.0],
             "failures": [1], "labels": [null]}})");
  EXPECT_EQ(push.result_int(), 503) << push.body();
  http->Stop();
  server.reset();
  store.reset();
}

}  // namespace
}  // namespace granary
