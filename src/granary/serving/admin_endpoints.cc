// GET /health, GET /metrics, GET /metrics/history and GET /registry (docs/SERVING.md).
#include <fmt/format.h>

#include <boost/asio/post.hpp>
#include <functional>
#include <memory>
#include <vector>

#include "granary/common/json.h"
#include "granary/common/mutex.h"
#include "granary/materialize/online_check.h"
#include "granary/registry/registry_factory.h"
#include "granary/serving/service.h"

namespace granary {

// Whether the online store still holds what the watermarks promise (online_check.h): the views
// whose data is lost, or why nothing was checked.
struct OnlineDataVerdict {
  bool checked = false;
  std::string note;                 // why not checked
  std::vector<ViewDataCheck> lost;  // the views whose data is lost
};

// GET /health's verdict on the online data, kept for FeatureServerOptions::health_check_max_age
// (docs/SERVING.md, "GET /health"). The check reads the registry's watermarks and one marker hash
// per shard of the store: too much for a probe that load balancers send every few seconds to
// every replica, several at once. So a verdict reached under the registry version a probe serves
// answers that probe, without any I/O, while it is younger than max_age (by the server's Clock,
// counted from the check's start); otherwise the probe starts a check on the blocking pool. One
// check runs at a time: probes that come meanwhile wait for it, and a probe for another version,
// or one that came after Invalidate(), gets a check of its own after it. Data lost from the store
// therefore shows at most max_age (plus one check) after it is gone. The registry stays open
// between checks, reopened after an error.
//
// Thread-safe.
class OnlineDataHealthCache {
 public:
  using Done = std::function<void(std::shared_ptr<const OnlineDataVerdict>)>;

  explicit OnlineDataHealthCache(ServingContext& ctx)
      : ctx_(ctx),
        checks_(&ctx.metrics.registry->GetCounter(
            "granary_health_online_data_checks_total",
            "Checks of the online data (registry watermarks against the store's view markers) "
            "run by GET /health; the other probes reused a verdict younger than its max age.")) {}

  // Calls `done` with the verdict for `snapshot`'s definitions: on the calling thread when a
  // fresh one is kept, else on the blocking pool once the check has run.
  void Get(std::shared_ptr<const ServingSnapshot> snapshot, Done done) {
    const Timestamp now = ctx_.options.clock->Now();
    MutexLock lock(&mu_);
    if (verdict_ != nullptr && version_ == snapshot->info.version && now >= checked_at_ &&
        now.micros - checked_at_.micros < MaxAgeMicros()) {
      std::shared_ptr<const OnlineDataVerdict> verdict = verdict_;
      lock.Unlock();
      return done(std::move(verdict));
    }
    waiters_.push_back({std::move(snapshot), generation_, std::move(done)});
    if (checking_) return;
    checking_ = true;
    lock.Unlock();
    boost::asio::post(*ctx_.blocking, [this] { CheckForWaiters(); });
  }

  // Forgets the verdict: the next probe checks again (a materialization of this server ended).
  void Invalidate() {
    MutexLock lock(&mu_);
    verdict_ = nullptr;
    ++generation_;
  }

 private:
  struct Waiter {
    std::shared_ptr<const ServingSnapshot> snapshot;
    uint64_t generation;  // generation_ when the probe came
    Done done;
  };

  int64_t MaxAgeMicros() const {
    return std::chrono::duration_cast<std::chrono::microseconds>(ctx_.options.health_check_max_age)
        .count();
  }

  // On the blocking pool, while checking_: checks for the first waiter and answers every waiter
  // of the same version, except those that came after an Invalidate() the check started before;
  // again while some wait.
  void CheckForWaiters() {
    while (true) {
      std::shared_ptr<const ServingSnapshot> snapshot;
      uint64_t generation;
      {
        MutexLock lock(&mu_);
        snapshot = waiters_.front().snapshot;
        generation = generation_;
      }
      const Timestamp started = ctx_.options.clock->Now();
      auto verdict = std::make_shared<const OnlineDataVerdict>(Check(snapshot->definitions()));
      std::vector<Waiter> answered;
      bool last = false;  // this loop gave up checking_: another call may own it from now on
      {
        MutexLock lock(&mu_);
        if (generation == generation_) {
          verdict_ = verdict;
          version_ = snapshot->info.version;
          checked_at_ = started;
        }
        std::vector<Waiter> waiting;
        for (Waiter& w : waiters_) {
          const bool covered =
              w.snapshot->info.version == snapshot->info.version && w.generation <= generation;
          (covered ? answered : waiting).push_back(std::move(w));
        }
        waiters_ = std::move(waiting);
        if (waiters_.empty()) {
          checking_ = false;
          last = true;
        }
      }
      for (Waiter& w : answered) w.done(verdict);
      // Not checking_ again here: once it was cleared, a probe may have set it and posted a
      // check of its own, and two loops would take the same waiters (one then reading an empty
      // queue).
      if (last) return;
    }
  }

  // Blocking: the registry, the store's markers.
  OnlineDataVerdict Check(const Definitions& defs) {
    checks_->Increment();
    OnlineDataVerdict out;
    if (!ctx_.options.repository) {
      out.note = "the server was started without its repository's configuration";
      return out;
    }
    MutexLock lock(&check_mu_);
    if (registry_ == nullptr) {
      auto registry = OpenRegistry(ctx_.options.registry, OpenMode::kOpenExisting);
      if (!registry.ok()) {
        out.note = registry.status().message();
        return out;
      }
      registry_ = std::move(*registry);
    }
    auto checks = CheckOnlineData(*registry_, defs, *ctx_.options.repository, *ctx_.store);
    if (!checks.ok()) {
      registry_.reset();  // reopened by the next check (the file may have been replaced)
      out.note = checks.status().message();
      return out;
    }
    out.checked = true;
    for (ViewDataCheck& c : *checks) {
      if (c.state == ViewDataCheck::State::kLost) out.lost.push_back(std::move(c));
      if (c.markers_unreadable) {
        out.checked = false;
        out.note = c.reason;
      }
    }
    return out;
  }

  ServingContext& ctx_;
  Counter* const checks_;
  Mutex mu_;
  std::shared_ptr<const OnlineDataVerdict> verdict_ GUARDED_BY(mu_);  // the latest, or null
  int64_t version_ GUARDED_BY(mu_) = 0;                               // ... of this version
  Timestamp checked_at_ GUARDED_BY(mu_);                              // ... checked from then
  uint64_t generation_ GUARDED_BY(mu_) = 0;                           // Invalidate() calls
  bool checking_ GUARDED_BY(mu_) = false;  // CheckForWaiters is queued or running
  std::vector<Waiter> waiters_ GUARDED_BY(mu_);
  Mutex check_mu_;  // one check at a time holds the registry
  std::unique_ptr<RegistryStore> registry_ GUARDED_BY(check_mu_);
};

void InvalidateOnlineDataHealth(ServingContext& context) {
  if (context.online_health != nullptr) context.online_health->Invalidate();
}

namespace {

// GET /health's body (docs/SERVING.md); `probe`: the outcome of the store read.
std::string HealthJson(ServingContext& ctx, const ServingSnapshot& snapshot, const Status& probe,
                       const OnlineDataVerdict& data) {
  JsonWriter w;
  auto str = [&w](std::string_view s) { w.String(s); };
  w.StartObject();
  w.Key("status");
  // The registry unreadable: the server serves its last snapshot, but cannot see a new apply
  // until it is back.
  const std::string registry_error = ctx.registry->registry_error();
  str(!probe.ok()                                   ? "unavailable"
      : data.lost.empty() && registry_error.empty() ? "ok"
                                                    : "degraded");
  w.Key("store");
  w.StartObject();
  w.Key("type");
  str(ctx.options.store_kind);
  w.Key("describe");
  str(ctx.store->Describe());
  w.Key("reachable");
  w.Bool(probe.ok());
  if (!probe.ok()) {
    w.Key("error");
    str(probe.message());
  }
  w.EndObject();
  w.Key("online_data");
  w.StartObject();
  w.Key("checked");
  w.Bool(data.checked);
  if (!data.checked) {
    w.Key("note");
    str(data.note);
  }
  w.Key("lost");
  w.StartArray();
  for (const ViewDataCheck& c : data.lost) {
    w.StartObject();
    w.Key("view");
    str(c.view);
    w.Key("shards");
    w.StartArray();
    for (const std::string& shard : c.lost_shards) str(shard);
    w.EndArray();
    w.Key("reason");
    str(c.reason);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  w.Key("registry");
  w.StartObject();
  w.Key("project");
  str(snapshot.info.project);
  w.Key("version");
  w.Int64(snapshot.info.version);
  w.Key("applied_at");
  str(FormatTimestamp(snapshot.info.applied_at));
  w.Key("describe");
  str(ctx.options.registry.Describe());
  w.Key("reachable");
  w.Bool(registry_error.empty());
  if (!registry_error.empty()) {
    w.Key("error");
    str(registry_error);
  }
  w.Key("listening");
  w.Bool(ctx.registry->listening());
  w.EndObject();
  w.EndObject();
  return w.Release();
}

// {"status": "ok" | "degraded" | "unavailable", "store": {...}, "online_data": {...},
// "registry": {...}}; 503 when the store cannot be read, so load balancers and readiness probes
// take the server out of rotation. "degraded" (200: the server still answers what it holds)
// when the store lost data that the watermarks promise, naming the views and shards. The store
// is read on every probe (one key, asynchronously on the worker); the online data verdict comes
// from OnlineDataHealthCache.
void Health(ServingContext& ctx, ServiceRequest& request, ServiceRespond respond) {
  std::shared_ptr<const ServingSnapshot> snapshot = ctx.registry->Current();
  ctx.store->AsyncRead(
      request.executor, ctx.health_probe,
      [&ctx, snapshot = std::move(snapshot),
       respond = std::move(respond)](Result<OnlineFeatures> probe) mutable {
        if (!probe.ok()) {
          OnlineDataVerdict data;
          data.note = "the store is unavailable";
          ServiceReply reply = ServiceReply::Ok(HealthJson(ctx, *snapshot, probe.status(), data));
          reply.status =
              Status::Unavailable(fmt::format("the online store ({}) is unavailable: {}",
                                              ctx.store->Describe(), probe.status().message()));
          ctx.metrics.CountError("/health", reply.status);
          return respond(std::move(reply));
        }
        ctx.online_health->Get(snapshot, [&ctx, snapshot, respond = std::move(respond)](
                                             std::shared_ptr<const OnlineDataVerdict> data) {
          respond(ServiceReply::Ok(HealthJson(ctx, *snapshot, Status::OK(), *data)));
        });
      });
}

}  // namespace

void RegisterAdminEndpoints(ServingContext& context, std::vector<Endpoint>* endpoints) {
  context.online_health = std::make_shared<OnlineDataHealthCache>(context);
  endpoints->push_back({"GET", "/health",
                        [&context](ServiceRequest& request, ServiceRespond respond) {
                          Health(context, request, std::move(respond));
                        },
                        /*is_public=*/true});
  // Rendered on the blocking pool: the materialization state collector reads the registry
  // (SQLite), which may wait while a run records its end.
  endpoints->push_back({"GET", "/metrics", [&context](ServiceRequest&, ServiceRespond respond) {
                          boost::asio::post(*context.blocking, [&context, respond] {
                            respond(ServiceReply::Ok(context.metrics.registry->Render(),
                                                     "text/plain; version=0.0.4; charset=utf-8"));
                          });
                        }});
  endpoints->push_back(
      {"GET", "/metrics/history", [&context](ServiceRequest&, ServiceRespond respond) {
         respond(ServiceReply::Ok(context.metrics_history->ToJson()));
       }});
  endpoints->push_back({"GET", "/registry", [&context](ServiceRequest&, ServiceRespond respond) {
                          respond(ServiceReply::Ok(context.registry->Current()->registry_json));
                        }});
}

}  // namespace granary
