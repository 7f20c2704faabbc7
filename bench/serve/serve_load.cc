// serve_load REPO ENTITIES [FEAST_HASHES]: fills the online store of bench/serve's repository
// (bench/serve/run writes it: 25 views of 10 features, 5 int64 then 5 float64) with ENTITIES
// customers, through OnlineStore::WriteBatch on two threads, as materialization would. With
// FEAST_HASHES > 0 and a Redis store, also writes customers [0, FEAST_HASHES) in Feast's Redis
// layout (one hash per entity: a field per feature, "_ts:<view>" per view), which the HMGET
// baseline of bench/serve reads. Prints progress and one summary line.
#include <arrow/api.h>
#include <fmt/format.h>
#include <hiredis/hiredis.h>

#include <atomic>
#include <mutex>
#include <random>
#include <thread>

#include "../common/shape_batch.h"
#include "granary/common/progress.h"
#include "granary/online/online_store.h"
#include "granary/registry/registry_store.h"

namespace granary {
namespace {

constexpr int64_t kChunk = 20'000;

Status LoadGranary(OnlineStore& store, const ViewLayouts& layouts, int64_t entities) {
  const Timestamp event = SystemClock::Default().Now() - Duration::Hours(1);
  std::vector<std::pair<std::shared_ptr<const ViewLayout>, int64_t>> work;
  for (const auto& [name, layout] : layouts) {
    for (int64_t b = 0; b < entities; b += kChunk) work.emplace_back(layout, b);
  }
  Progress progress("load " + store.Describe(), entities * static_cast<int64_t>(layouts.size()),
                    "view rows");
  std::atomic<size_t> next{0};
  Status first;
  std::mutex mu;
  auto writer = [&] {
    for (size_t i = next++; i < work.size(); i = next++) {
      auto [layout, begin] = work[i];
      const int64_t end = std::min(entities, begin + kChunk);
      auto st = store.WriteBatch(*layout, *MakeShapeBatch(*layout, begin, end, event));
      if (!st.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first.ok()) first = st.status();
        return;
      }
      progress.Add(end - begin);
    }
  };
  std::thread a(writer), b(writer);
  a.join();
  b.join();
  progress.Finish();
  return first;
}

// Feast's Redis layout, in the shape its Redis online store writes: a hash per entity, a field
// per feature (a serialized ValueProto: 9 bytes for an int64 or a double) and a timestamp field
// per view (a serialized Timestamp: 6 bytes).
Status LoadFeastHashes(const std::string& host, int port, const ViewLayouts& layouts,
                       int64_t entities) {
  redisContext* ctx = redisConnect(host.c_str(), port);
  if (ctx == nullptr || ctx->err) {
    return Status::Unavailable(fmt::format("cannot connect to {}:{}", host, port));
  }
  Progress progress("load Feast-layout hashes", entities, "entities");
  std::mt19937_64 rng(7);
  constexpr int64_t kPipeline = 100;
  for (int64_t begin = 0; begin < entities; begin += kPipeline) {
    const int64_t end = std::min(entities, begin + kPipeline);
    for (int64_t id = begin; id < end; ++id) {
      std::vector<std::string> args = {"HSET", fmt::format("feast:{}", id)};
      for (const auto& [name, layout] : layouts) {
        for (const auto& f : layout->features()) {
          args.push_back(name + ":" + f.name);
          std::string value(9, '\0');
          for (char& c : value) c = static_cast<char>(rng());
          args.push_back(std::move(value));
        }
        args.push_back("_ts:" + name);
        args.push_back(std::string(6, '\x11'));
      }
      std::vector<const char*> argv;
      std::vector<size_t> lens;
      for (const auto& a : args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
      }
      redisAppendCommandArgv(ctx, static_cast<int>(argv.size()), argv.data(), lens.data());
    }
    for (int64_t id = begin; id < end; ++id) {
      void* reply = nullptr;
      if (redisGetReply(ctx, &reply) != REDIS_OK) {
        redisFree(ctx);
        return Status::Unavailable("HSET failed");
      }
      freeReplyObject(reply);
    }
    progress.Add(end - begin);
  }
  progress.Finish();
  redisFree(ctx);
  return Status::OK();
}

Status Run(const std::string& repo, int64_t entities, int64_t feast_hashes) {
  GRANARY_ASSIGN_OR_RAISE(RepoConfig config, LoadRepoConfig(repo));
  GRANARY_ASSIGN_OR_RAISE(auto registry,
                          OpenSqliteRegistry(config.RegistryPath(), OpenMode::kOpenExisting));
  GRANARY_ASSIGN_OR_RAISE(auto latest, registry->Latest());
  if (!latest) return Status::FailedPrecondition("apply the definitions first");
  GRANARY_ASSIGN_OR_RAISE(ViewLayouts layouts,
                          MakeViewLayouts(latest->definitions, config.online_store.key_ttl));
  {
    GRANARY_ASSIGN_OR_RAISE(auto store, OpenOnlineStore(config));
    const auto start = std::chrono::steady_clock::now();
    GRANARY_RETURN_NOT_OK(LoadGranary(*store, layouts, entities));
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    fmt::print("loaded {} entities x {} views into {} in {:.1f} s ({:.0f} view rows/s)\n", entities,
               layouts.size(), store->Describe(), s,
               static_cast<double>(entities * layouts.size()) / s);
  }
  if (feast_hashes > 0) {
    if (config.online_store.type != "redis") {
      return Status::InvalidArgument("Feast-layout hashes need online_store.type redis");
    }
    const std::string& address = config.online_store.connection_string;
    const size_t colon = address.rfind(':');
    GRANARY_RETURN_NOT_OK(LoadFeastHashes(
        address.substr(0, colon), std::stoi(address.substr(colon + 1)), layouts, feast_hashes));
    fmt::print("loaded {} entities in Feast's Redis layout (feast:<id>)\n", feast_hashes);
  }
  return Status::OK();
}

}  // namespace
}  // namespace granary

int main(int argc, char** argv) {
  if (argc < 3) {
    fmt::print(stderr, "usage: serve_load REPO ENTITIES [FEAST_HASHES]\n");
    return 2;
  }
  granary::Status st =
      granary::Run(argv[1], std::stoll(argv[2]), argc > 3 ? std::stoll(argv[3]) : 0);
  if (!st.ok()) {
    fmt::print(stderr, "error: {}\n", st.message());
    return 1;
  }
  return 0;
}
