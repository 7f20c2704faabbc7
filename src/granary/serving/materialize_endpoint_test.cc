// POST /materialize-incremental and /materialize over real HTTP on 127.0.0.1, against RocksDB
// and a real redis-server: a run through the server's open store, its report, the features then
// served, a run handed to the server by MaterializeThroughServer as the CLI and SDK hand it,
// 409 while a run (of this server or another process) holds the repository lock, bad bodies,
// the materialization metrics on GET /metrics, and cancellation on shutdown.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "granary/common/json.h"
#include "granary/materialize/repository_lock.h"
#include "granary/serving/http/test_client.h"
#include "granary/serving/http_routes.h"
#include "granary/serving/materialize_handoff.h"
#include "granary/serving/materialize_report.h"
#include "granary/serving/service.h"
#include "granary/testing/materialize_repository.h"

namespace granary {
namespace {

using http::testing::Client;
using testing::At;
using testing::TestRepo;

boost::json::value Json(const std::string& text) {
  JsonParseOptions options;  // responses write NaN as Python does
  options.allow_non_finite = true;
  auto parsed = ParseJson(text, options);
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString() << ": " << text;
  boost::json::value doc = parsed.ok() ? std::move(*parsed) : boost::json::value();
  return doc;
}

class MaterializeEndpointTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    repo_ = TestRepo::Make(GetParam());
    repo_->WriteRows("rows", {{1, At("2026-11-24T08:00:00Z"), {}, 0.5, 3},
                              {2, At("2026-11-24T09:00:00Z"), {}, 0.25, 4},
                              {1, At("2026-11-24T07:00:00Z"), {}, 0.75, 5}});
  }
  void TearDown() override { Stop(); }

  // Starts the server; `after_write` (may be empty) runs after each write of a run.
  void Start(std::function<void(const std::string&, const WriteStats&)> after_write = {}) {
    FeatureServerOptions options;
    options.repo_root = repo_->config.root;
    options.registry = repo_->config.Registry();
    options.default_key_ttl = repo_->config.online_store.key_ttl;
    options.store_kind = GetParam();
    options.registry_poll_interval = std::chrono::milliseconds(20);
    options.metrics = &metrics_;
    options.clock = &repo_->clock;
    options.repository = repo_->config;
    options.materialize.write_threads = 2;
    options.materialize.after_write = std::move(after_write);
    server_ = FeatureServer::Make(options, repo_->store()).ValueOrDie();
    http::HttpServerOptions http_options;
    http_options.port = 0;
    // One worker: a request that waited on the worker for a run would stall every other one.
    http_options.threads = 1;
    http_options.metrics = &metrics_;
    http_ = http::HttpServer::Start(http_options, HttpRoutes(server_->endpoints())).ValueOrDie();
  }
  void Stop() {
    if (server_ != nullptr) server_->CancelBackgroundWork();
    if (http_ != nullptr) http_->Stop();
    server_.reset();
    // The store before the workers' io_contexts: its Redis connections live on them.
    if (http_ != nullptr) repo_->CloseStore();
    http_.reset();
  }

  // The score of customer 1 and 2 as served ("NOT_FOUND" when absent).
  std::vector<std::string> ServedScores() {
    Client client(http_->port());
    auto res = client.Post("/get-online-features",
                           R"({"features": ["risk:score"], "entities": {"customer_id": [1, 2]}})");
    EXPECT_EQ(res.result_int(), 200) << res.body();
    auto doc = Json(res.body());
    std::vector<std::string> out;
    const auto& score = doc.at("results").at(1);
    for (size_t i = 0; i < score.at("values").as_array().size(); ++i) {
      out.push_back(score.at("values").at(i).is_null()
                        ? score.at("statuses").at(i).as_string().c_str()
                        : std::to_string(score.at("values").at(i).to_number<double>()));
    }
    return out;
  }

  std::unique_ptr<TestRepo> repo_;
  MetricsRegistry metrics_;
  std::unique_ptr<FeatureServer> server_;
  std::unique_ptr<http::HttpServer> http_;
};

TEST_P(MaterializeEndpointTest, WaitAnswersTheReportAndTheFeaturesAreThenServed) {
  Start();
  EXPECT_EQ(ServedScores(), (std::vector<std::string>{"NOT_FOUND", "NOT_FOUND"}));
  Client client(http_->port());
  auto res = client.Post("/materialize-incremental",
                         R"({"end": "2026-11-25T10:00:00Z", "views": ["risk"], "wait": true})");
  ASSERT_EQ(res.result_int(), 200) << res.body();
  auto doc = Json(res.body());
  EXPECT_STREQ(doc.at("status").as_string().c_str(), "succeeded");
  EXPECT_STREQ(doc.at("end").as_string().c_str(), "2026-11-25T10:00:00Z");
  ASSERT_EQ(doc.at("views").as_array().size(), 1u);
  const auto& view = doc.at("views").at(0);
  EXPECT_STREQ(view.at("view").as_string().c_str(), "risk");
  EXPECT_STREQ(view.at("status").as_string().c_str(), "succeeded");
  EXPECT_EQ(view.at("rows_scanned").as_int64(), 3);
  EXPECT_EQ(view.at("entities").as_int64(), 2);
  EXPECT_EQ(view.at("entities_written").as_int64(), 2);
  EXPECT_EQ(view.at("entities_skipped").as_int64(), 0);
  EXPECT_STREQ(view.at("watermark_after").as_string().c_str(), "2026-11-25T10:00:00Z");
  EXPECT_GT(view.at("run_id").as_int64(), 0);
  EXPECT_EQ(repo_->Watermark(), At("2026-11-25T10:00:00Z"));
  EXPECT_EQ(repo_->Registry()->Runs("risk", 1).ValueOrDie().at(0).trigger, "server");
  EXPECT_EQ(ServedScores(), (std::vector<std::string>{"0.500000", "0.250000"}));

  // The run's counters and the registry's state, in the server's one registry.
  res = client.Get("/metrics");
  ASSERT_EQ(res.result_int(), 200);
  for (const char* series :
       {"granary_materialize_runs_total{view=\"risk\",result=\"succeeded\"} 1",
        "granary_materialize_entities_written_total{view=\"risk\"} 2",
        "granary_materialize_watermark_timestamp_seconds{view=\"risk\"} ",
        "granary_materialize_running{view=\"risk\"} 0", "granary_materialize_state_up 1",
        "granary_http_requests_total{path=\"/materialize-incremental\",code=\"200\"} 1"}) {
    EXPECT_NE(res.body().find(series), std::string::npos) << series << "\n" << res.body();
  }

  // Again, with nothing new, in Feast's words (which wait by default): up to date, nothing read.
  res = client.Post("/materialize-incremental",
                    R"({"end_ts": "2026-11-25T10:00:00Z", "feature_views": ["risk"]})");
  ASSERT_EQ(res.result_int(), 200) << res.body();
  EXPECT_STREQ(Json(res.body()).at("views").at(0).at("status").as_string().c_str(), "up_to_date");
}

// GET /health keeps its verdict on the online data for health_check_max_age (1 s, by the server's
// clock): probes within it cost no check, data the store lost shows as "degraded" once it has
// passed, and a run of this server drops the verdict at once.
TEST_P(MaterializeEndpointTest, HealthShowsLostDataWithinTheVerdictsMaxAge) {
  Start();
  Client client(http_->port());
  auto health = [&client] {
    auto res = client.Get("/health");
    EXPECT_EQ(res.result_int(), 200) << res.body();
    return Json(res.body());
  };
  auto checks = [&client] {
    const std::string text = client.Get("/metrics").body();
    const std::string series = "\ngranary_health_online_data_checks_total ";
    const size_t at = text.find(series);
    return at == std::string::npos ? -1 : std::stol(text.substr(at + series.size()));
  };
  auto res = client.Post("/materialize-incremental",
                         R"({"end": "2026-11-25T10:00:00Z", "views": ["risk"], "wait": true})");
  ASSERT_EQ(res.result_int(), 200) << res.body();
  auto doc = health();
  EXPECT_STREQ(doc.at("status").as_string().c_str(), "ok");
  EXPECT_TRUE(doc.at("online_data").at("checked").as_bool());
  EXPECT_TRUE(doc.at("online_data").at("lost").as_array().empty());
  ASSERT_EQ(checks(), 1);

  // The store loses everything, the view markers with it. Within the max age, the probes reuse
  // the verdict: no check runs, and the loss does not show yet.
  ASSERT_TRUE(repo_->store()->DeleteAll().ok());
  repo_->clock.Advance(Duration::Microseconds(999'999));
  for (int i = 0; i < 20; ++i) {
    EXPECT_STREQ(health().at("status").as_string().c_str(), "ok");
  }
  EXPECT_EQ(checks(), 1);

  // Once it has passed, the next probe checks, and says which view the store lost, and where.
  repo_->clock.Advance(Duration::Microseconds(1));
  doc = health();
  EXPECT_STREQ(doc.at("status").as_string().c_str(), "degraded");
  const auto& lost = doc.at("online_data").at("lost").as_array();
  ASSERT_EQ(lost.size(), 1u) << doc;
  EXPECT_STREQ(lost.at(0).at("view").as_string().c_str(), "risk");
  EXPECT_EQ(lost.at(0).at("shards").as_array().size(), 1u);
  EXPECT_NE(std::string(lost.at(0).at("reason").as_string().c_str()).find("no marker on "),
            std::string::npos)
      << doc;
  EXPECT_EQ(checks(), 2);
  EXPECT_STREQ(health().at("status").as_string().c_str(), "degraded");  // kept, too
  EXPECT_EQ(checks(), 2);

  // A run of this server reloads the view: the next probe checks again, at the same instant.
  res = client.Post("/materialize-incremental",
                    R"({"end": "2026-11-25T10:00:00Z", "views": ["risk"], "wait": true})");
  ASSERT_EQ(res.result_int(), 200) << res.body();
  EXPECT_STREQ(health().at("status").as_string().c_str(), "ok");
  EXPECT_EQ(checks(), 3);
  EXPECT_EQ(ServedScores(), (std::vector<std::string>{"0.500000", "0.250000"}));
}

// Probes from several clients at once while the verdict is stale: each is answered, by one
// check or by the verdict it left (the waiters of OnlineDataHealthCache, under TSan in CI).
TEST_P(MaterializeEndpointTest, ConcurrentHealthProbesAreAllAnswered) {
  Start();
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  constexpr int kClients = 4;
  constexpr int kProbes = 25;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([this, &ok] {
      Client client(http_->port());
      for (int i = 0; i < kProbes; ++i) {
        auto res = client.Get("/health");
        if (res.result_int() == 200 && res.body().find(R"("status":"ok")") != std::string::npos) {
          ok.fetch_add(1);
        }
        repo_->clock.Advance(Duration::Microseconds(200'000));  // a new check every few probes
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), kClients * kProbes);
}

TEST_P(MaterializeEndpointTest, AnEmptyBodyStartsARunOfEveryViewUpToNowAndAnswers202) {
  Start();
  Client client(http_->port());
  auto res = client.Send(boost::beast::http::verb::post, "/materialize-incremental");
  ASSERT_EQ(res.result_int(), 202) << res.body();
  auto doc = Json(res.body());
  EXPECT_STREQ(doc.at("status").as_string().c_str(), "started");
  EXPECT_STREQ(doc.at("end").as_string().c_str(), FormatTimestamp(repo_->clock.Now()).c_str());
  ASSERT_EQ(doc.at("views").as_array().size(), 1u);
  EXPECT_STREQ(doc.at("views").at(0).as_string().c_str(), "risk");
  // The run goes on after the answer; its features appear when it is done.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (ServedScores().at(0) == "NOT_FOUND" && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(ServedScores(), (std::vector<std::string>{"0.500000", "0.250000"}));
}

TEST_P(MaterializeEndpointTest, EndNowIsTheServersClockAsOnTheCommandLine) {
  Start();
  Client client(http_->port());
  auto res = client.Post("/materialize-incremental", R"({"end": "now", "wait": true})");
  ASSERT_EQ(res.result_int(), 200) << res.body();
  auto doc = Json(res.body());
  EXPECT_STREQ(doc.at("end").as_string().c_str(), FormatTimestamp(repo_->clock.Now()).c_str());
  EXPECT_EQ(ServedScores(), (std::vector<std::string>{"0.500000", "0.250000"}));
  // Feast's name takes it too; anything else still says both forms.
  res = client.Post("/materialize-incremental", R"({"end_ts": "now"})");
  EXPECT_EQ(res.result_int(), 200) << res.body();
  res = client.Post("/materialize-incremental", R"({"end": "nowish"})");
  ASSERT_EQ(res.result_int(), 400) << res.body();
  EXPECT_NE(res.body().find("or write 'now'"), std::string::npos) << res.body();
}

TEST_P(MaterializeEndpointTest, ASecondRequestWhileARunIsInProgressIs409AndWorkersStayFree) {
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> first{true};
  Start([&](const std::string&, const WriteStats&) {
    if (first.exchange(false)) entered.set_value();
    released.wait();
  });
  // A waiting request: answered when the run ends, on its own connection.
  auto waiting = std::async(std::launch::async, [this] {
    Client client(http_->port());
    return client.Post("/materialize-incremental",
                       R"({"end": "2026-11-25T10:00:00Z", "wait": true})");
  });
  entered.get_future().wait();  // the run is writing, and held there

  Client client(http_->port());
  auto res = client.Post("/materialize-incremental", R"({"end": "2026-11-25T10:00:00Z"})");
  EXPECT_EQ(res.result_int(), 409) << res.body();
  auto doc = Json(res.body());
  EXPECT_NE(std::string(doc.at("error").at("message").as_string().c_str())
                .find("a materialization started through this server is running (up to "
                      "2026-11-25T10:00:00Z, views all online"),
            std::string::npos)
      << res.body();
  // The one worker is free while the run goes on: other endpoints answer.
  EXPECT_EQ(client.Get("/health").result_int(), 200);
  // (The run is held after its write, so what it wrote is already served.)
  EXPECT_EQ(ServedScores(), (std::vector<std::string>{"0.500000", "0.250000"}));
  res = client.Get("/metrics");
  EXPECT_NE(res.body().find("granary_materialize_running{view=\"risk\"} 1"), std::string::npos)
      << res.body();

  release.set_value();
  auto done = waiting.get();
  ASSERT_EQ(done.result_int(), 200) << done.body();
  EXPECT_EQ(Json(done.body()).at("views").at(0).at("entities_written").as_int64(), 2);
  // Once it has ended, the next run goes ahead.
  res = client.Post("/materialize-incremental", R"({"wait": true})");
  ASSERT_EQ(res.result_int(), 200) << res.body();
}

TEST_P(MaterializeEndpointTest, ALockHeldByAnotherProcessIs409NamingIt) {
  Start();
  // What another process's run holds (flock is per open file, so this conflicts like one).
  auto held = RepositoryLock::Acquire(repo_->config.RegistryPath(), "materialize-incremental",
                                      repo_->clock.Now());
  ASSERT_TRUE(held.ok()) << held.status().ToString();
  Client client(http_->port());
  auto res = client.Post("/materialize-incremental", R"({"wait": true})");
  EXPECT_EQ(res.result_int(), 409) << res.body();
  EXPECT_NE(res.body().find("another materialization of this repository is running "
                            "(materialize-incremental as pid " +
                            std::to_string(getpid())),
            std::string::npos)
      << res.body();
  held->reset();
  res = client.Post("/materialize-incremental", R"({"wait": true})");
  EXPECT_EQ(res.result_int(), 200) << res.body();
}

TEST_P(MaterializeEndpointTest, BadBodiesAre400SayingWhatAndWhere) {
  Start();
  Client client(http_->port());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\n \"end\": }", "the request is not valid JSON: line 2, column 9"},
      {"[1]", "the request must be a JSON object, not a list; the body is {\"end\""},
      {R"({"end": 5})", "end: must be a string, not a number"},
      {R"({"end": "yesterday"})", "end: 'yesterday' is not a time ("},
      {R"({"end": "2026-11-25T12:00:01Z"})",
       "end: 2026-11-25T12:00:01Z is in the future (now is 2026-11-25T12:00:00Z)"},
      {R"({"views": "risk"})", "views: must be a list of feature view names, not a string"},
      {R"({"views": []})", "views: the list is empty; leave it out"},
      {R"({"views": ["risk", 7]})", "views[1]: must be a feature view's name, not a number"},
      {R"({"views": ["rsik"]})", "views[0]: no feature view 'rsik', did you mean 'risk'?"},
      {R"({"wait": "yes"})", "wait: must be true or false, not a string"},
      {R"({"wiat": true})", "unknown field 'wiat', did you mean 'wait'?"},
      {R"({"end": "2026-11-25T10:00:00Z", "end_ts": "2026-11-25T10:00:00Z"})",
       "end and end_ts are the same field (Feast's name and Granary's); give one"},
      {R"({"feature_views": ["risk", "rsik"]})", "feature_views[1]: no feature view 'rsik'"},
  };
  for (const auto& [body, message] : cases) {
    auto res = client.Post("/materialize-incremental", body);
    EXPECT_EQ(res.result_int(), 400) << body << " -> " << res.body();
    auto doc = Json(res.body());
    ASSERT_TRUE(doc.is_object() && doc.as_object().contains("error")) << res.body();
    const std::string got = doc.at("error").at("message").as_string().c_str();
    EXPECT_NE(got.find(message), std::string::npos) << body << " -> " << got;
  }
  EXPECT_FALSE(repo_->Watermark().has_value());  // nothing ran
  auto res = client.Get("/metrics");
  EXPECT_NE(res.body().find("granary_serving_errors_total{path=\"/materialize-incremental\","
                            "kind=\"invalid_argument\"} " +
                            std::to_string(cases.size())),
            std::string::npos)
      << res.body();
}

TEST_P(MaterializeEndpointTest, ShutdownCancelsTheRunAndAnswersItsWaiter) {
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> first{true};
  Start([&](const std::string&, const WriteStats&) {
    if (first.exchange(false)) entered.set_value();
    released.wait();
  });
  auto waiting = std::async(std::launch::async, [this] {
    Client client(http_->port());
    return client.Post("/materialize-incremental", R"({"wait": true})");
  });
  entered.get_future().wait();
  server_->CancelBackgroundWork();  // what granary serve does on SIGTERM, before draining
  release.set_value();
  auto res = waiting.get();
  EXPECT_EQ(res.result_int(), 503) << res.body();
  auto doc = Json(res.body());
  EXPECT_STREQ(doc.at("status").as_string().c_str(), "cancelled");
  EXPECT_STREQ(doc.at("views").at(0).at("status").as_string().c_str(), "cancelled");
  EXPECT_FALSE(repo_->Watermark().has_value());  // a cancelled run leaves it
  // No new run starts while stopping.
  Client client(http_->port());
  res = client.Post("/materialize-incremental", "{}");
  EXPECT_EQ(res.result_int(), 503) << res.body();
  EXPECT_NE(res.body().find("the server is stopping"), std::string::npos) << res.body();
  Stop();  // joins the run before the store closes (the fixture's store outlives it)
  EXPECT_EQ(repo_->Registry()->Runs("risk", 1).ValueOrDie().at(0).status, RunStatus::kFailed);
}

TEST_P(MaterializeEndpointTest, AnIntervalRunAndItsStartRules) {
  Start();
  Client client(http_->port());
  auto res = client.Post("/materialize", R"({"start_ts": "2026-11-24T08:30:00Z",
                                             "end_ts": "2026-11-25T10:00:00Z"})");
  ASSERT_EQ(res.result_int(), 200) << res.body();
  auto doc = Json(res.body());
  ASSERT_EQ(doc.at("views").as_array().size(), 1u);
  EXPECT_STREQ(doc.at("views").at(0).at("start").as_string().c_str(), "2026-11-24T08:30:00Z");
  EXPECT_EQ(doc.at("views").at(0).at("entities_written").as_int64(), 1);  // customer 2's row only
  EXPECT_EQ(ServedScores(), (std::vector<std::string>{"NOT_FOUND", "0.250000"}));
  res = client.Post("/materialize", R"({"end": "2026-11-25T10:00:00Z"})");
  EXPECT_EQ(res.result_int(), 400);
  EXPECT_NE(res.body().find("start: missing"), std::string::npos) << res.body();
  res = client.Post("/materialize-incremental", R"({"start": "2026-11-24T08:30:00Z"})");
  EXPECT_EQ(res.result_int(), 400);
  EXPECT_NE(res.body().find("POST /materialize for an interval"), std::string::npos) << res.body();
  res = client.Post("/materialize",
                    R"({"start": "2026-11-24T00:00:00Z", "start_ts": "2026-11-24T00:00:00Z"})");
  EXPECT_EQ(res.result_int(), 400);
  EXPECT_NE(res.body().find("start and start_ts are the same field"), std::string::npos)
      << res.body();
}

TEST_P(MaterializeEndpointTest, ARunHandedToTheServerComesBackAsItsReport) {
  Start();
  MaterializeRequest request;
  request.kind = MaterializeRequest::Kind::kIncremental;
  request.end = At("2026-11-25T10:00:00Z");
  request.views = {"risk"};
  // No server recorded: run locally.
  auto none = MaterializeThroughServer(repo_->config, request, {});
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_FALSE(none->has_value());

  RunningServer running;
  running.url = LocalUrlFor("0.0.0.0", http_->port());
  running.pid = 1;
  auto record = ServerRecord::Publish(repo_->config.RegistryPath(), running);
  ASSERT_TRUE(record.ok()) << record.status().ToString();
  std::vector<std::string> handed_to;
  HandoffOptions options;
  options.on_handoff = [&](const RunningServer& s) { handed_to.push_back(s.url); };
  auto handed = MaterializeThroughServer(repo_->config, request, options);
  ASSERT_TRUE(handed.ok()) << handed.status().ToString();
  if (GetParam() != "rocksdb") {
    // Redis: every process writes the store itself; nothing is handed over.
    EXPECT_FALSE(handed->has_value());
    EXPECT_TRUE(handed_to.empty());
    return;
  }
  ASSERT_TRUE(handed->has_value());
  EXPECT_EQ(handed_to, std::vector<std::string>{running.url});
  const MaterializeReport& report = **handed;
  ASSERT_TRUE(report.status.ok()) << report.status.ToString();
  ASSERT_EQ(report.views.size(), 1u);
  const ViewMaterialization& v = report.views[0];
  EXPECT_EQ(v.view, "risk");
  EXPECT_EQ(v.scan.rows_scanned, 3);
  EXPECT_EQ(v.scan.files_total, 1);
  EXPECT_EQ(v.entities_written, 2);
  EXPECT_EQ(v.watermark_after, At("2026-11-25T10:00:00Z"));
  EXPECT_EQ(v.run_id, repo_->Registry()->Runs("risk", 1).ValueOrDie()[0].id);
  EXPECT_EQ(ServedScores(), (std::vector<std::string>{"0.500000", "0.250000"}));

  // The server's refusals come back as errors of their kind, with its message.
  request.views = {"rsik"};
  handed = MaterializeThroughServer(repo_->config, request, options);
  ASSERT_FALSE(handed.ok());
  EXPECT_EQ(handed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(handed.status().message().find("no feature view 'rsik', did you mean 'risk'?"),
            std::string::npos)
      << handed.status().ToString();

  // A server that requires a token: none given is a FailedPrecondition with the fix.
  record->reset();
  running.token_required = true;
  record = ServerRecord::Publish(repo_->config.RegistryPath(), running);
  ASSERT_TRUE(record.ok());
  handed = MaterializeThroughServer(repo_->config, request, {});
  ASSERT_FALSE(handed.ok());
  EXPECT_EQ(handed.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(handed.status().message().find("GRANARY_SERVE_TOKEN"), std::string::npos);
}

TEST(MaterializeReportJson, ReadsBackWhatItWrites) {
  MaterializeRequest run;
  run.end = At("2026-11-25T10:00:00Z");
  MaterializeReport report;
  ViewMaterialization a;
  a.view = "risk";
  a.start = At("2026-11-24T10:00:00Z");
  a.end = run.end;
  a.run_id = 7;
  a.scan.files_total = 3;
  a.scan.files_pruned = 1;
  a.scan.row_groups_total = 9;
  a.scan.row_groups_pruned = 4;
  a.scan.rows_scanned = 1000;
  a.rows_in_range = 900;
  a.null_key_rows = 2;
  a.entities = 50;
  a.entities_written = 45;
  a.entities_skipped = 5;
  a.partitions = 4;
  a.bytes_spilled = 1 << 20;
  a.started_over = true;
  a.watermark_before = At("2026-11-24T10:00:00Z");
  a.watermark_after = run.end;
  a.seconds = 1.5;
  ViewMaterialization b;
  b.view = "bay";
  b.end = run.end;
  b.status = Status::IOError("data/bay/part-1.parquet: not a Parquet file");
  b.watermark_note = "the run failed: the watermark stays";
  ViewMaterialization c;
  c.view = "profile";
  c.end = run.end;
  c.up_to_date = true;
  report.views = {a, b, c};
  report.status = b.status;

  auto back = ParseMaterializeReport(MaterializeReportJson(run, report));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->status.code(), StatusCode::kIOError);
  EXPECT_EQ(back->status.message(), b.status.message());
  ASSERT_EQ(back->views.size(), 3u);
  const ViewMaterialization& x = back->views[0];
  EXPECT_EQ(x.view, "risk");
  EXPECT_TRUE(x.status.ok());
  EXPECT_FALSE(x.up_to_date);
  EXPECT_EQ(x.start, a.start);
  EXPECT_EQ(x.end, a.end);
  EXPECT_EQ(x.run_id, 7);
  EXPECT_EQ(x.scan.files_total, 3);
  EXPECT_EQ(x.scan.files_pruned, 1);
  EXPECT_EQ(x.scan.row_groups_total, 9);
  EXPECT_EQ(x.scan.row_groups_pruned, 4);
  EXPECT_EQ(x.scan.rows_scanned, 1000);
  EXPECT_EQ(x.rows_in_range, 900);
  EXPECT_EQ(x.null_key_rows, 2);
  EXPECT_EQ(x.entities, 50);
  EXPECT_EQ(x.entities_written, 45);
  EXPECT_EQ(x.entities_skipped, 5);
  EXPECT_EQ(x.partitions, 4);
  EXPECT_EQ(x.bytes_spilled, 1 << 20);
  EXPECT_TRUE(x.started_over);
  EXPECT_EQ(x.watermark_before, a.watermark_before);
  EXPECT_EQ(x.watermark_after, a.watermark_after);
  EXPECT_DOUBLE_EQ(x.seconds, 1.5);
  EXPECT_EQ(back->views[1].status.code(), StatusCode::kIOError);
  EXPECT_EQ(back->views[1].status.message(), b.status.message());
  EXPECT_EQ(back->views[1].watermark_note, b.watermark_note);
  EXPECT_FALSE(back->views[1].start.has_value());
  EXPECT_TRUE(back->views[2].up_to_date);
  EXPECT_TRUE(back->views[2].status.ok());

  auto bad = ParseMaterializeReport(R"({"error": {"message": "no"}})");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("views"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Stores, MaterializeEndpointTest, ::testing::Values("rocksdb", "redis"));

}  // namespace
}  // namespace granary
