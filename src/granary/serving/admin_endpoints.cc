// GET /health, GET /metrics, GET /metrics/history and GET /registry (docs/SERVING.md).
#include <fmt/format.h>

#include <boost/asio/post.hpp>

#include "granary/common/json.h"
#include "granary/materialize/online_check.h"
#include "granary/registry/registry_factory.h"
#include "granary/serving/service.h"

namespace granary {
namespace {

// Whether the online store still holds what the watermarks promise (online_check.h): the views
// whose data is lost, or why nothing was checked. Blocking (the registry, the store's markers):
// runs on the blocking pool. Only a server that knows its repository checks.
struct OnlineDataHealth {
  bool checked = false;
  std::string note;                 // why not checked
  std::vector<ViewDataCheck> lost;  // the views whose data is lost
};

OnlineDataHealth CheckOnlineDataHealth(ServingContext& ctx, const Definitions& defs) {
  OnlineDataHealth out;
  if (!ctx.options.repository) {
    out.note = "the server was started without its repository's configuration";
    return out;
  }
  auto registry = OpenRegistry(ctx.options.registry, OpenMode::kOpenExisting);
  if (!registry.ok()) {
    out.note = registry.status().message();
    return out;
  }
  auto checks = CheckOnlineData(**registry, defs, *ctx.options.repository, *ctx.store);
  if (!checks.ok()) {
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

// {"status": "ok" | "degraded" | "unavailable", "store": {...}, "online_data": {...},
// "registry": {...}}; 503 when the store cannot be read, so load balancers and readiness probes
// take the server out of rotation. "degraded" (200: the server still answers what it holds)
// when the store lost data that the watermarks promise, naming the views and shards.
void Health(ServingContext& ctx, ServiceRequest& request, ServiceRespond respond) {
  std::shared_ptr<const ServingSnapshot> snapshot = ctx.registry->Current();
  ctx.store->AsyncRead(
      request.executor, ctx.health_probe,
      [&ctx, snapshot = std::move(snapshot),
       respond = std::move(respond)](Result<OnlineFeatures> probe) mutable {
        boost::asio::post(*ctx.blocking, [&ctx, snapshot = std::move(snapshot),
                                          respond = std::move(respond), probe = std::move(probe)] {
          OnlineDataHealth data;
          if (probe.ok()) {
            data = CheckOnlineDataHealth(ctx, snapshot->definitions());
          } else {
            data.note = "the store is unavailable";
          }
          JsonWriter w;
          auto str = [&w](std::string_view s) { w.String(s); };
          w.StartObject();
          w.Key("status");
          // The registry unreadable: the server serves its last snapshot, but cannot see a new
          // apply until it is back.
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
            str(probe.status().message());
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
          str(snapshot->info.project);
          w.Key("version");
          w.Int64(snapshot->info.version);
          w.Key("applied_at");
          str(FormatTimestamp(snapshot->info.applied_at));
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
          ServiceReply reply = ServiceReply::Ok(w.Release());
          if (!probe.ok()) {
            reply.status =
                Status::Unavailable(fmt::format("the online store ({}) is unavailable: {}",
                                                ctx.store->Describe(), probe.status().message()));
            ctx.metrics.CountError("/health", reply.status);
          }
          respond(std::move(reply));
        });
      });
}

}  // namespace

void RegisterAdminEndpoints(ServingContext& context, std::vector<Endpoint>* endpoints) {
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
