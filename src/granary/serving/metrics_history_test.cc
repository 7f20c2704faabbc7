// MetricsHistory: samples hold what changed between readings of the registry's series, the
// admin paths are left out, quantiles come from bucket deltas, the ring keeps the newest.
#include "granary/serving/metrics_history.h"

#include <gtest/gtest.h>

#include "granary/common/json.h"

namespace granary {
namespace {

struct Server {
  MetricsRegistry metrics;
  void Answer(const std::string& path, int code, double seconds, int n = 1) {
    metrics
        .GetCounter("granary_http_requests_total", "h",
                    {{"path", path}, {"code", std::to_string(code)}})
        .Increment(n);
    auto& h = metrics.GetHistogram("granary_http_request_duration_seconds", "h", LatencyBuckets(),
                                   {{"path", path}});
    for (int i = 0; i < n; ++i) h.Observe(seconds);
  }
};

TEST(HistogramQuantile, InterpolatesInsideTheBucketAndStopsAtTheLastFiniteBound) {
  const std::vector<double> bounds = {1, 2, 4};
  EXPECT_FALSE(HistogramQuantile(bounds, {0, 0, 0, 0}, 0.5));
  // 10 observations in (1, 2]: the median is halfway.
  EXPECT_DOUBLE_EQ(*HistogramQuantile(bounds, {0, 10, 0, 0}, 0.5), 1.5);
  // 4 in [0, 1], 4 in (2, 4]: p50 is the top of the first bucket, p99 near 4.
  EXPECT_DOUBLE_EQ(*HistogramQuantile(bounds, {4, 0, 4, 0}, 0.5), 1.0);
  EXPECT_NEAR(*HistogramQuantile(bounds, {4, 0, 4, 0}, 0.99), 3.96, 1e-9);
  EXPECT_DOUBLE_EQ(*HistogramQuantile(bounds, {0, 0, 0, 3}, 0.99), 4.0);
}

TEST(MetricsHistory, SamplesHoldTheChangesSinceTheLastReadingWithoutAdminPaths) {
  Server server;
  ManualClock clock{Timestamp::FromSeconds(1'700'000'000)};
  server.Answer("/get-online-features", 200, 0.001, 5);  // before the start: the baseline
  MetricsHistoryOptions options;
  options.metrics = &server.metrics;
  options.clock = &clock;
  options.interval = std::chrono::milliseconds(0);
  auto history = MetricsHistory::Start(options);

  server.Answer("/get-online-features", 200, 0.002, 90);
  server.Answer("/get-online-features", 400, 0.0001, 6);
  server.Answer("/push", 503, 0.0001, 4);
  server.Answer("/metrics", 200, 0.3, 50);
  server.Answer("/health", 200, 0.3, 50);
  server.metrics.GetCounter("granary_http_shed_requests_total", "h", {{"limit", "in_flight"}})
      .Increment(3);
  server.metrics.GetHistogram("granary_serving_entities_per_request", "h", CountBuckets(100))
      .Observe(4);
  server.metrics.GetHistogram("granary_serving_entities_per_request", "h", CountBuckets(100))
      .Observe(6);
  clock.Advance(Duration::Seconds(10));
  history->SampleNow();
  clock.Advance(Duration::Seconds(10));
  history->SampleNow();  // nothing happened

  auto samples = history->Samples();
  ASSERT_EQ(samples.size(), 2u);
  const MetricsSample& s = samples[0];
  EXPECT_EQ(s.requests, 100);
  EXPECT_EQ(s.client_errors, 6);
  EXPECT_EQ(s.server_errors, 4);
  EXPECT_EQ(s.shed, 3);
  EXPECT_DOUBLE_EQ(s.interval_seconds, 10);
  ASSERT_TRUE(s.latency_p50);
  // 90 of 100 took 2 ms: the median sits in the bucket holding 0.002, far from the admin 0.3 s.
  EXPECT_GT(*s.latency_p50, 0.001);
  EXPECT_LE(*s.latency_p50, 0.0025);
  EXPECT_LT(*s.latency_p99, 0.01);
  ASSERT_TRUE(s.entities_per_request);
  EXPECT_DOUBLE_EQ(*s.entities_per_request, 5);
  EXPECT_EQ(samples[1].requests, 0);
  EXPECT_FALSE(samples[1].latency_p50);
  EXPECT_FALSE(samples[1].entities_per_request);

  auto json = ParseJson(history->ToJson());
  ASSERT_TRUE(json.ok()) << json.status().ToString();
  const auto& first = json->at("samples").at(0);
  EXPECT_EQ(first.at("requests").as_int64(), 100);
  EXPECT_EQ(first.at("at").as_string(), "2023-11-14T22:13:30Z");
  EXPECT_TRUE(json->at("samples").at(1).at("latency_p50_seconds").is_null());
}

TEST(MetricsHistory, TheRingKeepsTheNewestSamples) {
  Server server;
  ManualClock clock{Timestamp::FromSeconds(1'700'000'000)};
  MetricsHistoryOptions options;
  options.metrics = &server.metrics;
  options.clock = &clock;
  options.interval = std::chrono::milliseconds(0);
  options.capacity = 3;
  auto history = MetricsHistory::Start(options);
  for (int i = 1; i <= 5; ++i) {
    server.Answer("/get-online-features", 200, 0.001, i);
    clock.Advance(Duration::Seconds(1));
    history->SampleNow();
  }
  auto samples = history->Samples();
  ASSERT_EQ(samples.size(), 3u);
  EXPECT_EQ(samples[0].requests, 3);
  EXPECT_EQ(samples[2].requests, 5);
}

TEST(MetricsHistory, TheThreadSamplesEveryIntervalAndStopsWhenDestroyed) {
  Server server;
  MetricsHistoryOptions options;
  options.metrics = &server.metrics;
  options.interval = std::chrono::milliseconds(5);
  auto history = MetricsHistory::Start(options);
  for (int i = 0; i < 2000 && history->Samples().size() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GE(history->Samples().size(), 2u);
  history.reset();  // joins
}

}  // namespace
}  // namespace granary
