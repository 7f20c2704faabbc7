// The body of POST /materialize-incremental (docs/SERVING.md): parsed from JSON and checked
// against the served definitions. Stateless; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "granary/common/result.h"
#include "granary/common/time.h"
#include "granary/registry/definitions.h"

namespace granary {

struct MaterializeIncrementalBody {
  std::optional<Timestamp> start;   // POST /materialize only (its interval's start); required there
  std::optional<Timestamp> end;     // unset: now
  std::vector<std::string> views;   // empty: every online view
  bool wait = false;                // answer with the report when the run ends
  std::string views_key = "views";  // the field's name as given (or Feast's feature_views)
};

// {"end": "...", "views": [...], "wait": bool}, every field optional, and "start" (POST
// /materialize; the endpoint checks it); "end" and "start" are ISO 8601 times, and "end" may be
// "now" (ParseTimeOrNow, as the CLI and the SDK: the server's clock when the run starts); Feast's
// names start_ts, end_ts and feature_views are accepted too and make "wait" default to true
// (Feast's server answers when the run is done). An empty body is an empty object.
// InvalidArgument saying what and where (line and column for malformed JSON; the field for the
// rest).
Result<MaterializeIncrementalBody> ParseMaterializeRequest(std::string_view json);

// The views asked for must be online views of `defs` (so a typo is a 400 now, not a failed run
// later): InvalidArgument naming the view (with "did you mean"); FailedPrecondition when no view
// is online.
Status CheckMaterializeViews(const Definitions& defs, const MaterializeIncrementalBody& body);

}  // namespace granary
