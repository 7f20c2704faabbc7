// serve_answer_floor: the floor of a large answer in bench/serve. The feature server's own HTTP
// transport (granary::http::HttpServer, the options granary serve runs it with: its worker
// threads, TCP_NODELAY, the same write path) answering POST requests with answers read from files
// at start: no request parsing, no store read, no JSON. Each answer is copied into a fresh
// string per request, as a real answer is a string written for it. What a request of the same
// size costs end to end on this machine when the server does nothing else, so bench/serve can
// print how far Granary's latency is from it (docs/PERFORMANCE.md, "The tail of a large answer").
//
// usage: serve_answer_floor --port P [--threads N] --answer /PATH=FILE [--answer /PATH=FILE ...]
// Answers POST /PATH with FILE's bytes (application/json); runs until SIGTERM or SIGINT.
#include <fmt/format.h>
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "granary/serving/http/http_server.h"

namespace {

using granary::http::HttpRequest;
using granary::http::HttpResponse;
using granary::http::Respond;
using granary::http::Route;

int Usage(const char* message) {
  std::fprintf(stderr,
               "serve_answer_floor: %s\nusage: serve_answer_floor --port P [--threads N] "
               "--answer /PATH=FILE [--answer /PATH=FILE ...]\n",
               message);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  granary::http::HttpServerOptions options;
  options.port = 0;
  std::vector<Route> routes;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--port") {
      options.port = static_cast<uint16_t>(std::stoi(value));
    } else if (flag == "--threads") {
      options.threads = std::stoi(value);
    } else if (flag == "--answer") {
      const size_t eq = value.find('=');
      if (eq == std::string::npos || value.empty() || value[0] != '/') {
        return Usage("--answer takes /PATH=FILE");
      }
      std::ifstream in(value.substr(eq + 1), std::ios::binary);
      if (!in) return Usage(fmt::format("cannot read {}", value.substr(eq + 1)).c_str());
      std::ostringstream bytes;
      bytes << in.rdbuf();
      auto answer = std::make_shared<const std::string>(bytes.str());
      routes.push_back({"POST", value.substr(0, eq), [answer](HttpRequest&, Respond respond) {
                          HttpResponse r;
                          r.body.assign(*answer);  // a fresh string per answer, as Granary's
                          respond(std::move(r));
                        }});
    } else {
      return Usage(fmt::format("unknown option {}", flag).c_str());
    }
  }
  if (routes.empty()) return Usage("no --answer given");
  // Blocked before the server's threads start, so that they inherit the mask and only
  // sigwait below takes the signal.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  auto server = granary::http::HttpServer::Start(options, std::move(routes));
  if (!server.ok()) {
    std::fprintf(stderr, "serve_answer_floor: %s\n", server.status().ToString().c_str());
    return 1;
  }
  std::printf("listening on 127.0.0.1:%u\n", (*server)->port());
  std::fflush(stdout);
  int signal_number = 0;
  sigwait(&stop, &signal_number);
  (*server)->Stop();
  return 0;
}
