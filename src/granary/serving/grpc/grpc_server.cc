#include "granary/serving/grpc/grpc_server.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/proto_buffer_reader.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <thread>
#include <vector>

#include "feast/serving/ServingService.grpc.pb.h"
#include "granary/serving/grpc/feast_proto.h"
#include "granary/serving/grpc/feast_wire.h"
#include "granary/serving/http/http_server.h"

namespace granary::serving {
namespace {

constexpr const char* kGetOnlineFeatures = "/feast.serving.ServingService/GetOnlineFeatures";
constexpr const char* kGetServingInfo = "/feast.serving.ServingService/GetFeastServingInfo";

grpc::Status ToGrpc(const Status& st) {
  if (st.ok()) return grpc::Status::OK;
  grpc::StatusCode code = grpc::StatusCode::INTERNAL;
  switch (st.code()) {
    case StatusCode::kInvalidArgument:
      code = grpc::StatusCode::INVALID_ARGUMENT;
      break;
    case StatusCode::kUnavailable:
      code = grpc::StatusCode::UNAVAILABLE;
      break;
    case StatusCode::kFailedPrecondition:
      code = grpc::StatusCode::FAILED_PRECONDITION;
      break;
    case StatusCode::kNotFound:
      code = grpc::StatusCode::NOT_FOUND;
      break;
    default:
      break;
  }
  return grpc::Status(code, st.message());
}

using Clock = std::chrono::steady_clock;

// GetOnlineFeatures' request, parsed from its bytes on a protobuf arena: its entities' R Values
// are carved from one block instead of allocated one by one.
google::protobuf::ArenaOptions RequestArena() {
  google::protobuf::ArenaOptions options;
  options.start_block_size = 16 << 10;  // a request of a few hundred entities fits
  options.max_block_size = 1 << 20;
  return options;
}

// The answer's bytes handed to gRPC without a copy: the slice owns the string.
grpc::ByteBuffer OwnedBytes(std::string bytes) {
  auto* owned = new std::string(std::move(bytes));
  grpc::Slice slice(
      owned->data(), owned->size(), [](void* p) { delete static_cast<std::string*>(p); }, owned);
  return grpc::ByteBuffer(&slice, 1);
}

}  // namespace

// GetOnlineFeatures is a raw method: its request is parsed here and its answer written as
// protobuf's bytes (feast_wire.h) rather than built as a message for gRPC to serialize.
using ServiceBase = feast::serving::ServingService::WithCallbackMethod_GetFeastServingInfo<
    feast::serving::ServingService::WithRawCallbackMethod_GetOnlineFeatures<
        feast::serving::ServingService::Service>>;

struct GrpcServer::Impl final : public ServiceBase {
  GrpcServerOptions options;
  ServingContext* ctx = nullptr;
  std::unique_ptr<grpc::Server> server;
  int port = 0;

  using Guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  std::vector<std::unique_ptr<boost::asio::io_context>> ios;
  std::vector<Guard> guards;
  std::vector<std::thread> threads;
  std::atomic<size_t> next_io{0};
  bool stopped = false;

  // Metric series, looked up once (by code: on first use, so that /metrics lists only codes
  // that happened).
  struct MethodMetrics {
    const char* method = "";
    Histogram* latency = nullptr;
    std::atomic<Counter*> by_code[17] = {};  // by grpc::StatusCode
  };
  MethodMetrics online_metrics, info_metrics;

  void InitMetrics(MethodMetrics* m, const char* method) {
    m->method = method;
    m->latency = &ctx->metrics.registry->GetHistogram(
        "granary_grpc_request_duration_seconds",
        "Time from a gRPC call received to its answer's bytes handed to gRPC, by method.",
        LatencyBuckets(), {{"method", method}});
  }

  Counter* CodeCounter(MethodMetrics& m, int code) {
    static const char* kCodes[17] = {"OK",
                                     "CANCELLED",
                                     "UNKNOWN",
                                     "INVALID_ARGUMENT",
                                     "DEADLINE_EXCEEDED",
                                     "NOT_FOUND",
                                     "ALREADY_EXISTS",
                                     "PERMISSION_DENIED",
                                     "RESOURCE_EXHAUSTED",
                                     "FAILED_PRECONDITION",
                                     "ABORTED",
                                     "OUT_OF_RANGE",
                                     "UNIMPLEMENTED",
                                     "INTERNAL",
                                     "UNAVAILABLE",
                                     "DATA_LOSS",
                                     "UNAUTHENTICATED"};
    if (code < 0 || code >= 17) code = 2;  // UNKNOWN
    Counter* counter = m.by_code[code].load(std::memory_order_acquire);
    if (counter == nullptr) {
      // GetCounter returns the same series to racing threads.
      counter = &ctx->metrics.registry->GetCounter(
          "granary_grpc_requests_total", "gRPC calls answered, by method and status code.",
          {{"method", m.method}, {"code", kCodes[code]}});
      m.by_code[code].store(counter, std::memory_order_release);
    }
    return counter;
  }

  void Finish(grpc::ServerUnaryReactor* reactor, MethodMetrics& m, Clock::time_point started,
              const grpc::Status& status) {
    CodeCounter(m, static_cast<int>(status.error_code()))->Increment();
    m.latency->Observe(std::chrono::duration<double>(Clock::now() - started).count());
    reactor->Finish(status);
  }

  bool Authorized(grpc::CallbackServerContext* call) const {
    if (options.bearer_token.empty()) return true;
    const auto& metadata = call->client_metadata();
    auto it = metadata.find("authorization");
    if (it == metadata.end()) return false;
    return http::BearerMatches(std::string_view(it->second.data(), it->second.size()),
                               options.bearer_token);
  }

  grpc::Status Unauthenticated() const {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "missing or wrong bearer token; send the metadata 'authorization: Bearer "
                        "<token>' given to granary serve");
  }

  grpc::ServerUnaryReactor* GetFeastServingInfo(
      grpc::CallbackServerContext* call, const feast::serving::GetFeastServingInfoRequest*,
      feast::serving::GetFeastServingInfoResponse* response) override {
    const auto started = Clock::now();
    grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
    if (!Authorized(call)) {
      Finish(reactor, info_metrics, started, Unauthenticated());
      return reactor;
    }
    response->set_version(fmt::format("granary {}", GRANARY_VERSION));
    Finish(reactor, info_metrics, started, grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* GetOnlineFeatures(grpc::CallbackServerContext* call,
                                              const grpc::ByteBuffer* request_bytes,
                                              grpc::ByteBuffer* response) override {
    const auto started = Clock::now();
    grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
    if (!Authorized(call)) {
      Finish(reactor, online_metrics, started, Unauthenticated());
      return reactor;
    }
    auto fail = [&](const Status& st) {
      ctx->metrics.CountError(kGetOnlineFeatures, st);
      Finish(reactor, online_metrics, started, ToGrpc(st));
      return reactor;
    };
    google::protobuf::Arena arena(RequestArena());
    auto* request =
        google::protobuf::Arena::CreateMessage<feast::serving::GetOnlineFeaturesRequest>(&arena);
    {
      // The reader only reads the buffer's slices (gRPC's own deserializer takes it non-const).
      grpc::ProtoBufferReader reader(const_cast<grpc::ByteBuffer*>(request_bytes));
      if (!request->ParseFromZeroCopyStream(&reader)) {
        return fail(Status::InvalidArgument(
            "the request is not a feast.serving.GetOnlineFeaturesRequest (its protobuf bytes "
            "do not parse); send one built from Feast's ServingService.proto"));
      }
    }
    auto parsed = FromFeastProto(*request);
    if (!parsed.ok()) return fail(parsed.status());
    const size_t rows = parsed->entities.empty() ? 0 : parsed->entities.front().values.size();
    if (rows > ctx->options.max_entities) {
      return fail(Status::InvalidArgument(fmt::format(
          "the request asks for {} entity rows; the limit is {} per request (granary serve "
          "--max-entities); split it into several requests",
          rows, ctx->options.max_entities)));
    }
    std::shared_ptr<const ServingSnapshot> snapshot = ctx->registry->Current();
    auto resolved = snapshot->online->Resolve(*parsed);
    if (!resolved.ok()) return fail(resolved.status());
    ctx->metrics.entities_per_request->Observe(static_cast<double>(rows));

    auto shared = std::make_shared<ResolvedOnlineRequest>(std::move(*resolved));
    boost::asio::io_context& io = *ios[next_io.fetch_add(1) % ios.size()];
    boost::asio::post(io, [this, &io, reactor, response, started, shared,
                           snapshot = std::move(snapshot)]() mutable {
      const auto read_started = Clock::now();
      OnlineReadRequest read = shared->read;
      read.split = ctx->split.get();  // a large RocksDB read, as over HTTP
      ctx->store->AsyncRead(io.get_executor(), std::move(read),
                            [this, reactor, response, started, read_started, shared,
                             snapshot = std::move(snapshot)](Result<OnlineFeatures> features) {
                              Answer(reactor, response, started, read_started, *shared,
                                     std::move(features));
                            });
    });
    return reactor;
  }

  // Completes a GetOnlineFeatures call with the store's answer (on any thread).
  void Answer(grpc::ServerUnaryReactor* reactor, grpc::ByteBuffer* response,
              Clock::time_point started, Clock::time_point read_started,
              const ResolvedOnlineRequest& resolved, Result<OnlineFeatures> features) {
    ctx->metrics.store_read_seconds->Observe(
        std::chrono::duration<double>(Clock::now() - read_started).count());
    if (!features.ok()) {
      Status st = features.status();
      if (st.code() == StatusCode::kUnavailable) {
        st = st.WithContext(fmt::format("the online store ({}) is unavailable; retry later",
                                        ctx->store->Describe()));
      }
      ctx->metrics.CountError(kGetOnlineFeatures, st);
      return Finish(reactor, online_metrics, started, ToGrpc(st));
    }
    std::string bytes;
    WriteFeastResponse(resolved, *features, &bytes, ctx->split.get());  // as the JSON
    *response = OwnedBytes(std::move(bytes));
    Finish(reactor, online_metrics, started, grpc::Status::OK);
  }

  void StopAll() {
    if (stopped) return;
    stopped = true;
    if (server != nullptr) {
      server->Shutdown(std::chrono::system_clock::now() + options.drain_timeout);
      server->Wait();
    }
    // Every call is answered: nothing of ours runs on the io_contexts any more, but a store may
    // keep work there (Redis connections reading), so stop them rather than wait for idleness.
    guards.clear();
    for (auto& io : ios) io->stop();
    for (std::thread& t : threads) t.join();
    threads.clear();
  }
};

GrpcServer::GrpcServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

GrpcServer::~GrpcServer() { Stop(); }

uint16_t GrpcServer::port() const { return static_cast<uint16_t>(impl_->port); }

void GrpcServer::Stop() { impl_->StopAll(); }

Result<std::unique_ptr<GrpcServer>> GrpcServer::Start(const GrpcServerOptions& options,
                                                      ServingContext& context) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->ctx = &context;
  impl->InitMetrics(&impl->online_metrics, kGetOnlineFeatures);
  impl->InitMetrics(&impl->info_metrics, kGetServingInfo);
  const int threads = options.threads > 0
                          ? options.threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 0; i < threads; ++i) {
    impl->ios.push_back(std::make_unique<boost::asio::io_context>(1));
    impl->guards.push_back(boost::asio::make_work_guard(*impl->ios.back()));
  }

  const std::string address = options.host.find(':') != std::string::npos
                                  ? fmt::format("[{}]:{}", options.host, options.port)
                                  : fmt::format("{}:{}", options.host, options.port);
  grpc::ServerBuilder builder;
  // Plain text, as Feast's own gRPC server; put TLS in front (a proxy) when clients cross
  // networks.
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &impl->port);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  // One port, one server: no second process silently sharing it.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(impl.get());
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || impl->port == 0) {
    impl->stopped = true;
    impl->guards.clear();
    return Status::IOError(fmt::format(
        "cannot serve gRPC on {}: the address is in use or not this machine's; choose another "
        "--grpc-port or --host",
        address));
  }
  for (auto& io : impl->ios) {
    impl->threads.emplace_back([io = io.get()] { io->run(); });
  }
  return std::unique_ptr<GrpcServer>(new GrpcServer(std::move(impl)));
}

}  // namespace granary::serving
