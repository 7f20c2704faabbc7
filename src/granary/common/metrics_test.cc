#include "granary/common/metrics.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace granary {
namespace {

TEST(Metrics, CountersRenderWithHelpTypeAndSortedLabels) {
  MetricsRegistry registry;
  registry
      .GetCounter("granary_requests_total", "Requests served.",
                  {{"endpoint", "/push"}, {"code", "200"}})
      .Increment();
  auto& c = registry.GetCounter("granary_requests_total", "Requests served.",
                                {{"endpoint", "/get-online-features"}, {"code", "200"}});
  c.Increment(2);
  c.Increment();
  EXPECT_EQ(registry.Render(),
            "# HELP granary_requests_total Requests served.\n"
            "# TYPE granary_requests_total counter\n"
            "granary_requests_total{endpoint=\"/get-online-features\",code=\"200\"} 3\n"
            "granary_requests_total{endpoint=\"/push\",code=\"200\"} 1\n");
}

TEST(Metrics, TheSameSeriesIsReturnedForTheSameLabels) {
  MetricsRegistry registry;
  Counter& a = registry.GetCounter("x_total", "x", {{"view", "v"}});
  Counter& b = registry.GetCounter("x_total", "x", {{"view", "v"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &registry.GetCounter("x_total", "x", {{"view", "w"}}));
}

TEST(Metrics, GaugesSetAndAddAndFormatNumbers) {
  MetricsRegistry registry;
  auto& g = registry.GetGauge("granary_last_success_timestamp_seconds", "Last success.");
  g.Set(1764036000.5);
  auto& inflight = registry.GetGauge("granary_inflight", "In flight.");
  inflight.Add(3);
  inflight.Add(-1);
  const std::string text = registry.Render();
  EXPECT_NE(text.find("# TYPE granary_inflight gauge\ngranary_inflight 2\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("granary_last_success_timestamp_seconds 1764036000.5\n"), std::string::npos)
      << text;
}

TEST(Metrics, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  MetricsRegistry registry;
  auto& h =
      registry.GetHistogram("latency_seconds", "Latency.", {0.001, 0.01, 0.1}, {{"endpoint", "e"}});
  h.Observe(0.0005);
  h.Observe(0.001);  // le is inclusive
  h.Observe(0.05);
  h.Observe(3);
  EXPECT_EQ(h.count(), 4u);
  EXPECT_EQ(registry.Render(),
            "# HELP latency_seconds Latency.\n"
            "# TYPE latency_seconds histogram\n"
            "latency_seconds_bucket{endpoint=\"e\",le=\"0.001\"} 2\n"
            "latency_seconds_bucket{endpoint=\"e\",le=\"0.01\"} 2\n"
            "latency_seconds_bucket{endpoint=\"e\",le=\"0.1\"} 3\n"
            "latency_seconds_bucket{endpoint=\"e\",le=\"+Inf\"} 4\n"
            "latency_seconds_sum{endpoint=\"e\"} 3.0515\n"
            "latency_seconds_count{endpoint=\"e\"} 4\n");
}

TEST(Metrics, LabelValuesAndHelpAreEscaped) {
  MetricsRegistry registry;
  registry.GetCounter("errors_total", "Errors,\nby \\ kind.", {{"error", "bad \"json\"\n\\"}})
      .Increment();
  EXPECT_EQ(registry.Render(),
            "# HELP errors_total Errors,\\nby \\\\ kind.\n"
            "# TYPE errors_total counter\n"
            "errors_total{error=\"bad \\\"json\\\"\\n\\\\\"} 1\n");
}

TEST(Metrics, CollectorsAddGaugesAtRenderTime) {
  MetricsRegistry registry;
  double staleness = 10;
  const int id = registry.AddCollector([&](MetricWriter& w) {
    w.Gauge("granary_view_staleness_seconds", "Now minus watermark.", {{"view", "b"}}, staleness);
    w.Gauge("granary_view_staleness_seconds", "Now minus watermark.", {{"view", "a"}}, 1);
  });
  staleness = 20;
  std::string text = registry.Render();
  EXPECT_EQ(text,
            "# HELP granary_view_staleness_seconds Now minus watermark.\n"
            "# TYPE granary_view_staleness_seconds gauge\n"
            "granary_view_staleness_seconds{view=\"b\"} 20\n"
            "granary_view_staleness_seconds{view=\"a\"} 1\n");
  registry.RemoveCollector(id);
  EXPECT_EQ(registry.Render(), "");
}

TEST(Metrics, CountsFromManyThreadsWithoutLoss) {
  MetricsRegistry registry;
  auto& c = registry.GetCounter("n_total", "n");
  auto& h = registry.GetHistogram("h", "h", LatencyBuckets());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10'000; ++i) {
        c.Increment();
        h.Observe(0.0001 * (i % 7));
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), 40'000);
  EXPECT_EQ(h.count(), 40'000u);
}

TEST(Metrics, CountBucketsStepOneTwoFive) {
  EXPECT_EQ(CountBuckets(100), (std::vector<double>{1, 2, 5, 10, 20, 50, 100}));
}

}  // namespace
}  // namespace granary
