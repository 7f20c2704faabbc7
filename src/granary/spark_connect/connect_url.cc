#include "granary/spark_connect/connect_url.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace granary::spark_connect {
namespace {

constexpr std::string_view kForm = "sc://HOST[:PORT][/;NAME=VALUE;...]";

Result<std::string> PercentDecode(std::string_view text, std::string_view url) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    int value = 0;
    if (i + 2 >= text.size() ||
        std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16).ptr !=
            text.data() + i + 3) {
      return Status::InvalidArgument(fmt::format(
          "Spark Connect URL '{}': '{}' has a '%' not followed by two hex digits", url, text));
    }
    out.push_back(static_cast<char>(value));
    i += 2;
  }
  return out;
}

bool IsTrue(std::string_view v) {
  std::string lower(v);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return lower == "true" || lower == "1" || lower == "yes";
}

}  // namespace

std::string ConnectOptions::Describe() const { return fmt::format("sc://{}:{}", host, port); }

Result<ConnectOptions> ParseConnectUrl(std::string_view url) {
  // Never echo a token back: messages show the URL up to its parameters.
  std::string_view shown = url.substr(0, url.find(';'));
  constexpr std::string_view kScheme = "sc://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    return Status::InvalidArgument(fmt::format(
        "Spark Connect URL '{}' must start with sc:// (the form is {}, e.g. sc://127.0.0.1:15002)",
        shown, kForm));
  }
  std::string_view rest = url.substr(kScheme.size());
  size_t params_at = rest.find(';');
  std::string_view authority = rest.substr(0, params_at);
  std::string_view params = params_at == std::string_view::npos ? "" : rest.substr(params_at + 1);
  if (!authority.empty() && authority.back() == '/') authority.remove_suffix(1);
  if (authority.find('/') != std::string_view::npos) {
    return Status::InvalidArgument(
        fmt::format("Spark Connect URL '{}' has a path; the form is {}", shown, kForm));
  }
  ConnectOptions out;
  size_t colon = authority.rfind(':');
  std::string_view host = authority.substr(0, colon);
  if (colon != std::string_view::npos) {
    std::string_view port = authority.substr(colon + 1);
    int value = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || value <= 0 ||
        value > 65535) {
      return Status::InvalidArgument(fmt::format(
          "Spark Connect URL '{}': port '{}' is not a number from 1 to 65535", shown, port));
    }
    out.port = value;
  }
  if (host.empty()) {
    return Status::InvalidArgument(
        fmt::format("Spark Connect URL '{}' names no host; the form is {}", shown, kForm));
  }
  out.host = std::string(host);
  bool ssl_asked = false;
  bool ssl_refused = false;
  while (!params.empty()) {
    size_t end = params.find(';');
    std::string_view param = params.substr(0, end);
    params = end == std::string_view::npos ? "" : params.substr(end + 1);
    if (param.empty()) continue;
    size_t eq = param.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return Status::InvalidArgument(fmt::format(
          "Spark Connect URL '{}': parameter '{}' is not NAME=VALUE", shown, param.substr(0, eq)));
    }
    std::string name(param.substr(0, eq));
    GRANARY_ASSIGN_OR_RAISE(std::string value, PercentDecode(param.substr(eq + 1), shown));
    if (name == "token") {
      out.token = value;
    } else if (name == "use_ssl") {
      ssl_asked = IsTrue(value);
      ssl_refused = !ssl_asked;
    } else if (name == "user_id") {
      out.user_id = value;
    } else if (name == "user_agent") {
      out.user_agent = value;
    } else if (name == "session_id") {
      out.session_id = value;
    } else {
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      out.headers.emplace_back(std::move(name), std::move(value));
    }
  }
  if (!out.token.empty() && ssl_refused) {
    return Status::InvalidArgument(fmt::format(
        "Spark Connect URL '{}': a token needs TLS and use_ssl=false turns it off; remove "
        "use_ssl=false (a token is only sent over TLS)",
        shown));
  }
  out.use_ssl = ssl_asked || !out.token.empty();
  return out;
}

}  // namespace granary::spark_connect
