// GET /health, GET /metrics and GET /registry (docs/SERVING.md).
#include <fmt/format.h>

#include <boost/asio/post.hpp>

#include "granary/common/json.h"
#include "granary/serving/service.h"

namespace granary {
namespace {

// {"status": "ok" | "unavailable", "store": {...}, "registry": {...}}; 503 when the store cannot be
// read, so load balancers and readiness probes take the server out of rotation.
void Health(ServingContext& ctx, ServiceRequest& request, ServiceRespond respond) {
  std::shared_ptr<const ServingSnapshot> snapshot = ctx.registry->Current();
  ctx.store->AsyncRead(request.executor, ctx.health_probe,
                       [&ctx, snapshot = std::move(snapshot),
                        respond = std::move(respond)](Result<OnlineFeatures> probe) {
                         JsonWriter w;
                         auto str = [&w](std::string_view s) { w.String(s.data(), s.size()); };
                         w.StartObject();
                         w.Key("status");
                         str(probe.ok() ? "ok" : "unavailable");
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
                         w.Key("registry");
                         w.StartObject();
                         w.Key("project");
                         str(snapshot->info.project);
                         w.Key("version");
                         w.Int64(snapshot->info.version);
                         w.Key("applied_at");
                         str(FormatTimestamp(snapshot->info.applied_at));
                         w.EndObject();
                         w.EndObject();
                         ServiceReply reply = ServiceReply::Ok(w.Release());
                         if (!probe.ok()) {
                           reply.status = Status::Unavailable(
                               fmt::format("the online store ({}) is unavailable: {}",
                                           ctx.store->Describe(), probe.status().message()));
                           ctx.metrics.CountError("/health", reply.status);
                         }
                         respond(std::move(reply));
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
  endpoints->push_back({"GET", "/registry", [&context](ServiceRequest&, ServiceRespond respond) {
                          respond(ServiceReply::Ok(context.registry->Current()->registry_json));
                        }});
}

}  // namespace granary
