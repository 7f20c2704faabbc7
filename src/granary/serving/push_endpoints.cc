// POST /push: Feast's push request (docs/SERVING.md). The JSON is parsed and typed on the worker
// thread; the writes (online store, offline append) block, so they run on the blocking pool and
// the answer comes back from there.
#include <boost/asio/post.hpp>

#include "granary/serving/push.h"
#include "granary/serving/service.h"

namespace granary {
namespace {

constexpr const char* kPath = "/push";

void HandlePush(ServingContext& ctx, ServiceRequest& request, ServiceRespond respond) {
  std::shared_ptr<const ServingSnapshot> snapshot = ctx.registry->Current();
  auto parsed = ParsePushRequest(request.body, snapshot->definitions());
  if (!parsed.ok()) {
    ctx.metrics.CountError(kPath, parsed.status());
    return respond(ServiceReply::Error(parsed.status()));
  }
  boost::asio::post(*ctx.blocking, [&ctx, snapshot = std::move(snapshot), push = std::move(*parsed),
                                    respond = std::move(respond)] {
    PushContext pc;
    pc.definitions = &snapshot->definitions();
    pc.layouts = &snapshot->online->layouts();
    pc.store = ctx.store;
    pc.engine = ctx.offline.get();
    pc.clock = ctx.options.clock;
    pc.log = ctx.push_log.get();
    pc.max_clock_skew = ctx.options.push_max_clock_skew;
    auto result = Push(pc, push.push_source_name, *push.rows, push.to);
    if (!result.ok()) {
      ctx.metrics.CountError(kPath, result.status());
      return respond(ServiceReply::Error(result.status()));
    }
    ctx.metrics.push_rows->Increment(static_cast<double>(result->rows));
    respond(ServiceReply::Ok(
        PushResultJson(push.push_source_name, push.to, *result, ctx.options.repo_root)));
  });
}

}  // namespace

void RegisterPushEndpoints(ServingContext& context, std::vector<Endpoint>* endpoints) {
  endpoints->push_back({"POST", kPath, [&context](ServiceRequest& request, ServiceRespond respond) {
                          HandlePush(context, request, std::move(respond));
                        }});
}

}  // namespace granary
