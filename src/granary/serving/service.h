// The feature server's endpoints, independent of any transport (docs/SERVING.md).
//
// A FeatureServer holds what every endpoint shares (ServingContext: the online store, the
// RegistryWatcher, the metrics, a small pool for blocking work) and a table of Endpoints, filled
// by one Register*Endpoints function per group, one file each:
//   online_endpoints.cc   POST /get-online-features
//   push_endpoints.cc     POST /push
//   admin_endpoints.cc    GET /health, GET /metrics, GET /metrics/history, GET /registry
//   materialize_endpoints.cc  POST /materialize-incremental, POST /materialize
// A transport turns the table into its routes (http_routes.h for HTTP) and maps a reply's Status
// to its own codes; handlers never see HTTP.
//
// Handlers run on the transport's worker thread and must not block it: store reads go through
// OnlineStore::AsyncRead on `request.executor`; blocking work (push writes, offline appends)
// runs on the context's blocking pool; a materialization runs on a thread of its own
// (MaterializationJob). `respond` may be called from any thread, exactly once.
//
// Lifetime: call FeatureServer::CancelBackgroundWork() before stopping the transport (so a request
// waiting for a materialization is answered during the drain), stop the transport (so no handler
// runs and its io_contexts are idle) before destroying the FeatureServer; destroy the FeatureServer
// before the store.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "granary/common/clock.h"
#include "granary/common/fork_join.h"
#include "granary/common/metrics.h"
#include "granary/common/result.h"
#include "granary/materialize/materializer.h"
#include "granary/online/online_store.h"
#include "granary/push/push_log.h"
#include "granary/serving/metrics_history.h"
#include "granary/serving/push.h"
#include "granary/serving/registry_watcher.h"

namespace granary {

struct ServiceRequest {
  std::string body;
  std::string query;  // after '?', may be empty
  // The worker thread's executor: asynchronous store calls complete on it.
  boost::asio::any_io_executor executor;
};

// An answer: OK with a body, or an error Status (InvalidArgument: the caller's mistake;
// Unavailable: the store is down; ...), which the transport maps to its codes. An error's body is
// the transport's error document, unless the handler gives one (GET /health does).
struct ServiceReply {
  Status status;
  std::string body;
  std::string content_type = "application/json";
  // OK, and the work goes on after the answer (HTTP 202 Accepted).
  bool accepted = false;
  // Where the handler's time went, as a W3C Server-Timing value ("read;dur=1.204, json;dur=0.5",
  // milliseconds), sent as that header over HTTP; empty: none. Filled only when
  // FeatureServerOptions::server_timing is set.
  std::string server_timing;

  static ServiceReply Ok(std::string body, std::string content_type = "application/json") {
    return {Status::OK(), std::move(body), std::move(content_type)};
  }
  static ServiceReply Error(Status status) { return {std::move(status), {}, "application/json"}; }
};

using ServiceRespond = std::function<void(ServiceReply)>;
using ServiceHandler = std::function<void(ServiceRequest& request, ServiceRespond respond)>;

struct Endpoint {
  std::string method;  // "GET", "POST"
  std::string path;    // "/get-online-features"
  ServiceHandler handler;
  bool is_public = false;  // answered without the bearer token (health checks)
};

// `granary serve`'s default split_threads for `workers` worker threads on `cores` cores: one
// helper per core the workers leave, at most one per worker; 1 (never split) when the workers
// have every core. A helper on a worker's core takes that worker's time: on 2 cores with 2
// workers, splitting 100 x 250 answers cut the server's maximum by 20-35 % and gained nothing at
// 50 req/s (docs/PERFORMANCE.md, "The split's default").
int DefaultSplitThreads(int workers, int cores);

struct FeatureServerOptions {
  // Relative source paths (push to offline): the embedded engine's root when `repository` is
  // unset; else repository's offline_store builds the engine.
  std::filesystem::path repo_root;
  RegistryLocation registry;  // granary.yaml's registry (SQLite or PostgreSQL)
  Duration default_key_ttl;   // online_store.key_ttl
  std::string store_kind;     // "rocksdb", "redis", ...: the store metrics' label
  // Entity rows one get-online-features request may ask for (more: 400).
  size_t max_entities = 10'000;
  std::chrono::milliseconds registry_poll_interval{1000};  // 0: no background polling
  // Push writes and offline appends, /metrics rendering, starting materialization runs.
  int blocking_threads = 2;
  // Threads one large get-online-features answer (its RocksDB read and its response JSON) is
  // split across, the worker thread included; 0: one per core; 1: never split
  // (docs/SERVING.md, "Large answers"). Small answers are never split. `granary serve` sets it
  // from DefaultSplitThreads unless told.
  int split_threads = 0;
  // get-online-features answers say where their time went (ServiceReply::server_timing: the
  // store read and the response JSON), for the HTTP server's Server-Timing header
  // (docs/SERVING.md, "Server-Timing").
  bool server_timing = false;
  MetricsRegistry* metrics = &MetricsRegistry::Default();
  const Clock* clock = &SystemClock::Default();
  // POST /push refuses rows whose event or created time is later than clock->Now() + this
  // (PushContext::max_clock_skew).
  Duration push_max_clock_skew = kDefaultPushMaxClockSkew;
  // POST /materialize-incremental and the materialization metrics exist when `repository` is
  // set: the repository's configuration (its root and registry are the ones above). Each run
  // takes `materialize` as its options, with the clock and metrics above.
  std::optional<RepoConfig> repository;
  MaterializeOptions materialize;
  // GET /metrics/history (metrics_history.h): a sample every interval, the newest `capacity`
  // kept; an interval of 0 keeps no history (the endpoint answers an empty list).
  std::chrono::milliseconds metrics_history_interval{10'000};
  size_t metrics_history_capacity = 2160;
  // GET /health reuses its verdict on the online data (the registry's watermarks against the
  // store's view markers) while it is younger than this, by `clock`; 0 checks on every probe.
  // The store itself is read by every probe. See OnlineDataHealthCache (admin_endpoints.cc).
  std::chrono::milliseconds health_check_max_age{1000};
};

// Metric series the endpoints update, looked up once (updates are lock-free).
struct ServingMetrics {
  Histogram* store_read_seconds = nullptr;  // online store read of a get-online-features
  Histogram* entities_per_request = nullptr;
  Counter* push_rows = nullptr;
  MetricsRegistry* registry = nullptr;
  // Errors answered, by endpoint path and kind (the status code's name); counted on the error
  // path only.
  void CountError(std::string_view path, const Status& status) const;
};

struct ServerMaterialization;  // materialize_endpoints.cc
class OnlineDataHealthCache;   // admin_endpoints.cc

// What the endpoint groups share. Thread-safe.
struct ServingContext {
  FeatureServerOptions options;
  OnlineStore* store = nullptr;
  std::unique_ptr<RegistryWatcher> registry;
  ServingMetrics metrics;
  std::unique_ptr<boost::asio::thread_pool> blocking;
  // Helpers for large answers (options.split_threads); null when they are not split.
  std::unique_ptr<ForkJoinPool> split;
  // The health check's read: one key of a view no definitions have (reads NOT_FOUND when the
  // store is up).
  OnlineReadRequest health_probe;
  // The materialization run of POST /materialize-incremental (materialize_endpoints.cc); null
  // when options.repository is unset.
  std::shared_ptr<ServerMaterialization> materialization;
  // Records pushes in the registry for `granary status` (push_log.h).
  std::unique_ptr<PushLog> push_log;
  // The serving metrics over the last hours (GET /metrics/history).
  std::unique_ptr<MetricsHistory> metrics_history;
  // The offline engine of offline_store (pushes to offline, the server's materialization runs).
  std::unique_ptr<OfflineEngine> offline;
  // GET /health's verdict on the online data, kept for options.health_check_max_age.
  std::shared_ptr<OnlineDataHealthCache> online_health;
};

class FeatureServer {
 public:
  // Loads the registry (FailedPrecondition when nothing was applied), opens the offline engine
  // and builds the endpoints. `store` is not owned.
  static Result<std::unique_ptr<FeatureServer>> Make(FeatureServerOptions options,
                                                     OnlineStore* store);
  ~FeatureServer();  // cancels and joins a materialization, waits for blocking work, stops the
                     // registry polling

  // Cancels a materialization in progress and refuses new ones (503), so a request waiting for
  // one is answered; call on shutdown before stopping the transport. Idempotent.
  void CancelBackgroundWork();

  const std::vector<Endpoint>& endpoints() const { return endpoints_; }
  RegistryWatcher& registry() { return *context_.registry; }
  ServingContext& context() { return context_; }

 private:
  FeatureServer() = default;
  ServingContext context_;
  std::vector<Endpoint> endpoints_;
};

// The endpoint groups (one file each).
void RegisterOnlineEndpoints(ServingContext& context, std::vector<Endpoint>* endpoints);
void RegisterPushEndpoints(ServingContext& context, std::vector<Endpoint>* endpoints);
void RegisterAdminEndpoints(ServingContext& context, std::vector<Endpoint>* endpoints);
// Also creates context.materialization (and registers the materialization state metrics) when
// context.options.repository is set; nothing otherwise.
void RegisterMaterializeEndpoints(ServingContext& context, std::vector<Endpoint>* endpoints);
// The shutdown steps of context.materialization (no-ops when null): Cancel refuses new runs and
// cancels the one in progress; Join waits for it.
void CancelMaterialization(ServingContext& context);
void JoinMaterialization(ServingContext& context);
// Drops GET /health's kept verdict on the online data, so the next probe checks again (a
// materialization run of this server ended).
void InvalidateOnlineDataHealth(ServingContext& context);

}  // namespace granary
