// serve: the HTTP/JSON feature server (docs/SERVING.md). Runs until SIGTERM or SIGINT, then stops
// accepting, lets requests in flight finish (up to --drain-timeout) and exits 0.
#include <fmt/format.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>

#include "granary/cli/cli.h"
#include "granary/common/threads.h"
#include "granary/materialize/repository_lock.h"
#include "granary/online/online_store.h"
#include "granary/online/store_opener.h"
#include "granary/serving/grpc/grpc_server.h"
#include "granary/serving/http/http_server.h"
#include "granary/serving/http_routes.h"
#include "granary/serving/server_log.h"
#include "granary/serving/server_record.h"
#include "granary/serving/service.h"

namespace granary::cli {
namespace {

struct Options {
  std::string host = "127.0.0.1";
  int port = 6566;     // Feast's default
  int grpc_port = -1;  // off
  int threads = 0;
  int split_threads = 0;  // 0: DefaultSplitThreads (serving/service.h)
  std::string token;
  size_t max_entities = 10'000;
  size_t body_limit_bytes = 4 << 20;
  std::string read_timeout = "10s";
  std::string idle_timeout = "60s";
  int max_connections = 4096;
  int max_in_flight = 1024;
  std::string max_queue_delay = "25ms";
  bool metrics_public = false;
  bool server_timing = false;
  std::string drain_timeout = "10s";
  std::string registry_poll = "1s";
  std::string push_max_clock_skew = FormatDuration(kDefaultPushMaxClockSkew);
  std::string start_without_store = "unreachable";
  std::string metrics_history_interval = "10s";
};

Result<std::chrono::milliseconds> Millis(const std::string& option, const std::string& text) {
  auto d = ParseDuration(text);
  if (!d.ok() || d->micros < 0) {
    return Status::InvalidArgument(
        fmt::format("{} '{}' is not a duration; write e.g. 500ms, 10s or 1m", option, text));
  }
  return std::chrono::milliseconds(d->micros / 1000);
}

// A server holds a descriptor per connection: raise the soft limit to the hard one (what an
// unprivileged process may do) so that the default soft limit (often 1024) does not cap it.
// Returns the soft limit in force.
int64_t RaiseFileDescriptorLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return -1;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return limit.rlim_cur == RLIM_INFINITY ? -1 : static_cast<int64_t>(limit.rlim_cur);
}

bool IsLoopback(const std::string& host) {
  return host == "127.0.0.1" || host == "::1" || host.starts_with("127.");
}

Status Serve(const RepoConfig& config, const Options& o) {
  if (o.port < 0 || o.port > 65535) {
    return Status::InvalidArgument(fmt::format("--port {} is not a port (0 to 65535)", o.port));
  }
  if (o.grpc_port < -1 || o.grpc_port > 65535 || (o.grpc_port == o.port && o.port != 0)) {
    return Status::InvalidArgument(fmt::format(
        "--grpc-port {} is not a port of its own (0 to 65535, other than --port)", o.grpc_port));
  }
  if (o.max_entities == 0) return Status::InvalidArgument("--max-entities must be at least 1");
  if (o.max_connections < 0 || o.max_in_flight < 0) {
    return Status::InvalidArgument(
        "--max-connections and --max-in-flight must be 0 (no bound) or more");
  }
  http::HttpServerOptions http_options;
  http_options.host = o.host;
  http_options.port = static_cast<uint16_t>(o.port);
  http_options.threads = o.threads;
  http_options.body_limit_bytes = o.body_limit_bytes;
  http_options.bearer_token = o.token;
  http_options.metrics = &MetricsRegistry::Default();
  http_options.max_connections = o.max_connections;
  http_options.max_in_flight = o.max_in_flight;
  http_options.server_timing = o.server_timing;
  http_options.log = [](std::string_view line) { ServerLog(line); };
  GRANARY_ASSIGN_OR_RAISE(http_options.read_timeout, Millis("--read-timeout", o.read_timeout));
  GRANARY_ASSIGN_OR_RAISE(http_options.idle_timeout, Millis("--idle-timeout", o.idle_timeout));
  GRANARY_ASSIGN_OR_RAISE(http_options.drain_timeout, Millis("--drain-timeout", o.drain_timeout));
  GRANARY_ASSIGN_OR_RAISE(http_options.max_queue_delay,
                          Millis("--max-queue-delay", o.max_queue_delay));

  FeatureServerOptions options;
  options.repo_root = config.root;
  options.registry = config.Registry();
  options.default_key_ttl = config.online_store.key_ttl;
  options.store_kind = config.online_store.type;
  options.max_entities = o.max_entities;
  if (o.split_threads < 0) {
    return Status::InvalidArgument(
        "--split-threads must be 0 (one per core the workers leave, up to one per worker), 1 "
        "(never split) or more");
  }
  const int workers = ThreadCount(o.threads);  // as the HTTP server counts them
  const int split_threads =
      o.split_threads > 0 ? o.split_threads : DefaultSplitThreads(workers, UsableCores());
  options.split_threads = split_threads;
  options.server_timing = o.server_timing;
  options.repository = config;  // POST /materialize-incremental
  GRANARY_ASSIGN_OR_RAISE(options.registry_poll_interval,
                          Millis("--registry-poll", o.registry_poll));
  if (options.registry_poll_interval.count() == 0) {
    return Status::InvalidArgument("--registry-poll must be longer than 0 (e.g. 1s)");
  }
  GRANARY_ASSIGN_OR_RAISE(options.metrics_history_interval,
                          Millis("--metrics-history-interval", o.metrics_history_interval));
  if (options.metrics_history_interval.count() > 0) {
    // Six hours of samples, at most 100,000.
    options.metrics_history_capacity = static_cast<size_t>(std::clamp<int64_t>(
        6 * 3600 * 1000 / options.metrics_history_interval.count(), 1, 100'000));
  }
  {
    auto skew = ParseDuration(o.push_max_clock_skew);
    if (!skew.ok() || skew->micros < 0) {
      return Status::InvalidArgument(
          fmt::format("--push-max-clock-skew '{}' is not a duration; write e.g. 5m, 30s or 1h",
                      o.push_max_clock_skew));
    }
    options.push_max_clock_skew = *skew;
  }

  // Signals go to the thread waiting for them below, never to a worker: block them before any
  // thread starts (threads inherit the mask).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const int64_t fd_limit = RaiseFileDescriptorLimit();

  auto policy = ParseStoreStartPolicy(o.start_without_store);
  if (!policy.ok()) return policy.status().WithContext("--start-without-store");
  GRANARY_ASSIGN_OR_RAISE(std::unique_ptr<OnlineStore> store,
                          OpenOnlineStoreOrRetry(config, {}, *policy, [](const std::string& line) {
                            ServerLog("granary serve: " + line);
                          }));
  GRANARY_ASSIGN_OR_RAISE(std::unique_ptr<FeatureServer> server,
                          FeatureServer::Make(std::move(options), store.get()));
  std::vector<http::Route> routes = HttpRoutes(server->endpoints());
  if (o.metrics_public) {
    for (http::Route& route : routes) {
      if (route.path == "/metrics") route.is_public = true;
    }
  }
  GRANARY_ASSIGN_OR_RAISE(std::unique_ptr<http::HttpServer> http,
                          http::HttpServer::Start(http_options, std::move(routes)));
  // Feast's gRPC serving API beside HTTP, over the same FeatureServer (serving/grpc/).
  std::unique_ptr<serving::GrpcServer> grpc;
  if (o.grpc_port >= 0) {
    serving::GrpcServerOptions grpc_options;
    grpc_options.host = o.host;
    grpc_options.port = static_cast<uint16_t>(o.grpc_port);
    grpc_options.threads = o.threads;
    grpc_options.bearer_token = o.token;
    grpc_options.drain_timeout = http_options.drain_timeout;
    auto started = serving::GrpcServer::Start(grpc_options, server->context());
    if (!started.ok()) {
      http->Stop();
      return started.status();
    }
    grpc = std::move(*started);
  }
  // Tells the CLI and the SDK of this machine where to hand materializations while this process
  // holds the embedded store (serving/server_record.h). Removed when this function returns.
  RunningServer running;
  running.url = LocalUrlFor(o.host, http->port());
  running.pid = getpid();
  running.host = ThisHost();
  running.token_required = !o.token.empty();
  running.store = store->Describe();
  running.started = FormatTimestamp(SystemClock::Default().Now());
  if (config.Registry().is_postgresql()) {
    // The record is this host's, beside where a SQLite registry would be (data/registry-pg).
    std::error_code ec;
    std::filesystem::create_directories(config.RegistryPath().parent_path(), ec);
  }
  auto record = ServerRecord::Publish(config.RegistryPath(), running);
  if (!record.ok()) {
    ServerLog(fmt::format("warning: {}", record.status().message()));
  }
  ServerLog(fmt::format(
      "granary serve: listening on http://{}:{} ({} workers, {}); online store {}; registry "
      "version {} of project {}{}{}",
      o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host, http->port(), workers,
      split_threads > 1 ? fmt::format("large answers split on {} threads", split_threads)
                        : std::string("large answers not split"),
      store->Describe(), server->registry().Current()->info.version,
      server->registry().Current()->info.project, o.token.empty() ? "" : "; bearer token required",
      o.token.empty() || !o.metrics_public ? "" : " (not on /metrics: --metrics-public)"));
  if (grpc != nullptr) {
    ServerLog(fmt::format(
        "granary serve: gRPC (feast.serving.ServingService) listening on {}:{}{}",
        o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host, grpc->port(),
        o.token.empty() ? "" : "; bearer token required (metadata 'authorization')"));
  }
  const auto bound = [](int n) { return n > 0 ? std::to_string(n) : std::string("no bound"); };
  ServerLog(fmt::format(
      "limits: {} connections, {} requests in flight, {} waiting to be read (beyond them: 503 "
      "with Retry-After); {} file descriptors",
      bound(o.max_connections), bound(o.max_in_flight),
      http_options.max_queue_delay.count() > 0 ? o.max_queue_delay : std::string("no bound"),
      fd_limit < 0 ? std::string("unlimited") : std::to_string(fd_limit)));
  if (fd_limit > 0 && (o.max_connections == 0 || o.max_connections + 256 > fd_limit)) {
    ServerLog(fmt::format(
        "warning: the file descriptor limit ({}) is below --max-connections plus what the store "
        "needs: raise it (ulimit -n, LimitNOFILE= under systemd) or lower --max-connections",
        fd_limit));
  }
  if (!IsLoopback(o.host) && o.token.empty()) {
    ServerLog(fmt::format(
        "warning: serving on {} without a bearer token: anyone who can reach the port can read "
        "and push features; set GRANARY_SERVE_TOKEN (or --token)",
        o.host));
  }

  int received = 0;
  sigwait(&signals, &received);
  ServerLog(fmt::format("granary serve: {}: draining {} requests in flight, then stopping",
                        received == SIGTERM ? "SIGTERM" : "SIGINT", http->in_flight()));
  server->CancelBackgroundWork();  // a materialization in progress stops; its waiter is answered
  http->Stop();
  if (grpc != nullptr) grpc->Stop();
  server.reset();  // waits for pushes still writing and joins the materialization
  store.reset();   // before the workers' io_contexts (OnlineStore's threading contract)
  http.reset();
  grpc.reset();
  if (record.ok()) record->reset();  // the store is closed: local runs may open it now
  ServerLog("granary serve: stopped");
  return Status::OK();
}

}  // namespace

void RegisterServeCommand(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "serve", "Serve online features over HTTP/JSON (Feast's feature server API) until SIGTERM");
  cmd->add_option("--host", o->host,
                  "Address to listen on; 127.0.0.1 serves this machine only, 0.0.0.0 every "
                  "interface");
  cmd->add_option("--port", o->port, "Port to listen on (0: any free port, logged at start)");
  cmd->add_option("--grpc-port", o->grpc_port,
                  "Also serve Feast's gRPC API (feast.serving.ServingService/GetOnlineFeatures) "
                  "on this port, same store, token and metrics (0: any free port, logged at "
                  "start; -1: no gRPC)");
  cmd->add_option("--threads", o->threads, "Worker threads (0: one per core)");
  cmd->add_option("--split-threads", o->split_threads,
                  "Threads that one large get-online-features answer (from about 10 entities x "
                  "250 features) is read and written on, its worker included (0: the worker and "
                  "one helper per core the workers leave, at most one per worker; 1: never "
                  "split)");
  cmd->add_option("--token", o->token,
                  "Require 'Authorization: Bearer <token>' on every endpoint but /health "
                  "(prefer the environment variable: a command line is visible to other users)")
      ->envname("GRANARY_SERVE_TOKEN")
      ->default_str("");
  cmd->add_option("--max-entities", o->max_entities,
                  "Most entity rows one get-online-features request may ask for");
  cmd->add_option("--body-limit-bytes", o->body_limit_bytes, "Largest request body, in bytes");
  cmd->add_option("--read-timeout", o->read_timeout,
                  "Time from the first byte of a request to its last (headers and body) before "
                  "the connection is closed");
  cmd->add_option("--idle-timeout", o->idle_timeout,
                  "How long a keep-alive connection may wait for the first byte of its next "
                  "request before it is closed");
  cmd->add_option("--max-connections", o->max_connections,
                  "Open connections beyond which a new one gets a 503 with Retry-After and is "
                  "closed (0: no bound)");
  cmd->add_option("--max-in-flight", o->max_in_flight,
                  "Requests received and not yet answered beyond which a request gets a 503 with "
                  "Retry-After at once (0: no bound)");
  cmd->add_option("--max-queue-delay", o->max_queue_delay,
                  "A request that waited longer than this in its socket before a worker read it "
                  "gets a 503 with Retry-After at once: the server is behind (0: no bound)");
  cmd->add_flag("--server-timing", o->server_timing,
                "Every HTTP answer carries a Server-Timing header: the request's wait in its "
                "socket and its time in the server (get-online-features: also the store read "
                "and the response JSON), in ms");
  cmd->add_flag("--metrics-public", o->metrics_public,
                "Serve /metrics without the bearer token (for a Prometheus scraper on a private "
                "network); /metrics needs the token otherwise");
  cmd->add_option("--drain-timeout", o->drain_timeout,
                  "On SIGTERM, how long requests in flight may take to finish");
  cmd->add_option("--registry-poll", o->registry_poll,
                  "How often to check the registry for a new apply");
  cmd->add_option("--start-without-store", o->start_without_store,
                  "When the online store cannot be opened at start: 'unreachable' starts anyway "
                  "if it cannot be reached (503 until it answers) but stops on a configuration "
                  "error such as refused credentials; 'always' starts on any error; 'never' "
                  "stops on any error")
      ->check(CLI::IsMember({"unreachable", "always", "never"}));
  cmd->add_option("--metrics-history-interval", o->metrics_history_interval,
                  "How often the server records its serving metrics for GET /metrics/history "
                  "(the console's serving page keeps six hours of them; 0: no history)");
  cmd->add_option("--push-max-clock-skew", o->push_max_clock_skew,
                  "How far ahead of this server's clock a pushed row's event time may be; later "
                  "rows are refused with a 400 (they would shadow every real value until then)");
  cmd->callback([&ctx, o] {
    RepoConfig config;
    if (!ctx.LoadConfig(&config)) return;
    Status st = Serve(config, *o);
    if (!st.ok()) ctx.Fail(st);
  });
}

}  // namespace granary::cli
