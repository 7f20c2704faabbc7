// HttpCall: one blocking HTTP/1.1 request over a new connection, for the CLI and the SDK to hand
// work to a running feature server on this machine (materialize_handoff.h). It knows no domain.
//
// The answer may take as long as the work (a materialization of hours): there is no read
// timeout, only a connect timeout; `cancelled` (polled about every 100 ms) gives up instead, and
// closes the connection. Thread-safe: every call has its own io_context and connection.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "granary/common/result.h"

namespace granary::http {

struct ClientResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // as received, in order
  std::string body;

  // The value of the first header named `name` (case-insensitive), or nullptr.
  const std::string* Header(std::string_view name) const;
};

struct ClientRequest {
  std::string method = "POST";
  std::string url;   // "http://127.0.0.1:6566" or "http://[::1]:6566"
  std::string path;  // "/materialize-incremental"
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds connect_timeout{5'000};
};

// The server's answer, whatever its status code. Unavailable when the server cannot be reached
// (refused, timed out, closed before answering), naming the URL; Cancelled when `cancelled`
// (may be null) became true first; InvalidArgument for a URL that is not http://host:port.
Result<ClientResponse> HttpCall(const ClientRequest& request, const std::atomic<bool>* cancelled);

}  // namespace granary::http
