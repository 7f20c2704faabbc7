// `granary serve-offline`: training sets over Arrow Flight, as Feast 0.67's remote offline store
// client asks for them (`offline_store: {type: remote, host, port}` in a Feast client's
// feature_store.yaml; protocol in feast_offline_command.h). Feast's
// `get_historical_features(...).to_df()` against this server gives the rows `granary
// get-historical-features` writes for the same entity rows: the same OfflineEngine call
// (GetHistoricalFeatures), whose batches are written to the Flight stream as the engine
// produces them (streaming: the training set is never held whole here). docs/FEAST.md.
//
// Served: DoExchange with api get_historical_features. Everything else Feast's client may send
// (its other apis, over DoExchange or DoPut) and the Flight calls Feast 0.67 does not use
// (GetFlightInfo, DoGet, ListFlights, DoAction, ...) answer UNIMPLEMENTED naming what is
// served. Malformed requests (not a command descriptor, not JSON, wrong types, an entity table
// without the columns the features need) answer INVALID_ARGUMENT; nothing a client sends stops
// the server.
//
// Errors map to Flight codes: InvalidArgument -> INVALID_ARGUMENT, NotFound -> NOT_FOUND,
// NotImplemented -> UNIMPLEMENTED, Unavailable -> UNAVAILABLE (Feast's client retries those),
// Cancelled -> CANCELLED, a missing or wrong token -> UNAUTHENTICATED, anything else -> INTERNAL;
// the message is the Status message.
//
// Threads: Flight's gRPC server runs each call on its own thread; the OfflineEngine is
// thread-safe (offline_engine.h) and each call reads the latest applied definitions from the
// registry, so an apply is seen by the next call. A call whose client goes away cancels its
// retrieval at the engine's next poll.
//
// Libraries: Arrow Flight is the pyarrow wheel's libarrow_flight, which carries its own gRPC,
// protobuf and Abseil with hidden symbols (it exports only arrow::flight and OpenTelemetry
// symbols: `nm -D --defined-only`), so it shares the `granary` binary with Debian's gRPC
// (serve --grpc-port) without a clash.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "granary/common/result.h"
#include "granary/offline/engine_factory.h"
#include "granary/registry/repo_config.h"

namespace granary::serving {

struct OfflineFlightServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;         // 0: any free port (see OfflineFlightServer::port())
  std::string bearer_token;  // empty: none required; else header `authorization: Bearer <token>`
  // The largest entity table a client may upload, in bytes of Arrow buffers.
  int64_t max_entity_bytes = int64_t{1} << 30;
  OfflineEngineOptions engine;  // memory budget, threads, spill folder of the embedded engine
};

class OfflineFlightServer {
 public:
  // Opens the offline engine of `config` and binds. InvalidArgument or IOError naming the
  // address when the port cannot be bound; the engine's errors when it cannot be opened.
  static Result<std::unique_ptr<OfflineFlightServer>> Start(
      const RepoConfig& config, const OfflineFlightServerOptions& options);
  ~OfflineFlightServer();  // Stop()s if needed

  uint16_t port() const;
  // Refuses new calls, waits for calls in flight, then returns. Idempotent.
  void Stop();

  class Service;

 private:
  explicit OfflineFlightServer(std::unique_ptr<Service> service);
  std::unique_ptr<Service> service_;
  bool stopped_ = false;
};

}  // namespace granary::serving
