// schedule: materialize-incremental on a cron expression, in the foreground, with retries, a log
// line per event, GET /metrics and GET /health, and a clean stop on SIGTERM or SIGINT.
#include <fmt/format.h>

#include <csignal>
#include <cstdio>

#include "granary/cli/cli.h"
#include "granary/cli/materialize_args.h"
#include "granary/cli/signals.h"
#include "granary/common/json.h"
#include "granary/materialize/materialize_metrics.h"
#include "granary/materialize/scheduler.h"
#include "granary/registry/registry_factory.h"
#include "granary/serving/http/http_server.h"

namespace granary::cli {
namespace {

struct ScheduleArgs {
  std::string cron;
  std::string timezone = "utc";
  int retries = 3;
  std::string retry_delay = "1m";
  std::string max_retry_delay = "1h";
  bool run_now = false;
  std::string metrics_host = "127.0.0.1";
  int metrics_port = -1;  // -1: no HTTP endpoint
  MaterializeArgs materialize;
};

void LogLine(const std::string& line) {
  fmt::print(stderr, "{}\n", line);
  std::fflush(stderr);
}

std::string HealthJson(const Scheduler::State& s) {
  JsonWriter w;
  auto time_or_null = [&](const std::optional<Timestamp>& t) {
    if (t) {
      w.String(FormatTimestamp(*t).c_str());
    } else {
      w.Null();
    }
  };
  w.StartObject();
  w.Key("status");
  w.String(s.last_run_ok ? "ok" : "degraded");
  w.Key("running");
  w.Bool(s.running);
  w.Key("next_run");
  time_or_null(s.next_run);
  w.Key("last_run_started");
  time_or_null(s.last_run_started);
  w.Key("last_run_finished");
  time_or_null(s.last_run_finished);
  w.Key("last_run_ok");
  w.Bool(s.last_run_ok);
  w.Key("last_error");
  w.String(s.last_error.c_str());
  w.Key("runs");
  w.Int64(s.runs);
  w.Key("failures");
  w.Int64(s.failures);
  w.EndObject();
  return w.Release();
}

Status Run(const RepoConfig& config, const ScheduleArgs& args) {
  CronSchedule::Zone zone;
  if (args.timezone == "utc") {
    zone = CronSchedule::Zone::kUtc;
  } else if (args.timezone == "local") {
    zone = CronSchedule::Zone::kLocal;
  } else {
    return Status::InvalidArgument(fmt::format(
        "--timezone '{}': write utc, or local for the zone of TZ / the system", args.timezone));
  }
  GRANARY_ASSIGN_OR_RAISE(CronSchedule cron, CronSchedule::Parse(args.cron, zone));
  ScheduleOptions options;
  if (args.retries < 0) return Status::InvalidArgument("--retries must be 0 or more");
  options.retries = args.retries;
  GRANARY_ASSIGN_OR_RAISE(options.retry_delay, ParseDuration(args.retry_delay));
  GRANARY_ASSIGN_OR_RAISE(options.max_retry_delay, ParseDuration(args.max_retry_delay));
  options.run_at_start = args.run_now;
  options.views = SplitViews(args.materialize.views);
  GRANARY_ASSIGN_OR_RAISE(options.materialize, MakeMaterializeOptions(args.materialize));
  RemoveStaleSpillFolders(args.materialize.spill_dir);
  // A scheduler's output is a log: progress as log lines, never a redrawn bar.
  if (options.materialize.progress.mode != ProgressOptions::Mode::kSilent) {
    options.materialize.progress.mode = ProgressOptions::Mode::kLog;
  }
  options.log = LogLine;
  // The registry must exist before the first scheduled time, not fail at 2 AM.
  GRANARY_RETURN_NOT_OK(OpenRegistry(config, OpenMode::kOpenExisting).status());

  const Clock* clock = &SystemClock::Default();
  ClockWaiter waiter(clock);
  Scheduler scheduler(config, std::move(cron), std::move(options), clock, &waiter);
  auto signals = SignalWatcher::Start([&scheduler](int sig) {
    LogLine(
        fmt::format("schedule: {} received; stopping (a run in progress is cancelled and "
                    "recorded; press again to quit at once)",
                    sig == SIGINT ? "SIGINT" : "SIGTERM"));
    scheduler.Stop();
  });

  std::unique_ptr<http::HttpServer> server;
  std::unique_ptr<MaterializationStateMetrics> state_metrics;
  if (args.metrics_port >= 0) {
    MetricsRegistry& metrics = MetricsRegistry::Default();
    state_metrics = MaterializationStateMetrics::Register(&metrics, config, clock);
    http::HttpServerOptions server_options;
    server_options.host = args.metrics_host;
    server_options.port = static_cast<uint16_t>(args.metrics_port);
    server_options.threads = 1;
    server_options.metrics = &metrics;
    std::vector<http::Route> routes;
    routes.push_back({"GET", "/metrics",
                      [&metrics](http::HttpRequest&, http::Respond respond) {
                        http::HttpResponse r;
                        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
                        r.body = metrics.Render();
                        respond(std::move(r));
                      },
                      /*is_public=*/true});
    routes.push_back({"GET", "/health",
                      [&scheduler](http::HttpRequest&, http::Respond respond) {
                        http::HttpResponse r;
                        r.body = HealthJson(scheduler.state());
                        respond(std::move(r));
                      },
                      /*is_public=*/true});
    auto started = http::HttpServer::Start(server_options, std::move(routes));
    if (!started.ok()) return started.status().WithContext("--metrics-port");
    server = std::move(*started);
    LogLine(fmt::format("schedule: serving http://{}:{}/metrics and /health", args.metrics_host,
                        server->port()));
  }
  Status st = scheduler.Run();
  if (server) server->Stop();
  return st;
}

}  // namespace

void RegisterScheduleCommand(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<ScheduleArgs>();
  CLI::App* cmd = app.add_subcommand(
      "schedule",
      "Run materialize-incremental on a cron schedule in the foreground, with retries and "
      "metrics (stop with SIGTERM or Ctrl-C)");
  cmd->add_option("--cron", args->cron,
                  "Five-field cron expression, e.g. \"0 2 * * *\" (2 AM daily), or @daily...")
      ->required();
  cmd->add_option("--timezone", args->timezone, "Evaluate the expression in utc or local time")
      ->capture_default_str();
  cmd->add_option("--retries", args->retries, "Retries of a failed run before giving up")
      ->capture_default_str();
  cmd->add_option("--retry-delay", args->retry_delay,
                  "Wait before the first retry; doubles each retry")
      ->capture_default_str();
  cmd->add_option("--max-retry-delay", args->max_retry_delay, "Longest wait between retries")
      ->capture_default_str();
  cmd->add_flag("--run-now", args->run_now, "Run once at start, then follow the schedule");
  cmd->add_option("--metrics-host", args->metrics_host, "Address for /metrics and /health")
      ->capture_default_str();
  cmd->add_option("--metrics-port", args->metrics_port,
                  "Serve GET /metrics and GET /health on this port (0: any free port)");
  AddMaterializeOptions(cmd, &args->materialize);
  cmd->callback([&ctx, args] {
    RepoConfig config;
    if (!ctx.LoadConfig(&config)) return;
    Status st = Run(config, *args);
    if (!st.ok()) ctx.Fail(st);
  });
}

}  // namespace granary::cli
