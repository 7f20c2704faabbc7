// POST /get-online-features: Feast's request in, Feast's response out (docs/SERVING.md).
//
// The path of a request, all on its worker thread: parse the JSON, check the size, take the
// current registry snapshot, resolve the request against it, read asynchronously (the worker
// serves other connections meanwhile), write the response JSON. The snapshot is held until the
// response is written, so a registry reload never changes a request midway.
#include <fmt/format.h>

#include <chrono>

#include "granary/serving/online_features.h"
#include "granary/serving/service.h"

namespace granary {
namespace {

constexpr const char* kPath = "/get-online-features";

void GetOnlineFeatures(ServingContext& ctx, ServiceRequest& request, ServiceRespond respond) {
  auto fail = [&ctx, &respond](Status st) {
    ctx.metrics.CountError(kPath, st);
    respond(ServiceReply::Error(std::move(st)));
  };
  auto parsed = ParseOnlineFeaturesRequest(request.body);
  if (!parsed.ok()) return fail(parsed.status());
  const size_t rows = parsed->entities.empty() ? 0 : parsed->entities.front().values.size();
  if (rows > ctx.options.max_entities) {
    return fail(Status::InvalidArgument(fmt::format(
        "the request asks for {} entity rows; the limit is {} per request (granary serve "
        "--max-entities); split it into several requests",
        rows, ctx.options.max_entities)));
  }
  std::shared_ptr<const ServingSnapshot> snapshot = ctx.registry->Current();
  auto resolved = snapshot->online->Resolve(*parsed);
  if (!resolved.ok()) return fail(resolved.status());
  ctx.metrics.entities_per_request->Observe(static_cast<double>(rows));

  auto shared = std::make_shared<ResolvedOnlineRequest>(std::move(*resolved));
  OnlineReadRequest read = shared->read;
  read.split = ctx.split.get();
  const auto started = std::chrono::steady_clock::now();
  ctx.store->AsyncRead(
      request.executor, std::move(read),
      [&ctx, snapshot = std::move(snapshot), shared, started,
       respond = std::move(respond)](Result<OnlineFeatures> features) {
        const auto read_done = std::chrono::steady_clock::now();
        ctx.metrics.store_read_seconds->Observe(
            std::chrono::duration<double>(read_done - started).count());
        if (!features.ok()) {
          Status st = features.status();
          if (st.code() == StatusCode::kUnavailable) {
            st = st.WithContext(fmt::format("the online store ({}) is unavailable; retry later",
                                            ctx.store->Describe()));
          }
          ctx.metrics.CountError(kPath, st);
          return respond(ServiceReply::Error(std::move(st)));
        }
        std::string json;
        OnlineFeaturesService::WriteResponse(*shared, *features, &json, ctx.split.get());
        ServiceReply reply = ServiceReply::Ok(std::move(json));
        if (ctx.options.server_timing) {
          using Millis = std::chrono::duration<double, std::milli>;
          reply.server_timing =
              fmt::format("read;dur={:.3f}, json;dur={:.3f}", Millis(read_done - started).count(),
                          Millis(std::chrono::steady_clock::now() - read_done).count());
        }
        respond(std::move(reply));
      });
}

}  // namespace

void RegisterOnlineEndpoints(ServingContext& context, std::vector<Endpoint>* endpoints) {
  endpoints->push_back({"POST", kPath, [&context](ServiceRequest& request, ServiceRespond respond) {
                          GetOnlineFeatures(context, request, std::move(respond));
                        }});
}

}  // namespace granary
