#include "granary/serving/http_routes.h"

namespace granary {

int HttpStatusOf(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
      return 409;
    case StatusCode::kUnavailable:
    case StatusCode::kCancelled:
      return 503;
    case StatusCode::kNotImplemented:
      return 501;
    case StatusCode::kIOError:
    case StatusCode::kCorruption:
    case StatusCode::kInternal:
      return 500;
  }
  return 500;
}

std::vector<http::Route> HttpRoutes(const std::vector<Endpoint>& endpoints) {
  std::vector<http::Route> routes;
  routes.reserve(endpoints.size());
  for (const Endpoint& e : endpoints) {
    http::Route route;
    route.method = e.method;
    route.path = e.path;
    route.is_public = e.is_public;
    route.handler = [handler = e.handler](http::HttpRequest& req, http::Respond respond) {
      ServiceRequest request{std::move(req.body), std::move(req.query), req.executor};
      handler(request, [respond = std::move(respond)](ServiceReply reply) {
        if (reply.status.ok()) {
          http::HttpResponse response{
              reply.accepted ? 202 : 200, std::move(reply.content_type), std::move(reply.body), {}};
          if (!reply.server_timing.empty()) {
            response.headers.emplace_back("Server-Timing", std::move(reply.server_timing));
          }
          return respond(std::move(response));
        }
        const int code = HttpStatusOf(reply.status);
        if (!reply.body.empty()) {
          return respond({code, std::move(reply.content_type), std::move(reply.body), {}});
        }
        respond(http::JsonError(code, reply.status.message()));
      });
    };
    routes.push_back(std::move(route));
  }
  return routes;
}

}  // namespace granary
