// POST /push: Feast's push request, and POST /write-to-online-store: rows of one view, as Feast's
// SDK sends them with a remote online store (docs/SERVING.md). The JSON is parsed and typed on the
// worker thread; the writes (online store, offline append) block, so they run on the blocking pool
// and the answer comes back from there.
#include <boost/asio/post.hpp>

#include "granary/serving/online_write.h"
#include "granary/serving/push.h"
#include "granary/serving/service.h"

namespace granary {
namespace {

constexpr const char* kPath = "/push";
constexpr const char* kWritePath = "/write-to-online-store";

PushContext MakePushContext(ServingContext& ctx, const ServingSnapshot& snapshot) {
  PushContext pc;
  pc.definitions = &snapshot.definitions();
  pc.layouts = &snapshot.online->layouts();
  pc.store = ctx.store;
  pc.engine = ctx.offline.get();
  pc.clock = ctx.options.clock;
  pc.log = ctx.push_log.get();
  pc.max_clock_skew = ctx.options.push_max_clock_skew;
  return pc;
}

void HandlePush(ServingContext& ctx, ServiceRequest& request, ServiceRespond respond) {
  std::shared_ptr<const ServingSnapshot> snapshot = ctx.registry->Current();
  auto parsed = ParsePushRequest(request.body, snapshot->definitions());
  if (!parsed.ok()) {
    ctx.metrics.CountError(kPath, parsed.status());
    return respond(ServiceReply::Error(parsed.status()));
  }
  boost::asio::post(*ctx.blocking, [&ctx, snapshot = std::move(snapshot), push = std::move(*parsed),
                                    respond = std::move(respond)] {
    auto result = Push(MakePushContext(ctx, *snapshot), push.push_source_name, *push.rows, push.to);
    if (!result.ok()) {
      ctx.metrics.CountError(kPath, result.status());
      return respond(ServiceReply::Error(result.status()));
    }
    ctx.metrics.push_rows->Increment(static_cast<double>(result->rows));
    respond(ServiceReply::Ok(
        PushResultJson(push.push_source_name, push.to, *result, ctx.options.repo_root)));
  });
}

// Feast's SDK with `online_store: {type: remote}` writes (and pushes) this way (online_write.h).
void HandleWriteToOnlineStore(ServingContext& ctx, ServiceRequest& request,
                              ServiceRespond respond) {
  std::shared_ptr<const ServingSnapshot> snapshot = ctx.registry->Current();
  auto parsed =
      ParseOnlineWriteRequest(request.body, snapshot->definitions(), snapshot->online->layouts());
  if (!parsed.ok()) {
    ctx.metrics.CountError(kWritePath, parsed.status());
    return respond(ServiceReply::Error(parsed.status()));
  }
  boost::asio::post(*ctx.blocking, [&ctx, snapshot = std::move(snapshot),
                                    write = std::move(*parsed), respond = std::move(respond)] {
    auto stats = WriteToOnlineStore(MakePushContext(ctx, *snapshot), write);
    if (!stats.ok()) {
      ctx.metrics.CountError(kWritePath, stats.status());
      return respond(ServiceReply::Error(stats.status()));
    }
    ctx.metrics.push_rows->Increment(static_cast<double>(write.num_rows));
    respond(ServiceReply::Ok(OnlineWriteResultJson(write, *stats)));
  });
}

}  // namespace

void RegisterPushEndpoints(ServingContext& context, std::vector<Endpoint>* endpoints) {
  endpoints->push_back({"POST", kPath, [&context](ServiceRequest& request, ServiceRespond respond) {
                          HandlePush(context, request, std::move(respond));
                        }});
  endpoints->push_back(
      {"POST", kWritePath, [&context](ServiceRequest& request, ServiceRespond respond) {
         HandleWriteToOnlineStore(context, request, std::move(respond));
       }});
}

}  // namespace granary
