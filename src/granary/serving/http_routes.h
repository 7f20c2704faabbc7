// The feature server's endpoints as HTTP routes: the only place where the service's replies
// become HTTP status codes (docs/SERVING.md, "Errors").
#pragma once

#include <vector>

#include "granary/serving/http/http_server.h"
#include "granary/serving/service.h"

namespace granary {

// The HTTP status of an error reply: InvalidArgument 400, NotFound 404, AlreadyExists and
// FailedPrecondition 409, Unavailable 503, anything else 500.
int HttpStatusOf(const Status& status);

// One route per endpoint. A reply's error becomes http::JsonError(HttpStatusOf(status), message)
// unless the handler gave a body of its own.
std::vector<http::Route> HttpRoutes(const std::vector<Endpoint>& endpoints);

}  // namespace granary
