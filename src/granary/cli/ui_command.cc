// ui: the web console (docs/CONSOLE.md): the page embedded in the binary and its read-only JSON
// API over the repository, on the feature server's HTTP server. Runs until SIGTERM or SIGINT.
#include <fmt/format.h>
#include <signal.h>

#include "granary/cli/cli.h"
#include "granary/console/assets.h"
#include "granary/console/console_service.h"
#include "granary/serving/http/http_server.h"
#include "granary/serving/http_routes.h"
#include "granary/serving/server_log.h"

namespace granary::cli {
namespace {

struct Options {
  std::string host = "127.0.0.1";
  int port = 8888;
  std::string token;
  std::string server;
  std::string server_token;
  std::string max_staleness = "1d";
};

// The page's own files may only load from this server (no CDN, no inline script).
constexpr const char* kContentSecurityPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' "
    "data:; connect-src 'self'; frame-ancestors 'none'";

http::HttpResponse AssetResponse(const ConsoleAsset& asset, bool immutable) {
  http::HttpResponse response;
  response.content_type = std::string(asset.content_type);
  response.body = std::string(asset.data);
  // Vite names scripts and styles by their content's hash: they never change under one name.
  response.headers.emplace_back("Cache-Control",
                                immutable ? "public, max-age=31536000, immutable" : "no-cache");
  response.headers.emplace_back("Content-Security-Policy", kContentSecurityPolicy);
  response.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return response;
}

std::string EscapeHtml(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

// The page's routes (public: the page holds no data; the API needs the token).
std::vector<http::Route> PageRoutes() {
  std::vector<http::Route> routes;
  const auto& assets = ConsoleAssets();
  if (assets.empty()) {
    const std::string page = fmt::format(
        "<!doctype html><meta charset=utf-8><title>Granary console</title><h1>Granary "
        "console</h1><p>{}</p><p>The JSON API works: <a href=/api/registry>/api/registry</a>, "
        "/api/freshness, /api/history, /api/serving, /api/stats?view=NAME "
        "(docs/CONSOLE.md).</p>",
        EscapeHtml(ConsoleAssetsMissing()));
    routes.push_back({"GET", "/",
                      [page](http::HttpRequest&, http::Respond respond) {
                        respond({503, "text/html; charset=utf-8", page, {}});
                      },
                      /*is_public=*/true});
    return routes;
  }
  for (const ConsoleAsset& asset : assets) {
    const bool is_index = asset.path == "/index.html";
    http::Route route;
    route.method = "GET";
    route.path = std::string(asset.path);
    route.is_public = true;
    route.handler = [&asset, is_index](http::HttpRequest&, http::Respond respond) {
      respond(AssetResponse(asset, !is_index));
    };
    if (is_index) {
      http::Route root = route;
      root.path = "/";
      routes.push_back(std::move(root));
    }
    routes.push_back(std::move(route));
  }
  return routes;
}

Status RunUi(const RepoConfig& config, const Options& o) {
  if (o.port < 0 || o.port > 65535) {
    return Status::InvalidArgument(fmt::format("--port {} is not a port (0 to 65535)", o.port));
  }
  ConsoleOptions options;
  options.repository = config;
  auto staleness = ParseDuration(o.max_staleness);
  if (!staleness.ok()) return staleness.status().WithContext("--max-staleness");
  options.max_staleness = *staleness;
  options.server_url = o.server;
  while (!options.server_url.empty() && options.server_url.back() == '/') {
    options.server_url.pop_back();
  }
  if (!options.server_url.empty() && !options.server_url.starts_with("http://")) {
    return Status::InvalidArgument(fmt::format(
        "--server {}: write the feature server's address as http://HOST:PORT", o.server));
  }
  options.server_token = o.server_token;

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  GRANARY_ASSIGN_OR_RAISE(auto console, ConsoleService::Make(std::move(options)));
  std::vector<http::Route> routes = HttpRoutes(console->endpoints());
  for (http::Route& r : PageRoutes()) routes.push_back(std::move(r));

  http::HttpServerOptions http_options;
  http_options.host = o.host;
  http_options.port = static_cast<uint16_t>(o.port);
  http_options.threads = 1;  // the API's work runs on the console's own pool
  http_options.bearer_token = o.token;
  http_options.max_connections = 256;
  http_options.max_in_flight = 64;
  http_options.log = [](std::string_view line) { ServerLog(line); };
  GRANARY_ASSIGN_OR_RAISE(auto http, http::HttpServer::Start(http_options, std::move(routes)));

  const std::string host = o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host;
  ServerLog(fmt::format(
      "granary ui: console at http://{}:{}/ (project {}{}{})", host, http->port(), config.project,
      o.server.empty() ? "; no feature server given (--server)" : "; feature server " + o.server,
      o.token.empty() ? "" : "; bearer token required"));
  if (ConsoleAssets().empty()) {
    ServerLog(fmt::format("warning: {}; the JSON API is served", ConsoleAssetsMissing()));
  }
  if (o.host != "127.0.0.1" && o.host != "::1" && !o.host.starts_with("127.") && o.token.empty()) {
    ServerLog(fmt::format(
        "warning: serving the console on {} without a bearer token: anyone who can reach the "
        "port can read the registry and the data's statistics; set GRANARY_UI_TOKEN (or --token)",
        o.host));
  }
  int received = 0;
  sigwait(&signals, &received);
  ServerLog(fmt::format("granary ui: {}: stopping", received == SIGTERM ? "SIGTERM" : "SIGINT"));
  http->Stop();
  console.reset();
  ServerLog("granary ui: stopped");
  return Status::OK();
}

}  // namespace

void RegisterUiCommand(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "ui",
      "Serve the web console (registry, freshness, serving health, feature statistics) "
      "until SIGTERM; read-only");
  cmd->add_option("--host", o->host, "Address to listen on; 127.0.0.1 serves this machine only");
  cmd->add_option("--port", o->port, "Port to listen on (0: any free port, logged at start)");
  cmd->add_option("--token", o->token,
                  "Require 'Authorization: Bearer <token>' on the JSON API (the page asks for "
                  "it); prefer the environment variable")
      ->envname("GRANARY_UI_TOKEN")
      ->default_str("");
  cmd->add_option("--server", o->server,
                  "The feature server whose health and metrics the serving page shows, as "
                  "http://HOST:PORT");
  cmd->add_option("--server-token", o->server_token,
                  "The feature server's bearer token, when it requires one")
      ->envname("GRANARY_SERVE_TOKEN")
      ->default_str("");
  cmd->add_option("--max-staleness", o->max_staleness,
                  "A view whose watermark (or last push) is older than this is flagged stale");
  cmd->callback([&ctx, o] {
    RepoConfig config;
    if (!ctx.LoadConfig(&config)) return;
    Status st = RunUi(config, *o);
    if (!st.ok()) ctx.Fail(st);
  });
}

}  // namespace granary::cli
