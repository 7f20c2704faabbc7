// serve_redis_rate: the raw Redis baseline of bench/serve. Sends the Redis commands behind one
// get-online-features request at a fixed rate, open loop, and prints its latency percentiles:
//   --mode get    a pipeline of one GET per entity of Granary's keys (what Granary's server reads)
//   --mode hmget  a pipeline of one HMGET per entity of Feast's layout (what Feast's Redis online
//                 store sends: the requested features' fields and each view's timestamp field)
// Request i of the run is due at start + i / rate. Each of --threads connections takes every
// threads-th request; a request's latency runs from when it was due (not when it was sent) to its
// last reply, so a client that falls behind counts the wait (no coordinated omission, as wrk2).
//
// usage: serve_redis_rate --port P --mode get|hmget --project NAME --entities N --batch B
//                         --features F --rate R --duration SECONDS [--threads T] [--seed S]
// prints: {"mode": ..., "rate": R, "requests": n, "achieved_rate": ..., "errors": e,
//          "p50_us": ..., "p99_us": ..., "p999_us": ..., "max_us": ...}
#include <fmt/format.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "granary/online/entity_key.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  int port = 6379;
  std::string mode = "get";
  std::string project = "serve_bench";
  int64_t entities = 1'000'000;
  int batch = 1;
  int features = 250;
  double rate = 1000;
  double duration = 10;
  int threads = 4;
  uint64_t seed = 1;
};

Args Parse(int argc, char** argv) {
  Args a;
  std::map<std::string, std::string> kv;
  for (int i = 1; i + 1 < argc; i += 2) kv[argv[i]] = argv[i + 1];
  auto get = [&](const char* k, auto& out) {
    auto it = kv.find(k);
    if (it == kv.end()) return;
    if constexpr (std::is_same_v<std::decay_t<decltype(out)>, std::string>) {
      out = it->second;
    } else {
      out = static_cast<std::decay_t<decltype(out)>>(std::stod(it->second));
    }
  };
  get("--port", a.port);
  get("--mode", a.mode);
  get("--project", a.project);
  get("--entities", a.entities);
  get("--batch", a.batch);
  get("--features", a.features);
  get("--rate", a.rate);
  get("--duration", a.duration);
  get("--threads", a.threads);
  get("--seed", a.seed);
  return a;
}

// The argument vectors of one request's commands.
std::vector<std::vector<std::string>> Commands(const Args& a, std::mt19937_64& rng) {
  std::vector<std::vector<std::string>> out;
  const int views = std::max(1, a.features / 10);
  for (int e = 0; e < a.batch; ++e) {
    const int64_t id = static_cast<int64_t>(rng() % static_cast<uint64_t>(a.entities));
    if (a.mode == "get") {
      std::string key = a.project + ":";
      granary::entity_key::AppendInteger(&key, id);
      out.push_back({"GET", std::move(key)});
    } else {
      std::vector<std::string> cmd = {"HMGET", fmt::format("feast:{}", id)};
      for (int v = 0; v < views; ++v) {
        for (int f = 0; f < 10; ++f) cmd.push_back(fmt::format("view_{:02}:f{:02}", v, f));
        cmd.push_back(fmt::format("_ts:view_{:02}", v));
      }
      out.push_back(std::move(cmd));
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = Parse(argc, argv);
  if (a.mode != "get" && a.mode != "hmget") {
    fmt::print(stderr, "--mode must be get or hmget\n");
    return 2;
  }
  const int64_t total = static_cast<int64_t>(a.rate * a.duration);
  const auto interval = std::chrono::duration<double>(1.0 / a.rate);
  std::vector<std::vector<double>> latencies(a.threads);
  std::atomic<int64_t> errors{0};
  // Commands are prepared before the clock starts, so it only sees Redis.
  std::vector<std::vector<std::vector<std::vector<std::string>>>> prepared(a.threads);
  for (int t = 0; t < a.threads; ++t) {
    std::mt19937_64 rng(a.seed * 1000 + t);
    for (int64_t i = t; i < total && prepared[t].size() < 1024; i += a.threads) {
      prepared[t].push_back(Commands(a, rng));
    }
  }
  std::vector<redisContext*> connections;
  for (int t = 0; t < a.threads; ++t) {
    redisContext* ctx = redisConnect("127.0.0.1", a.port);
    if (ctx == nullptr || ctx->err) {
      fmt::print(stderr, "cannot connect to 127.0.0.1:{}\n", a.port);
      return 1;
    }
    connections.push_back(ctx);
  }
  const Clock::time_point start = Clock::now() + std::chrono::milliseconds(20);
  std::vector<std::thread> threads;
  for (int t = 0; t < a.threads; ++t) {
    threads.emplace_back([&, t] {
      redisContext* ctx = connections[t];
      size_t k = 0;
      for (int64_t i = t; i < total; i += a.threads) {
        const auto due = start + std::chrono::duration_cast<Clock::duration>(interval * i);
        std::this_thread::sleep_until(due);
        const auto& cmds = prepared[t][k++ % prepared[t].size()];
        for (const auto& cmd : cmds) {
          std::vector<const char*> argv2;
          std::vector<size_t> lens;
          for (const auto& s : cmd) {
            argv2.push_back(s.data());
            lens.push_back(s.size());
          }
          redisAppendCommandArgv(ctx, static_cast<int>(argv2.size()), argv2.data(), lens.data());
        }
        for (size_t c = 0; c < cmds.size(); ++c) {
          void* reply = nullptr;
          if (redisGetReply(ctx, &reply) != REDIS_OK) {
            errors.fetch_add(1);
            redisFree(ctx);
            return;
          }
          if (static_cast<redisReply*>(reply)->type == REDIS_REPLY_NIL) errors.fetch_add(1);
          freeReplyObject(reply);
        }
        latencies[t].push_back(
            std::chrono::duration<double, std::micro>(Clock::now() - due).count());
      }
      redisFree(ctx);
    });
  }
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) {
    if (all.empty()) return 0.0;
    const size_t i = std::min(all.size() - 1, static_cast<size_t>(p * all.size()));
    return all[i];
  };
  fmt::print(
      "{{\"mode\": \"{}\", \"rate\": {}, \"requests\": {}, \"achieved_rate\": {:.1f}, "
      "\"errors\": {}, \"p50_us\": {:.1f}, \"p99_us\": {:.1f}, \"p999_us\": {:.1f}, "
      "\"max_us\": {:.1f}}}\n",
      a.mode, a.rate, all.size(), static_cast<double>(all.size()) / elapsed, errors.load(),
      pct(0.50), pct(0.99), pct(0.999), all.empty() ? 0.0 : all.back());
  return errors.load() == 0 ? 0 : 1;
}
