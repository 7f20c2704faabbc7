// grpc_load PORT BATCH FEATURES ENTITIES SECONDS WORKERS [MODE [RATE]]: Feast's gRPC
// GetOnlineFeatures (feast.serving.ServingService, the client stub generated from the pinned feast
// package's descriptors) against `granary serve --grpc-port PORT` as fast as WORKERS concurrent
// callers go (closed loop, one channel each), for SECONDS. Each request asks for BATCH random
// customers of [0, ENTITIES) and the first FEATURES features of bench/serve's repository (views
// of 10).
//
// With RATE > 0 (mode raw only): open loop at RATE requests per second instead, as vegeta
// drives HTTP at a fixed rate: one thread starts a call every 1/RATE s whether or not earlier ones
// were answered (on WORKERS channels in turn), another takes the answers; each latency runs from
// the call's start to its answer. Requests cycle through 2,000 prepared ones (random customers,
// seeded), as vegeta cycles through its targets.
// MODE:
//   decode  (default) the generated stub: each response is parsed into Feast's messages, as
//           Feast's Java and Go clients do;
//   raw     the same requests through a generic stub: the response bytes are received and not
//           parsed, as vegeta receives the HTTP answers without parsing their JSON (the fair
//           comparison with HTTP on one machine, where the client shares the cores);
//   empty   GetFeastServingInfo, an RPC with nothing to do, raw: gRPC's own cost per call, the
//           floor of any gRPC method on this machine.
// Prints one JSON line: achieved_rate, p50_us, p99_us, p999_us, max_us, mean_us, errors (and with
// RATE, late_starts: calls started more than 1 ms after their time, the sender having stalled).
#include <fmt/format.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include "feast/serving/ServingService.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;

void PrintResult(std::vector<int64_t> all, double seconds, int64_t errors, int64_t late) {
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) -> double {
    if (all.empty()) return 0;
    return all[std::min(all.size() - 1, static_cast<size_t>(p * all.size()))] / 1000.0;
  };
  const double mean =
      all.empty() ? 0.0 : std::accumulate(all.begin(), all.end(), 0.0) / all.size() / 1000.0;
  fmt::print(
      "{{\"achieved_rate\": {:.1f}, \"p50_us\": {:.1f}, \"p99_us\": {:.1f}, \"p999_us\": {:.1f}, "
      "\"max_us\": {:.1f}, \"mean_us\": {:.1f}, \"errors\": {}{}}}\n",
      all.size() / seconds, pct(0.5), pct(0.99), pct(0.999), all.empty() ? 0.0 : all.back() / 1e3,
      mean, errors, late >= 0 ? fmt::format(", \"late_starts\": {}", late) : "");
}

// A request for `batch` customers (ids set by the caller) and the first `features` features of
// bench/serve's repository (views of 10), with full feature names.
feast::serving::GetOnlineFeaturesRequest MakeRequest(int batch, int features) {
  feast::serving::GetOnlineFeaturesRequest request;
  request.set_full_feature_names(true);
  for (int f = 0; f < features; ++f) {
    request.mutable_features()->add_val(fmt::format("view_{:02}:f{:02}", f / 10, f % 10));
  }
  auto& ids = (*request.mutable_entities())["customer_id"];
  for (int i = 0; i < batch; ++i) ids.add_val();
  return request;
}

// One call in flight of the open loop.
struct OpenCall {
  grpc::ClientContext context;
  grpc::ByteBuffer received;
  grpc::Status status;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
  Clock::time_point started;
};

int OpenLoop(const std::string& target, int batch, int features, int64_t entities, double seconds,
             int workers, double rate) {
  // The prepared requests, serialized once.
  std::vector<std::string> requests(2000);
  {
    std::mt19937_64 rng(static_cast<uint64_t>(batch) * 1000 + features);
    std::uniform_int_distribution<int64_t> pick(0, entities - 1);
    feast::serving::GetOnlineFeaturesRequest request = MakeRequest(batch, features);
    auto& ids = (*request.mutable_entities())["customer_id"];
    for (std::string& bytes : requests) {
      for (int i = 0; i < batch; ++i) ids.mutable_val(i)->set_int64_val(pick(rng));
      request.SerializeToString(&bytes);
    }
  }
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs;
  for (int w = 0; w < workers; ++w) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.use_local_subchannel_pool", 1);  // a connection per channel
    stubs.push_back(std::make_unique<grpc::GenericStub>(
        grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args)));
  }
  // Connect every channel before the clock starts (the first call of each would otherwise pay
  // for its connection): one empty call each.
  grpc::CompletionQueue cq;
  for (auto& stub : stubs) {
    OpenCall warm;
    grpc::Slice empty{std::string()};
    grpc::ByteBuffer send(&empty, 1);
    warm.reader = stub->PrepareUnaryCall(
        &warm.context, "/feast.serving.ServingService/GetFeastServingInfo", send, &cq);
    warm.reader->StartCall();
    warm.reader->Finish(&warm.received, &warm.status, &warm);
    void* tag = nullptr;
    bool ok = false;
    cq.Next(&tag, &ok);
    if (!ok || !warm.status.ok()) {
      fmt::print(stderr, "grpc_load: cannot reach {}: {}\n", target, warm.status.error_message());
      return 1;
    }
  }
  std::vector<int64_t> latencies;
  latencies.reserve(static_cast<size_t>(rate * seconds) + 16);
  int64_t errors = 0;
  std::atomic<int64_t> started{0};
  std::atomic<bool> sending_done{false};
  // The receiver: every answer, until the sender is done and every call started is answered.
  std::thread receiver([&] {
    int64_t finished = 0;
    void* tag = nullptr;
    bool ok = false;
    while (!sending_done.load() || finished < started.load()) {
      const auto deadline = std::chrono::system_clock::now() + std::chrono::milliseconds(100);
      const auto got = cq.AsyncNext(&tag, &ok, deadline);
      if (got == grpc::CompletionQueue::SHUTDOWN) break;
      if (got == grpc::CompletionQueue::TIMEOUT) continue;
      const auto done = Clock::now();
      std::unique_ptr<OpenCall> call(static_cast<OpenCall*>(tag));
      ++finished;
      if (!ok || !call->status.ok() || call->received.Length() == 0) {
        if (errors++ == 0) {
          fmt::print(stderr, "grpc_load: {} {}\n", static_cast<int>(call->status.error_code()),
                     call->status.error_message());
        }
        continue;
      }
      latencies.push_back(
          std::chrono::duration_cast<std::chrono::nanoseconds>(done - call->started).count());
    }
  });
  const auto begin = Clock::now();
  const auto interval = std::chrono::duration<double>(1.0 / rate);
  const int64_t total = static_cast<int64_t>(rate * seconds);
  int64_t late = 0;
  for (int64_t i = 0; i < total; ++i) {
    const auto due = begin + std::chrono::duration_cast<Clock::duration>(interval * i);
    std::this_thread::sleep_until(due);
    auto call = std::make_unique<OpenCall>();
    const std::string& bytes = requests[i % requests.size()];
    grpc::Slice slice(bytes);
    grpc::ByteBuffer send(&slice, 1);
    // vegeta's default timeout: a call not answered in 30 s counts as an error.
    call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    call->started = Clock::now();
    if (call->started - due > std::chrono::milliseconds(1)) ++late;
    call->reader = stubs[i % stubs.size()]->PrepareUnaryCall(
        &call->context, "/feast.serving.ServingService/GetOnlineFeatures", send, &cq);
    call->reader->StartCall();
    OpenCall* raw = call.release();
    raw->reader->Finish(&raw->received, &raw->status, raw);
    started.fetch_add(1);
  }
  sending_done.store(true);
  receiver.join();
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
  PrintResult(std::move(latencies), seconds, errors, late);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 7 || argc > 9) {
    fmt::print(stderr,
               "usage: grpc_load PORT BATCH FEATURES ENTITIES SECONDS WORKERS [decode|raw|empty "
               "[RATE]]\n");
    return 2;
  }
  const std::string mode = argc >= 8 ? argv[7] : "decode";
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
  const double rate = argc == 9 ? std::atof(argv[8]) : 0;
  if (argc == 9 && (mode != "raw" || !(rate > 0))) {
    fmt::print(stderr,
               "grpc_load: RATE must be a positive number of requests per second, with "
               "mode raw\n");
    return 2;
  }
  if (workers < 1 || batch < 1 || features < 1 || entities < 1 || !(seconds > 0)) {
    fmt::print(stderr,
               "grpc_load: BATCH, FEATURES, ENTITIES, SECONDS and WORKERS must be "
               "positive\n");
    return 2;
  }
  if (rate > 0) return OpenLoop(target, batch, features, entities, seconds, workers, rate);
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
      feast::serving::GetOnlineFeaturesRequest request = MakeRequest(batch, features);
      auto& ids = (*request.mutable_entities())["customer_id"];
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
  PrintResult(std::move(all), seconds, errors.load(), -1);
  return 0;
}
