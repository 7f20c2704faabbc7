#include "granary/console/console_service.h"

#include <fmt/format.h>

#include <boost/asio/post.hpp>
#include <charconv>

#include "granary/common/json.h"
#include "granary/offline/engine_factory.h"
#include "granary/registry/registry_factory.h"
#include "granary/registry/registry_store.h"
#include "granary/serving/http/http_client.h"

namespace granary {
namespace {

constexpr size_t kStatsCacheEntries = 64;
constexpr int kHistoryVersions = 100;

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> PercentDecode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out.push_back(' ');
    } else if (text[i] == '%') {
      if (i + 2 >= text.size()) {
        return Status::InvalidArgument(
            fmt::format("query string: '%' at byte {} is not followed by two hex digits", i));
      }
      const int hi = HexDigit(text[i + 1]), lo = HexDigit(text[i + 2]);
      if (hi < 0 || lo < 0) {
        return Status::InvalidArgument(
            fmt::format("query string: '%' at byte {} is not followed by two hex digits", i));
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

// One blocking GET of the feature server; its body when it answers 200.
Result<std::string> GetFromServer(const ConsoleOptions& o, const std::string& path) {
  http::ClientRequest request;
  request.method = "GET";
  request.url = o.server_url;
  request.path = path;
  request.connect_timeout = std::chrono::milliseconds(2000);
  if (!o.server_token.empty()) {
    request.headers.emplace_back("Authorization", "Bearer " + o.server_token);
  }
  GRANARY_ASSIGN_OR_RAISE(http::ClientResponse response, http::HttpCall(request, nullptr));
  if (response.status == 401) {
    return Status::FailedPrecondition(fmt::format(
        "the feature server at {} requires a bearer token: start granary ui with --server-token "
        "(or GRANARY_SERVE_TOKEN) set to its token",
        o.server_url));
  }
  if (response.status == 404 && path == "/metrics/history") {
    return Status::NotFound(fmt::format(
        "the feature server at {} has no GET /metrics/history (an older granary): upgrade it",
        o.server_url));
  }
  if (response.status != 200 && !(path == "/health" && response.status == 503)) {
    return Status::Unavailable(fmt::format("GET {}{} answered {}: {}", o.server_url, path,
                                           response.status, response.body.substr(0, 300)));
  }
  return std::move(response.body);
}

}  // namespace

Result<std::map<std::string, std::string>> ParseQueryString(std::string_view query) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start < query.size()) {
    size_t amp = query.find('&', start);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view pair = query.substr(start, amp - start);
    start = amp + 1;
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    GRANARY_ASSIGN_OR_RAISE(std::string key, PercentDecode(pair.substr(0, eq)));
    std::string value;
    if (eq != std::string_view::npos) {
      GRANARY_ASSIGN_OR_RAISE(value, PercentDecode(pair.substr(eq + 1)));
    }
    out[std::move(key)] = std::move(value);
  }
  return out;
}

ConsoleService::ConsoleService(ConsoleOptions options) : options_(std::move(options)) {}

ConsoleService::~ConsoleService() {
  if (pool_) pool_->join();
  if (stats_pool_) stats_pool_->join();
}

Result<std::unique_ptr<ConsoleService>> ConsoleService::Make(ConsoleOptions options) {
  if (options.max_staleness.micros <= 0) {
    return Status::InvalidArgument("the staleness threshold must be longer than 0 (e.g. 1d)");
  }
  // The registry must exist: a console over nothing would only show errors.
  GRANARY_RETURN_NOT_OK(OpenRegistry(options.repository, OpenMode::kOpenExisting).status());
  std::unique_ptr<ConsoleService> service(new ConsoleService(std::move(options)));
  service->pool_ =
      std::make_unique<boost::asio::thread_pool>(std::max(1, service->options_.blocking_threads));
  service->stats_pool_ =
      std::make_unique<boost::asio::thread_pool>(std::max(1, service->options_.stats_threads));
  ConsoleService* self = service.get();
  boost::asio::thread_pool* pages = self->pool_.get();
  self->Register("/api/registry", pages,
                 [self](const std::string&) { return self->RegistryJson(); });
  self->Register("/api/history", pages,
                 [self](const std::string&) { return self->HistoryJson(kHistoryVersions); });
  self->Register("/api/freshness", pages,
                 [self](const std::string&) { return self->FreshnessJson(); });
  self->Register("/api/serving", pages, [self](const std::string&) { return self->ServingJson(); });
  self->Register("/api/stats", self->stats_pool_.get(),
                 [self](const std::string& q) { return self->StatsJson(q); });
  return service;
}

void ConsoleService::Register(std::string path, boost::asio::thread_pool* pool,
                              std::function<Result<std::string>(const std::string&)> answer) {
  endpoints_.push_back(
      {"GET", std::move(path),
       [pool, answer = std::move(answer)](ServiceRequest& request, ServiceRespond respond) {
         boost::asio::post(*pool, [answer, query = request.query, respond = std::move(respond)] {
           Result<std::string> body = answer(query);
           if (!body.ok()) return respond(ServiceReply::Error(body.status()));
           respond(ServiceReply::Ok(std::move(*body)));
         });
       }});
}

Result<std::string> ConsoleService::ServingJson() {
  JsonWriter w;
  w.StartObject();
  w.Key("server");
  if (options_.server_url.empty()) {
    w.Null();
    w.Key("note");
    w.String(
        "no feature server given: start granary ui with --server http://HOST:PORT (the address "
        "granary serve logs) to see its health and metrics here");
    w.EndObject();
    return w.Release();
  }
  w.String(options_.server_url);
  auto health = GetFromServer(options_, "/health");
  w.Key("reachable");
  w.Bool(health.ok());
  if (!health.ok()) {
    w.Key("error");
    w.String(health.status().message());
    w.EndObject();
    return w.Release();
  }
  w.Key("health");
  auto parsed = ParseJson(*health);
  const boost::json::value* error = parsed.ok() ? JsonMember(*parsed, "error") : nullptr;
  if (error != nullptr && JsonMember(*parsed, "status") == nullptr) {
    // Not a health report but the server's load shedding (a 503 with an error body, given before
    // /health runs): the server is up and overloaded.
    const boost::json::value* message = JsonMember(*error, "message");
    w.StartObject();
    w.Key("status");
    w.String("overloaded");
    w.Key("message");
    w.String(message != nullptr && message->is_string() ? JsonStringView(message->as_string())
                                                        : std::string_view(*health));
    w.EndObject();
  } else if (parsed.ok()) {
    w.RawValue(*health);
  } else {
    w.Null();
  }
  auto history = GetFromServer(options_, "/metrics/history");
  w.Key("history");
  if (history.ok() && ParseJson(*history).ok()) {
    w.RawValue(*history);
  } else {
    w.Null();
    w.Key("error");
    w.String(history.ok() ? "GET /metrics/history answered something that is not JSON"
                          : history.status().message());
  }
  w.EndObject();
  return w.Release();
}

Result<std::shared_ptr<OfflineEngine>> ConsoleService::Offline() {
  MutexLock lock(&engine_mu_);
  if (offline_ == nullptr) {
    GRANARY_ASSIGN_OR_RAISE(std::unique_ptr<OfflineEngine> engine,
                            OpenOfflineEngine(options_.repository));
    offline_ = std::move(engine);
  }
  return offline_;
}

Result<std::string> ConsoleService::StatsJson(const std::string& query) {
  GRANARY_ASSIGN_OR_RAISE(auto params, ParseQueryString(query));
  const std::string view_name = params["view"];
  if (view_name.empty()) {
    return Status::InvalidArgument("GET /api/stats needs ?view=NAME (a feature view)");
  }
  const RepoConfig& config = options_.repository;
  GRANARY_ASSIGN_OR_RAISE(auto registry, OpenRegistry(config, OpenMode::kOpenExisting));
  GRANARY_ASSIGN_OR_RAISE(auto latest, registry->Latest());
  if (!latest) return Status::FailedPrecondition("nothing applied yet: run 'granary apply'");
  auto definitions = std::make_shared<const Definitions>(std::move(latest->definitions));
  const FeatureView* view = definitions->FindFeatureView(view_name);
  if (view == nullptr) {
    return Status::NotFound(fmt::format("no feature view '{}' in registry version {}", view_name,
                                        latest->info.version));
  }
  FeatureStatsOptions stats_options;
  for (const char* bound : {"start", "end"}) {
    const std::string& text = params[bound];
    if (text.empty()) continue;
    auto t = ParseTimestamp(text);
    if (!t.ok()) return t.status().WithContext(fmt::format("?{}=", bound));
    (std::string_view(bound) == "start" ? stats_options.start : stats_options.end) = *t;
  }
  if (const std::string& bins = params["bins"]; !bins.empty()) {
    // The whole value: "5abc" is refused, not read as 5.
    const char* end = bins.data() + bins.size();
    auto [stop, error] = std::from_chars(bins.data(), end, stats_options.histogram_bins);
    if (error != std::errc() || stop != end) {
      return Status::InvalidArgument(
          fmt::format("?bins={} is not a number of bins (1 to 1000)", bins));
    }
  }
  const std::string key = fmt::format("{}|{}|{}|{}|{}", latest->info.version, view_name,
                                      params["start"], params["end"], stats_options.histogram_bins);
  if (params["refresh"].empty()) {
    MutexLock lock(&cache_mu_);
    auto it = stats_cache_.find(key);
    if (it != stats_cache_.end()) {
      return fmt::format(
          "{{\"cached\":true,\"computed_at\":\"{}\",\"registry_version\":{},"
          "\"stats\":{}}}",
          FormatTimestamp(it->second.computed_at), latest->info.version, it->second.json);
    }
  }
  GRANARY_ASSIGN_OR_RAISE(std::shared_ptr<OfflineEngine> engine, Offline());
  GRANARY_ASSIGN_OR_RAISE(auto report,
                          engine->FeatureStatistics(*definitions, *view, stats_options));
  std::string sample, note;
  auto online = ReadOnlineSample(config, definitions, *view, report, options_.clock);
  if (online.ok()) {
    sample = std::move(*online);
  } else {
    note = online.status().message();
  }
  CachedStats cached{FeatureStatsJson(report, sample, note), options_.clock->Now()};
  std::string out = fmt::format(
      "{{\"cached\":false,\"computed_at\":\"{}\",\"registry_version\":{},\"stats\":{}}}",
      FormatTimestamp(cached.computed_at), latest->info.version, cached.json);
  MutexLock lock(&cache_mu_);
  if (stats_cache_.size() >= kStatsCacheEntries) stats_cache_.erase(stats_cache_.begin());
  stats_cache_[key] = std::move(cached);
  return out;
}

}  // namespace granary
