// The web console's JSON API (docs/CONSOLE.md), transport-free like the feature server's
// endpoints (serving/service.h): a table of read-only GET endpoints that `granary ui` turns into
// HTTP routes with serving/http_routes.h, beside the embedded page (console/assets.h).
//
//   GET /api/registry     the applied definitions (serving/registry_json.h) and the lineage graph
//   GET /api/history      the registry versions, each with what its apply changed (plan.h)
//   GET /api/freshness    per online view: watermark, staleness against the threshold, data age,
//                         last push, run history and the watermark age over time
//   GET /api/serving      the feature server's health and GET /metrics/history (--server)
//   GET /api/stats        ?view=V[&start=T&end=T&bins=N&refresh=1]: feature statistics over
//                         the offline data (offline/feature_stats.h) and an online sample,
//                         cached per (view, range, bins, registry version)
//
// Every answer reads the repository anew (the registry is SQLite, opened per request), so the
// console shows applies and runs as they happen. Handlers block (SQLite, Parquet, the server's
// HTTP): they run on the service's own pools, never on the transport's worker; statistics (which
// may read for long) on a pool of their own, so that they never hold up the other pages.
//
// Thread-safe. Lifetime: stop the transport before destroying the service (its destructor waits
// for the pool's work).
#pragma once

#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "granary/common/clock.h"
#include "granary/common/mutex.h"
#include "granary/common/result.h"
#include "granary/offline/feature_stats.h"
#include "granary/registry/repo_config.h"
#include "granary/serving/service.h"

namespace granary {

struct ConsoleOptions {
  RepoConfig repository;
  // A view is flagged stale past this (as `granary status --max-staleness`).
  Duration max_staleness = Duration::Days(1);
  // The feature server whose health and metrics the serving page shows ("http://127.0.0.1:6566");
  // empty: none. Its bearer token when it requires one.
  std::string server_url;
  std::string server_token;
  int blocking_threads = 2;  // the registry, freshness and serving pages
  int stats_threads = 2;     // statistics computed at once
  // Runs listed per view on the freshness page.
  int runs_per_view = 50;
  const Clock* clock = &SystemClock::Default();
};

class ConsoleService {
 public:
  static Result<std::unique_ptr<ConsoleService>> Make(ConsoleOptions options);
  ~ConsoleService();  // waits for the handlers running on the pools

  const std::vector<Endpoint>& endpoints() const { return endpoints_; }

  // The answers, callable directly (tests, the CLI). `query` is the URL's query string.
  Result<std::string> RegistryJson();
  Result<std::string> HistoryJson(int limit);
  Result<std::string> FreshnessJson();
  Result<std::string> ServingJson();
  Result<std::string> StatsJson(const std::string& query);

 private:
  explicit ConsoleService(ConsoleOptions options);
  void Register(std::string path, boost::asio::thread_pool* pool,
                std::function<Result<std::string>(const std::string&)> answer);

  const ConsoleOptions options_;
  std::unique_ptr<boost::asio::thread_pool> pool_;
  std::unique_ptr<boost::asio::thread_pool> stats_pool_;
  std::vector<Endpoint> endpoints_;

  struct CachedStats {
    std::string json;
    Timestamp computed_at;
  };
  Mutex cache_mu_;
  std::map<std::string, CachedStats> stats_cache_ GUARDED_BY(cache_mu_);
  // The repository's offline engine, which computes the statistics (in the cluster on Spark):
  // opened by the first statistics request, so that the console starts while it is down.
  Result<std::shared_ptr<OfflineEngine>> Offline();
  Mutex engine_mu_;
  std::shared_ptr<OfflineEngine> offline_ GUARDED_BY(engine_mu_);
};

// The statistics report as JSON (docs/CONSOLE.md, "GET /api/stats"): `online_sample` is the
// feature server's get-online-features response for the sample entities (raw JSON), or empty
// with `online_note` saying why there is none.
std::string FeatureStatsJson(const FeatureStatsReport& report, const std::string& online_sample,
                             const std::string& online_note);

// The online sample of `report`: the current online values of its sample entities, read from the
// repository's online store (read-only, beside a running server), statuses judged at
// `clock`'s now (ttl). Feast's response JSON.
Result<std::string> ReadOnlineSample(const RepoConfig& config,
                                     std::shared_ptr<const Definitions> definitions,
                                     const FeatureView& view, const FeatureStatsReport& report,
                                     const Clock* clock = &SystemClock::Default());

// Parses "a=1&b=x%20y" into its pairs (percent-decoding, '+' as space). InvalidArgument on a bad
// escape.
Result<std::map<std::string, std::string>> ParseQueryString(std::string_view query);

}  // namespace granary
