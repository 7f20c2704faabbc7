#include "granary/serving/materialize_handoff.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <thread>

#include "granary/common/json.h"
#include "granary/serving/http/http_client.h"
#include "granary/serving/materialize_report.h"

namespace granary {
namespace {

void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      *out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

std::string RequestBody(const MaterializeRequest& request) {
  std::string body = "{";
  if (request.kind == MaterializeRequest::Kind::kInterval) {
    body += "\"start\": ";
    AppendJsonString(&body, FormatTimestamp(request.start));
    body += ", ";
  }
  body += "\"end\": ";
  AppendJsonString(&body, FormatTimestamp(request.end));
  if (!request.views.empty()) {
    body += ", \"views\": [";
    for (size_t i = 0; i < request.views.size(); ++i) {
      if (i > 0) body += ", ";
      AppendJsonString(&body, request.views[i]);
    }
    body += "]";
  }
  body += ", \"wait\": true}";
  return body;
}

StatusCode CodeOfHttp(int status) {
  switch (status) {
    case 400:
      return StatusCode::kInvalidArgument;
    case 404:
      return StatusCode::kNotFound;
    case 409:
      return StatusCode::kAlreadyExists;
    case 501:
      return StatusCode::kNotImplemented;
    case 503:
      return StatusCode::kUnavailable;
    default:
      return StatusCode::kInternal;
  }
}

// The message of the server's error document {"error": {"message": ...}}, or the body itself.
std::string ErrorMessage(const std::string& body) {
  auto doc = ParseJson(body);
  if (doc.ok()) {
    if (const boost::json::value* error = JsonMember(*doc, "error")) {
      if (const boost::json::value* message = JsonMember(*error, "message");
          message != nullptr && message->is_string()) {
        return std::string(JsonStringView(message->get_string()));
      }
    }
  }
  return body.empty() ? std::string("no message") : body;
}

// The wait a 503's Retry-After asks for: delta-seconds, at most a minute (a server asking for
// more is waited for as long, then asked again); an HTTP date or anything else: 1 s.
std::chrono::seconds RetryAfterWait(const std::string& value) {
  constexpr int64_t kMaxSeconds = 60;
  int64_t seconds = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec != std::errc() || end != value.data() + value.size() || seconds < 0) {
    return std::chrono::seconds(1);
  }
  return std::chrono::seconds(std::min(seconds, kMaxSeconds));
}

// Sleeps `wait`, in steps short enough to notice `cancelled` (may be null) at once. False when
// cancelled.
bool SleepUnlessCancelled(std::chrono::seconds wait, const std::atomic<bool>* cancelled) {
  const auto until = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < until) {
    if (cancelled != nullptr && cancelled->load()) return false;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        std::chrono::milliseconds(100), until - std::chrono::steady_clock::now()));
  }
  return cancelled == nullptr || !cancelled->load();
}

}  // namespace

Result<std::optional<MaterializeReport>> MaterializeThroughServer(const RepoConfig& config,
                                                                  const MaterializeRequest& request,
                                                                  const HandoffOptions& options) {
  if (config.online_store.type != "rocksdb") return std::optional<MaterializeReport>();
  GRANARY_ASSIGN_OR_RAISE(std::optional<RunningServer> server,
                          FindRunningServer(config.RegistryPath()));
  if (!server) return std::optional<MaterializeReport>();
  const std::string where = fmt::format("the server at {} (pid {})", server->url, server->pid);
  if (server->token_required && options.token.empty()) {
    return Status::FailedPrecondition(fmt::format(
        "{} holds the embedded online store, so the run goes to it, and it requires a bearer "
        "token: set GRANARY_SERVE_TOKEN to the server's token (or pass --token)",
        where));
  }
  http::ClientRequest call;
  call.url = server->url;
  call.path = request.kind == MaterializeRequest::Kind::kIncremental ? "/materialize-incremental"
                                                                     : "/materialize";
  call.body = RequestBody(request);
  call.headers.emplace_back("Content-Type", "application/json");
  if (!options.token.empty()) call.headers.emplace_back("Authorization", "Bearer " + options.token);
  // Admission control sheds a run before it starts: send it again when the server asks.
  Result<http::ClientResponse> response = Status::Internal("not sent");
  for (int retry = 0;; ++retry) {
    if (options.on_handoff) options.on_handoff(*server);
    response = http::HttpCall(call, options.cancelled);
    if (!response.ok() || response->status != 503) break;
    const std::string* retry_after = response->Header("Retry-After");
    if (retry_after == nullptr) break;  // about the run itself: reported below
    const std::string message = ErrorMessage(response->body);
    if (retry == options.overload_retries) {
      return Status::Unavailable(fmt::format(
          "{} is overloaded: it answered 503 to each of {} attempts ({} retries, each after the "
          "wait its Retry-After asked for), the last with: {}; the run was not started: try "
          "again later, or start the server with a higher --max-connections or --max-in-flight",
          where, retry + 1, retry, message));
    }
    HandoffRetry next;
    next.retry = retry + 1;
    next.retries = options.overload_retries;
    next.wait = RetryAfterWait(*retry_after);
    next.message = message;
    if (options.on_retry) options.on_retry(*server, next);
    if (!SleepUnlessCancelled(next.wait, options.cancelled)) {
      return Status::Cancelled(fmt::format(
          "stopped waiting to send the run again to {}, which was overloaded: the run was not "
          "started",
          where));
    }
  }
  if (!response.ok()) {
    if (response.status().code() == StatusCode::kCancelled) {
      return Status::Cancelled(fmt::format(
          "stopped waiting; the run goes on in {}: see 'granary status' or its log", where));
    }
    return response.status();
  }
  if (response->status == 401) {
    return Status::FailedPrecondition(
        fmt::format("{} refused the bearer token: set GRANARY_SERVE_TOKEN to the token the server "
                    "was started with (or pass --token)",
                    where));
  }
  if (response->status == 404) {
    return Status::FailedPrecondition(fmt::format(
        "{} has no {} endpoint: it is an older Granary; stop it to materialize here, or upgrade "
        "it",
        where, call.path));
  }
  // A report (200, or a run's failure with the report as the body), or an error document.
  auto report = ParseMaterializeReport(response->body);
  if (report.ok()) return std::optional<MaterializeReport>(std::move(*report));
  if (response->status == 200) {
    return Status::Internal(
        fmt::format("{} answered 200 without a report: {}", where, report.status().message()));
  }
  return Status(CodeOfHttp(response->status),
                fmt::format("{}: {}", where, ErrorMessage(response->body)));
}

}  // namespace granary
