// serve-offline: training sets for Feast's remote offline store client over Arrow Flight
// (serving/flight/offline_flight_server.h), until SIGTERM or SIGINT.
#include <fmt/format.h>
#include <signal.h>

#include "granary/cli/cli.h"
#include "granary/common/strings.h"
#include "granary/serving/flight/offline_flight_server.h"
#include "granary/serving/server_log.h"

namespace granary::cli {
namespace {

struct OfflineOptions {
  std::string host = "127.0.0.1";
  int port = 8815;  // Feast's offline server's default
  std::string token;
  std::string max_entity_bytes = "1GiB";
  std::string memory_budget = "2GiB";
  int threads = 0;
  std::string spill_dir;
};

Status ServeOffline(const RepoConfig& config, const OfflineOptions& o) {
  if (o.port < 0 || o.port > 65535) {
    return Status::InvalidArgument(fmt::format("--port {} is not a port (0 to 65535)", o.port));
  }
  serving::OfflineFlightServerOptions options;
  options.host = o.host;
  options.port = static_cast<uint16_t>(o.port);
  options.bearer_token = o.token;
  GRANARY_ASSIGN_OR_RAISE(options.max_entity_bytes,
                          ParseByteSize(o.max_entity_bytes, "--max-entity-bytes"));
  GRANARY_ASSIGN_OR_RAISE(options.engine.embedded.memory_budget_bytes,
                          ParseByteSize(o.memory_budget, "--memory-budget"));
  options.engine.embedded.memory_budget_name = "--memory-budget " + o.memory_budget;
  options.engine.embedded.threads = o.threads;
  options.engine.embedded.spill_dir = o.spill_dir;
  RemoveStaleSpillFolders(o.spill_dir);

  // Signals go to the thread waiting for them below, never to Flight's threads: block them
  // before any thread starts (threads inherit the mask).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  GRANARY_ASSIGN_OR_RAISE(auto server, serving::OfflineFlightServer::Start(config, options));
  const bool loopback = o.host == "127.0.0.1" || o.host == "::1" || o.host.starts_with("127.");
  ServerLog(fmt::format(
      "granary serve-offline: Arrow Flight (Feast's remote offline store) listening on {}:{}, "
      "project '{}'{}",
      o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host, server->port(),
      config.project, o.token.empty() ? "" : "; bearer token required (header 'authorization')"));
  if (!loopback && o.token.empty()) {
    ServerLog(fmt::format(
        "warning: serving on {} without a bearer token: anyone who can reach the port can read "
        "every feature's history; set GRANARY_SERVE_TOKEN (or --token)",
        o.host));
  }
  int received = 0;
  sigwait(&signals, &received);
  ServerLog(fmt::format("granary serve-offline: {}: finishing the calls in flight, then stopping",
                        received == SIGTERM ? "SIGTERM" : "SIGINT"));
  server->Stop();
  ServerLog("granary serve-offline: stopped");
  return Status::OK();
}

}  // namespace

void RegisterServeOfflineCommand(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<OfflineOptions>();
  CLI::App* cmd = app.add_subcommand(
      "serve-offline",
      "Serve training sets over Arrow Flight to Feast's remote offline store client "
      "(offline_store: {type: remote, host, port}) until SIGTERM");
  cmd->add_option("--host", o->host,
                  "Address to listen on; 127.0.0.1 serves this machine only, 0.0.0.0 every "
                  "interface")
      ->capture_default_str();
  cmd->add_option("--port", o->port, "Port to listen on (0: any free port, logged at start)")
      ->capture_default_str();
  cmd->add_option("--token", o->token,
                  "Require the header 'authorization: Bearer <token>' on every call (prefer the "
                  "environment variable: a command line is visible to other users)")
      ->envname("GRANARY_SERVE_TOKEN")
      ->default_str("");
  cmd->add_option("--max-entity-bytes", o->max_entity_bytes,
                  "Largest entity table one call may upload (e.g. 256MiB, 1GiB)")
      ->capture_default_str();
  cmd->add_option("--memory-budget", o->memory_budget,
                  "Memory for each retrieval (entity rows, output, join state); past it the join "
                  "spills to disk")
      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "Worker threads of each retrieval (0: every core)")
      ->capture_default_str();
  AddSpillDirOption(cmd, &o->spill_dir);
  cmd->callback([&ctx, o] {
    RepoConfig config;
    if (!ctx.LoadConfig(&config)) return;
    Status st = ServeOffline(config, *o);
    if (!st.ok()) ctx.Fail(st);
  });
}

}  // namespace granary::cli
