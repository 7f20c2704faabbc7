// The JSON report of a materialization, as POST /materialize and /materialize-incremental answer
// it (docs/SERVING.md), and its reader, with which the CLI and the SDK turn a run handed to a
// running server back into a MaterializeReport (materialize_handoff.h). Stateless; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "granary/common/result.h"
#include "granary/materialize/materializer.h"

namespace granary {

// "succeeded", "cancelled" or "failed".
const char* MaterializeOutcomeName(const Status& status);

// {"status", "code", "error"?, "end", "views": [{"view", "status", "code", "error"?, "start",
// "end", "run_id", scan and write counts, watermarks, "seconds"}, ...]}.
std::string MaterializeReportJson(const MaterializeRequest& run, const MaterializeReport& report);

// The inverse of MaterializeReportJson: every field a ViewMaterialization has in the JSON,
// statuses with their codes and messages. InvalidArgument naming the field when the text is not
// such a report.
Result<MaterializeReport> ParseMaterializeReport(std::string_view json);

}  // namespace granary
