// Feast's gRPC serving API (feast.serving.ServingService: GetOnlineFeatures, GetFeastServingInfo,
// as Feast's Java and Go clients call it) beside the HTTP server, over the same FeatureServer:
// the same online store, registry snapshots, limits (max entities), metrics and bearer token
// (gRPC metadata `authorization: Bearer <token>`). docs/SERVING.md, "gRPC".
//
// Threads: gRPC's callback API parses and resolves a request on its own threads; the store read
// (OnlineStore::AsyncRead) runs on one of this server's io_contexts (one thread each, taken in
// turn), whose Redis connections it owns, and the answer is sent from there.
//
// Errors map to gRPC codes: InvalidArgument -> INVALID_ARGUMENT, Unavailable -> UNAVAILABLE,
// FailedPrecondition -> FAILED_PRECONDITION, NotFound -> NOT_FOUND, a missing or wrong token ->
// UNAUTHENTICATED, anything else -> INTERNAL; the message is the Status message.
//
// Lifetime (as the HTTP server's): Stop() (drains, then stops the io_contexts) before destroying
// the FeatureServer and the store; destroy the GrpcServer (its io_contexts) after the store.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "granary/common/result.h"
#include "granary/serving/service.h"

namespace granary::serving {

struct GrpcServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;         // 0: any free port (see GrpcServer::port())
  int threads = 0;           // io_contexts for store reads; 0: one per core
  std::string bearer_token;  // empty: none required
  std::chrono::milliseconds drain_timeout{10'000};
  // Largest request message, in bytes (gRPC's default is 4 MiB).
  int max_message_bytes = 4 << 20;
};

class GrpcServer {
 public:
  // Binds and starts serving `context` (borrowed: it must outlive Stop()). InvalidArgument or
  // IOError naming the address when the port cannot be bound.
  static Result<std::unique_ptr<GrpcServer>> Start(const GrpcServerOptions& options,
                                                   ServingContext& context);
  ~GrpcServer();  // Stop()s if needed

  uint16_t port() const;
  // Graceful stop, idempotent: refuses new calls, lets calls in flight finish up to the drain
  // timeout (then cancels them), then stops the io_contexts' threads.
  void Stop();

  struct Impl;

 private:
  explicit GrpcServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace granary::serving
