#include "granary/serving/http/http_client.h"

#include <fmt/format.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <limits>
#include <optional>

namespace granary::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

struct HostPort {
  std::string host;  // without brackets
  std::string port;
};

Result<HostPort> ParseUrl(const std::string& url) {
  constexpr std::string_view kScheme = "http://";
  auto bad = [&] {
    return Status::InvalidArgument(
        fmt::format("'{}' is not a server address; write http://HOST:PORT", url));
  };
  if (!url.starts_with(kScheme)) return bad();
  std::string rest = url.substr(kScheme.size());
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  HostPort out;
  size_t colon;
  if (rest.starts_with("[")) {
    const size_t close = rest.find(']');
    if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return bad();
    }
    out.host = rest.substr(1, close - 1);
    colon = close + 1;
  } else {
    colon = rest.rfind(':');
    if (colon == std::string::npos) return bad();
    out.host = rest.substr(0, colon);
  }
  out.port = rest.substr(colon + 1);
  int port = 0;
  auto [end, ec] = std::from_chars(out.port.data(), out.port.data() + out.port.size(), port);
  if (out.host.empty() || ec != std::errc() || end != out.port.data() + out.port.size() ||
      port <= 0 || port > 65535) {
    return bad();
  }
  return out;
}

}  // namespace

Result<ClientResponse> HttpCall(const ClientRequest& request, const std::atomic<bool>* cancelled) {
  GRANARY_ASSIGN_OR_RAISE(HostPort where, ParseUrl(request.url));
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::flat_buffer buffer;
  bhttp::request<bhttp::string_body> req(bhttp::string_to_verb(request.method), request.path, 11);
  req.set(bhttp::field::host, where.host);
  req.set(bhttp::field::user_agent, "granary");
  for (const auto& [name, value] : request.headers) req.set(name, value);
  req.body() = request.body;
  req.prepare_payload();
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());

  std::optional<beast::error_code> outcome;
  std::string stage = "connect to";
  tcp::resolver resolver(ioc);
  beast::error_code resolve_ec;
  const auto endpoints = resolver.resolve(where.host, where.port, resolve_ec);
  if (resolve_ec) {
    return Status::Unavailable(
        fmt::format("cannot resolve {}: {}", request.url, resolve_ec.message()));
  }
  stream.expires_after(request.connect_timeout);
  stream.async_connect(endpoints, [&](beast::error_code ec, const tcp::endpoint&) {
    if (ec) return outcome.emplace(ec), void();
    stream.expires_never();  // the answer may take as long as the work
    stage = "send the request to";
    bhttp::async_write(stream, req, [&](beast::error_code ec, size_t) {
      if (ec) return outcome.emplace(ec), void();
      stage = "read the answer of";
      bhttp::async_read(stream, buffer, parser,
                        [&](beast::error_code ec, size_t) { outcome.emplace(ec); });
    });
  });
  while (!outcome) {
    if (cancelled != nullptr && cancelled->load()) {
      beast::error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
      stream.close();
      return Status::Cancelled(fmt::format("stopped waiting for {}{}", request.url, request.path));
    }
    ioc.run_for(std::chrono::milliseconds(100));
    if (ioc.stopped() && !outcome) ioc.restart();
  }
  if (*outcome) {
    return Status::Unavailable(
        fmt::format("cannot {} the server at {}: {}", stage, request.url, outcome->message()));
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  ClientResponse response;
  response.status = static_cast<int>(parser.get().result_int());
  for (const auto& field : parser.get()) {
    const auto name = field.name_string();
    const auto value = field.value();
    response.headers.emplace_back(std::string(name.data(), name.size()),
                                  std::string(value.data(), value.size()));
  }
  response.body = std::move(parser.get().body());
  return response;
}

const std::string* ClientResponse::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (beast::iequals(key, beast::string_view(name.data(), name.size()))) return &value;
  }
  return nullptr;
}

}  // namespace granary::http
