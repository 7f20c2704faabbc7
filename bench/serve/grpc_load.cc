// grpc_load PORT BATCH FEATURES ENTITIES SECONDS WORKERS [MODE]: Feast's gRPC GetOnlineFeatures
// (feast.serving.ServingService, the client stub generated from the pinned feast package's
// descriptors) against `granary serve --grpc-port PORT` as fast as WORKERS concurrent callers go
// (closed loop, one channel each), for SECONDS. Each request asks for BATCH random customers of
// [0, ENTITIES) and the first FEATURES features of bench/serve's repository (views of 10).
// MODE:
//   decode  (default) the generated stub: each response is parsed into Feast's messages, as
//           Feast's Java and Go clients do;
//   raw     the same requests through a generic stub: the response bytes are received and not
//           parsed, as vegeta receives the HTTP answers without parsing their JSON (the fair
//           comparison with HTTP on one machine, where the client shares the cores);
//   empty   GetFeastServingInfo, an RPC with nothing to do, raw: gRPC's own cost per call, the
//           floor of any gRPC method on this machine.
// Prints one JSON line: achieved_rate, p50_us, p99_us, p999_us, max_us, errors.
#include <fmt/format.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include "feast/serving/ServingService.grpc.pb.h"

int main(int argc, char** argv) {
  if (argc != 7 && argc != 8) {
    fmt::print(
        stderr,
        "usage: grpc_load PORT BATCH FEATURES ENTITIES SECONDS WORKERS [decode|raw|empty]\n");
    return 2;
  }
  const std::string mode = argc == 8 ? argv[7] : "decode";
  if (mode != "decode" && mode != "raw" && mode != "empty") {
    fmt::print(stderr, "grpc_load: unknown mode '{}' (decode, raw or empty)\n", mode);
    return 2;
  }
  const std::string target = fmt::format("127.0.0.1:{}", argv[1]);
  const int batch = std::atoi(argv[2]);
  const int features = std::atoi(argv[3]);
  const int64_t entities = std::atoll(argv[4]);
  const double seconds = std::atof(argv[5]);
  const int workers = std::atoi(argv[6]);
  using Clock = std::chrono::steady_clock;
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  std::vector<std::vector<int64_t>> latencies(workers);
  std::atomic<int64_t> errors{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      grpc::ChannelArguments args;
      args.SetInt("grpc.use_local_subchannel_pool", 1);  // a connection per worker
      auto stub = feast::serving::ServingService::NewStub(
          grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
      std::mt19937_64 rng(static_cast<uint64_t>(w) * 7919 + 1);
      std::uniform_int_distribution<int64_t> pick(0, entities - 1);
      feast::serving::GetOnlineFeaturesRequest request;
      request.set_full_feature_names(true);
      for (int f = 0; f < features; ++f) {
        request.mutable_features()->add_val(fmt::format("view_{:02}:f{:02}", f / 10, f % 10));
      }
      auto& ids = (*request.mutable_entities())["customer_id"];
      for (int i = 0; i < batch; ++i) ids.add_val();
      if (mode != "decode") {
        // One completion queue per worker; each call waits for its own answer (closed loop).
        auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
        grpc::GenericStub generic(channel);
        grpc::CompletionQueue cq;
        const std::string method = mode == "empty"
                                       ? "/feast.serving.ServingService/GetFeastServingInfo"
                                       : "/feast.serving.ServingService/GetOnlineFeatures";
        while (Clock::now() < end) {
          std::string bytes;
          if (mode == "raw") {
            for (int i = 0; i < batch; ++i) ids.mutable_val(i)->set_int64_val(pick(rng));
            request.SerializeToString(&bytes);
          }
          grpc::Slice slice(bytes);
          grpc::ByteBuffer send(&slice, 1);
          grpc::ByteBuffer received;
          grpc::Status st;
          grpc::ClientContext context;
          const auto started = Clock::now();
          auto call = generic.PrepareUnaryCall(&context, method, send, &cq);
          call->StartCall();
          call->Finish(&received, &st, reinterpret_cast<void*>(1));
          void* tag = nullptr;
          bool ok = false;
          cq.Next(&tag, &ok);
          const auto took = Clock::now() - started;
          if (!ok || !st.ok() || (mode == "raw" && received.Length() == 0)) {
            if (errors.fetch_add(1) == 0) {
              fmt::print(stderr, "grpc_load: {} {}\n", static_cast<int>(st.error_code()),
                         st.error_message());
            }
            continue;
          }
          latencies[w].push_back(
              std::chrono::duration_cast<std::chrono::nanoseconds>(took).count());
        }
        cq.Shutdown();
        void* tag = nullptr;
        bool ok = false;
        while (cq.Next(&tag, &ok)) {
        }
        return;
      }
      while (Clock::now() < end) {
        for (int i = 0; i < batch; ++i) ids.mutable_val(i)->set_int64_val(pick(rng));
        grpc::ClientContext context;
        feast::serving::GetOnlineFeaturesResponse response;
        const auto started = Clock::now();
        grpc::Status st = stub->GetOnlineFeatures(&context, request, &response);
        const auto took = Clock::now() - started;
        if (!st.ok() || response.results_size() != features + 1) {
          if (errors.fetch_add(1) == 0) {
            fmt::print(stderr, "grpc_load: {} {}\n", static_cast<int>(st.error_code()),
                       st.error_message());
          }
          continue;
        }
        latencies[w].push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(took).count());
      }
    });
  }
  for (auto& t : threads) t.join();
  std::vector<int64_t> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) -> double {
    if (all.empty()) return 0;
    return all[std::min(all.size() - 1, static_cast<size_t>(p * all.size()))] / 1000.0;
  };
  fmt::print(
      "{{\"achieved_rate\": {:.1f}, \"p50_us\": {:.1f}, \"p99_us\": {:.1f}, \"p999_us\": {:.1f}, "
      "\"max_us\": {:.1f}, \"errors\": {}}}\n",
      all.size() / seconds, pct(0.5), pct(0.99), pct(0.999), all.empty() ? 0.0 : all.back() / 1e3,
      errors.load());
  return 0;
}
