#include "granary/serving/flight/offline_flight_server.h"

#include <arrow/api.h>
#include <arrow/flight/server.h>
#include <arrow/util/byte_size.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <utility>
#include <vector>

#include "granary/common/cancel.h"
#include "granary/offline/offline_engine.h"
#include "granary/registry/registry_factory.h"
#include "granary/registry/registry_store.h"
#include "granary/serving/flight/feast_offline_command.h"
#include "granary/serving/http/http_server.h"

namespace granary::serving {
namespace flight = arrow::flight;

namespace {

// The size of the result's messages, in bytes of Arrow buffers.
constexpr int64_t kMessageBytes = 8 << 20;

arrow::Status ToArrow(const Status& st) {
  const std::string& m = st.message();
  switch (st.code()) {
    case StatusCode::kOk:
      return arrow::Status::OK();
    case StatusCode::kInvalidArgument:
    case StatusCode::kFailedPrecondition:
      return arrow::Status::Invalid(m);
    case StatusCode::kNotFound:
      return arrow::Status::KeyError(m);
    case StatusCode::kNotImplemented:
      return arrow::Status::NotImplemented(m);
    case StatusCode::kUnavailable:
      return flight::MakeFlightError(flight::FlightStatusCode::Unavailable, m);
    case StatusCode::kCancelled:
      return flight::MakeFlightError(flight::FlightStatusCode::Cancelled, m);
    default:
      return flight::MakeFlightError(flight::FlightStatusCode::Internal,
                                     fmt::format("{}: {}", StatusCodeName(st.code()), m));
  }
}

Result<Definitions> LatestDefinitions(const RepoConfig& config) {
  GRANARY_ASSIGN_OR_RAISE(auto store, OpenRegistry(config, OpenMode::kOpenExisting));
  GRANARY_ASSIGN_OR_RAISE(RegistryVersion latest, LatestApplied(*store));
  return std::move(latest.definitions);
}

// Sets `flag` once the Flight call's client has gone away (polled: Flight has no callback).
class ClientWatch {
 public:
  ClientWatch(const flight::ServerCallContext& context, CancelFlag& flag)
      : thread_([&context, &flag](std::stop_token stop) {
          while (!stop.stop_requested()) {
            if (context.is_cancelled()) {
              flag.Cancel();
              return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
          }
        }) {}

 private:
  std::jthread thread_;
};

}  // namespace

class OfflineFlightServer::Service : public flight::FlightServerBase {
 public:
  Service(RepoConfig config, OfflineFlightServerOptions options,
          std::unique_ptr<OfflineEngine> engine)
      : config_(std::move(config)), options_(std::move(options)), engine_(std::move(engine)) {}

  arrow::Status DoExchange(const flight::ServerCallContext& context,
                           std::unique_ptr<flight::FlightMessageReader> reader,
                           std::unique_ptr<flight::FlightMessageWriter> writer) override {
    ARROW_RETURN_NOT_OK(Authorize(context));
    const flight::FlightDescriptor& descriptor = reader->descriptor();
    if (descriptor.type != flight::FlightDescriptor::CMD) {
      return arrow::Status::Invalid(
          "Granary's offline server takes command descriptors (Feast's remote offline store "
          "sends FlightDescriptor.for_command(JSON)), not a path descriptor");
    }
    auto command = ParseFeastOfflineCommand(descriptor.cmd);
    if (!command.ok()) return ToArrow(command.status());
    if (!command->historical.has_value()) {
      return arrow::Status::NotImplemented(UnsupportedFeastOfflineApi(command->api));
    }
    return ToArrow(GetHistoricalFeatures(context, *command->historical, *reader, *writer));
  }

  arrow::Status DoPut(const flight::ServerCallContext& context,
                      std::unique_ptr<flight::FlightMessageReader> reader,
                      std::unique_ptr<flight::FlightMetadataWriter>) override {
    ARROW_RETURN_NOT_OK(Authorize(context));
    const flight::FlightDescriptor& descriptor = reader->descriptor();
    if (descriptor.type == flight::FlightDescriptor::CMD) {
      auto command = ParseFeastOfflineCommand(descriptor.cmd);
      if (!command.ok()) return ToArrow(command.status());
      if (command->historical.has_value()) {
        return arrow::Status::NotImplemented(
            "get_historical_features over DoPut, then GetFlightInfo and DoGet, is the protocol "
            "of Feast before 0.67; Granary serves Feast 0.67's (one DoExchange): use the "
            "pinned feast version (requirements-feast.lock)");
      }
      return arrow::Status::NotImplemented(UnsupportedFeastOfflineApi(command->api));
    }
    return Unsupported("DoPut");
  }

  arrow::Status ListFlights(const flight::ServerCallContext& context, const flight::Criteria*,
                            std::unique_ptr<flight::FlightListing>*) override {
    ARROW_RETURN_NOT_OK(Authorize(context));
    return Unsupported("ListFlights");
  }
  arrow::Status GetFlightInfo(const flight::ServerCallContext& context,
                              const flight::FlightDescriptor&,
                              std::unique_ptr<flight::FlightInfo>*) override {
    ARROW_RETURN_NOT_OK(Authorize(context));
    return Unsupported("GetFlightInfo");
  }
  arrow::Status PollFlightInfo(const flight::ServerCallContext& context,
                               const flight::FlightDescriptor&,
                               std::unique_ptr<flight::PollInfo>*) override {
    ARROW_RETURN_NOT_OK(Authorize(context));
    return Unsupported("PollFlightInfo");
  }
  arrow::Status GetSchema(const flight::ServerCallContext& context, const flight::FlightDescriptor&,
                          std::unique_ptr<flight::SchemaResult>*) override {
    ARROW_RETURN_NOT_OK(Authorize(context));
    return Unsupported("GetSchema");
  }
  arrow::Status DoGet(const flight::ServerCallContext& context, const flight::Ticket&,
                      std::unique_ptr<flight::FlightDataStream>*) override {
    ARROW_RETURN_NOT_OK(Authorize(context));
    return Unsupported("DoGet");
  }
  arrow::Status DoAction(const flight::ServerCallContext& context, const flight::Action& action,
                         std::unique_ptr<flight::ResultStream>*) override {
    ARROW_RETURN_NOT_OK(Authorize(context));
    return Unsupported(fmt::format("DoAction '{}'", action.type));
  }
  arrow::Status ListActions(const flight::ServerCallContext& context,
                            std::vector<flight::ActionType>* actions) override {
    ARROW_RETURN_NOT_OK(Authorize(context));
    actions->clear();  // none
    return arrow::Status::OK();
  }

 private:
  arrow::Status Authorize(const flight::ServerCallContext& context) const {
    if (options_.bearer_token.empty()) return arrow::Status::OK();
    const flight::CallHeaders& headers = context.incoming_headers();
    auto it = headers.find("authorization");
    if (it != headers.end() && http::BearerMatches(it->second, options_.bearer_token)) {
      return arrow::Status::OK();
    }
    return flight::MakeFlightError(
        flight::FlightStatusCode::Unauthenticated,
        "missing or wrong bearer token; send the header 'authorization: Bearer <token>' given "
        "to granary serve-offline (a Feast client: auth: {type: kubernetes, user_token: "
        "<token>} in its feature_store.yaml)");
  }

  static arrow::Status Unsupported(std::string_view call) {
    return arrow::Status::NotImplemented(fmt::format(
        "Granary's offline server does not serve {}: it serves Feast 0.67's remote offline "
        "store, whose get_historical_features is one DoExchange with a command descriptor",
        call));
  }

  // The uploaded entity rows, bounded by max_entity_bytes.
  Result<std::shared_ptr<arrow::Table>> ReadEntities(flight::FlightMessageReader& reader) const {
    auto schema = reader.GetSchema();
    if (!schema.ok()) {
      return Status::InvalidArgument(
          "reading the entity rows the client uploaded: " + schema.status().message() +
          " (Feast's client uploads the entity_df as an Arrow table before reading the result)");
    }
    std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
    int64_t bytes = 0;
    while (true) {
      auto chunk = reader.Next();
      if (!chunk.ok()) {
        return Status::InvalidArgument("reading the entity rows the client uploaded: " +
                                       chunk.status().message());
      }
      if (chunk->data == nullptr) {
        if (chunk->app_metadata == nullptr) break;  // end of the upload
        continue;
      }
      bytes += arrow::util::TotalBufferSize(*chunk->data);
      if (bytes > options_.max_entity_bytes) {
        return Status::InvalidArgument(fmt::format(
            "the entity rows uploaded are larger than {} bytes (--max-entity-bytes): split the "
            "entity_df, or raise the bound",
            options_.max_entity_bytes));
      }
      batches.push_back(std::move(chunk->data));
    }
    return UploadedEntityTable(*schema, batches);
  }

  Status GetHistoricalFeatures(const flight::ServerCallContext& context,
                               const FeastHistoricalCommand& command,
                               flight::FlightMessageReader& reader,
                               flight::FlightMessageWriter& writer) {
    GRANARY_ASSIGN_OR_RAISE(std::shared_ptr<arrow::Table> entities, ReadEntities(reader));
    GRANARY_ASSIGN_OR_RAISE(Definitions defs, LatestDefinitions(config_));
    if (command.project != config_.project) {
      return Status::InvalidArgument(fmt::format(
          "the client asks for project '{}' but this server serves '{}': set `project: {}` in "
          "the client's feature_store.yaml, or start granary serve-offline in that project's "
          "repository",
          command.project, config_.project, config_.project));
    }
    HistoricalRequest request;
    request.features = command.features;
    request.full_feature_names = command.full_feature_names;
    if (IsFeastPlaceholder(*entities)) {
      if (!command.entity_df_sql.empty()) {
        if (!engine_->capabilities().entity_sql) {
          return Status::NotImplemented(fmt::format(
              "entity_df is a SQL query, which {} cannot run (offline_store type spark can): "
              "pass a pandas DataFrame",
              engine_->Describe()));
        }
        request.entity_sql = command.entity_df_sql;
      } else {
        return Status::NotImplemented(
            "get_historical_features without entity_df (a start_date/end_date range) is not "
            "served: Granary builds training sets from entity rows; pass an entity_df of join "
            "keys and event_timestamp");
      }
    } else {
      request.entities = std::move(entities);
      request.entities_name = "the entity_df the client uploaded";
    }
    CancelFlag cancel;
    request.cancel = &cancel;
    ClientWatch watch(context, cancel);
    // Resolve first, so a bad feature name fails before any data is read.
    GRANARY_ASSIGN_OR_RAISE(ResolvedFeatures resolved, ResolveFeatures(defs, request));
    GRANARY_RETURN_NOT_OK(CheckEngineSupports(*engine_, resolved));
    GRANARY_ASSIGN_OR_RAISE(auto stream, engine_->GetHistoricalFeatures(defs, request));
    arrow::Status st = writer.Begin(stream->schema());
    if (!st.ok()) return Status::IOError("starting the result stream: " + st.message());
    while (true) {
      GRANARY_ASSIGN_OR_RAISE(std::shared_ptr<arrow::RecordBatch> batch, stream->Next());
      if (batch == nullptr) break;
      // Messages of about kMessageBytes (zero-copy slices): the client gets the first rows
      // while later ones are still being sent, and no message nears Flight's 2 GiB limit
      // however large the engine's batch.
      const int64_t bytes = std::max<int64_t>(1, arrow::util::TotalBufferSize(*batch));
      const int64_t rows = batch->num_rows();
      const int64_t step = std::clamp<int64_t>(rows * kMessageBytes / bytes, 1, rows);
      for (int64_t offset = 0; offset < rows; offset += step) {
        st = writer.WriteRecordBatch(*batch->Slice(offset, step));
        if (!st.ok()) {
          if (context.is_cancelled()) {
            return Status(StatusCode::kCancelled, "the client went away");
          }
          return Status::IOError("sending the training set: " + st.message());
        }
      }
    }
    return Status::OK();
  }

  const RepoConfig config_;
  const OfflineFlightServerOptions options_;
  const std::unique_ptr<OfflineEngine> engine_;
};

Result<std::unique_ptr<OfflineFlightServer>> OfflineFlightServer::Start(
    const RepoConfig& config, const OfflineFlightServerOptions& options) {
  GRANARY_ASSIGN_OR_RAISE(auto engine, OpenOfflineEngine(config, options.engine));
  auto location = flight::Location::ForGrpcTcp(options.host, options.port);
  if (!location.ok()) {
    return Status::InvalidArgument(fmt::format("--host {} --port {}: {}", options.host,
                                               options.port, location.status().message()));
  }
  auto service = std::make_unique<Service>(config, options, std::move(engine));
  flight::FlightServerOptions server_options(*location);
  arrow::Status st = service->Init(server_options);
  if (!st.ok()) {
    return Status::IOError(fmt::format(
        "cannot listen on {}:{}: {} (is the port in use? pick another with --port, 0 for any "
        "free port)",
        options.host, options.port, st.message()));
  }
  return std::unique_ptr<OfflineFlightServer>(new OfflineFlightServer(std::move(service)));
}

OfflineFlightServer::OfflineFlightServer(std::unique_ptr<Service> service)
    : service_(std::move(service)) {}

OfflineFlightServer::~OfflineFlightServer() { Stop(); }

uint16_t OfflineFlightServer::port() const { return static_cast<uint16_t>(service_->port()); }

void OfflineFlightServer::Stop() {
  if (stopped_) return;
  stopped_ = true;
  (void)service_->Shutdown();
  (void)service_->Wait();
}

}  // namespace granary::serving
