// The Spark Connect connection string, as Spark's own clients and Databricks Connect write it:
//
//   sc://HOST[:PORT][/][;NAME=VALUE]...
//
// PORT defaults to 15002. Parameters (values percent-decoded; names case-sensitive):
//   token=T        a bearer token, sent as `authorization: Bearer T` on every call. Spark's rule,
//                  kept here: a token implies TLS (use_ssl=true), so that it never crosses the
//                  network in clear; Databricks workspaces serve TLS on 443.
//   use_ssl=true   TLS (the system's root certificates).
//   user_id=U      the user the session runs as (UserContext.user_id; default: $USER).
//   user_agent=A   the client type reported to the server (default "granary").
//   session_id=S   join an existing session (a UUID); default: a new random one per client.
//   any other      sent as a gRPC header on every call, e.g. Databricks'
//                  `x-databricks-cluster-id=0123-456789-abcdefgh` (which cluster of the workspace
//                  runs the session) or `x-databricks-session-id`.
// Thread-compatible value types.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "granary/common/result.h"

namespace granary::spark_connect {

inline constexpr int kDefaultSparkConnectPort = 15002;

struct ConnectOptions {
  std::string host;
  int port = kDefaultSparkConnectPort;
  bool use_ssl = false;
  std::string token;  // empty: no authorization header
  std::string user_id;
  std::string user_agent = "granary";
  std::string session_id;  // empty: a new UUID when the client is opened
  // Every other parameter, in the order written: gRPC headers (names lower-cased, as gRPC needs).
  std::vector<std::pair<std::string, std::string>> headers;

  // "sc://host:port" (never the token): for messages.
  std::string Describe() const;
};

// Parses a connection string; InvalidArgument naming the part that is wrong and the expected form.
Result<ConnectOptions> ParseConnectUrl(std::string_view url);

}  // namespace granary::spark_connect
