// Handing a materialization to the running feature server of the repository.
//
// The embedded online store (RocksDB) admits one writing process. While `granary serve` holds
// it, a `granary materialize`, `materialize-incremental` or an SDK materialize() of the same
// repository cannot open it; instead it finds the server through its record beside the registry
// (server_record.h), sends the run to POST /materialize or /materialize-incremental with "wait":
// true, and returns the server's report as if the run had been local: the same views, counts,
// statuses and watermarks, a failed view as a failed view. The run is the server's: it uses the
// server's memory budget and writers, and is recorded in the run history with the trigger
// "server".
//
// A server shedding load (admission control: 503 with Retry-After, docs/SERVING.md) has not
// started the run, so the run is sent again after the time the server asks for (at most 60 s;
// a Retry-After that is not a number of seconds waits 1 s), up to `overload_retries` times;
// then the handoff fails with Unavailable saying the run was not started. A 503 without
// Retry-After is the server's answer about the run itself and is not retried.
//
// With Redis (any process may write) or without a live server, nothing is handed off.
// Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "granary/common/result.h"
#include "granary/materialize/materializer.h"
#include "granary/registry/repo_config.h"
#include "granary/serving/server_record.h"

namespace granary {

// One more attempt after the server shed the run (503 with Retry-After).
struct HandoffRetry {
  int retry = 0;                 // 1 for the first retry
  int retries = 0;               // the bound (HandoffOptions::overload_retries)
  std::chrono::seconds wait{0};  // before it is sent again
  std::string message;           // the server's, e.g. "the server is overloaded: ..."
};

struct HandoffOptions {
  // The server's bearer token, when it requires one (GRANARY_SERVE_TOKEN, as for the server).
  std::string token;
  // Stops waiting when set (the run goes on in the server, or was never started while waiting
  // to retry); may be null.
  const std::atomic<bool>* cancelled = nullptr;
  // Called each time the run is about to be sent (again, after a retry's wait), with the server
  // it goes to (the CLI says so).
  std::function<void(const RunningServer&)> on_handoff;
  // How many times a run shed with 503 and Retry-After is sent again before the handoff fails.
  int overload_retries = 5;
  // Called before each such retry's wait (the CLI prints what it does); may be empty.
  std::function<void(const RunningServer&, const HandoffRetry&)> on_retry;
};

// The server's report of `request` when the repository's embedded store is held by a live
// server; nullopt when the run should be local (Redis, or no server). Errors: the server's own
// refusal (InvalidArgument for a bad view, AlreadyExists while another run holds the repository,
// ... with the server's message), FailedPrecondition when a token is needed and missing or
// refused, Unavailable when the server cannot be reached or was still overloaded after the
// retries, Cancelled when `cancelled` was set.
Result<std::optional<MaterializeReport>> MaterializeThroughServer(const RepoConfig& config,
                                                                  const MaterializeRequest& request,
                                                                  const HandoffOptions& options);

}  // namespace granary
