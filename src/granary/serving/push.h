// Push over the feature server's transports: Feast's push request JSON in, the answer's JSON out.
// The push itself (checks, the offline append, the online writes) is the write path below serving,
// granary/push/push.h. Thread-safe (no shared state).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "granary/common/result.h"
#include "granary/push/push.h"
#include "granary/registry/definitions.h"

namespace arrow {
class Table;
}

namespace granary {

struct PushRequest {
  std::string push_source_name;
  std::shared_ptr<arrow::Table> rows;  // columns named as the batch source's columns
  PushTarget to = PushTarget::kOnline;
};

// Parses Feast's push request, typing each df column by PushColumnTypes (other columns by their
// JSON values: numbers, strings, booleans):
//   {"push_source_name": "payments_push", "df": {"customer_id": [1001], ...},
//    "to": "online" | "offline" | "online_and_offline"}
// ("to" defaults to "online"; Feast's "allow_registry_cache" and "transform_on_write" are
// accepted and ignored). Timestamps are RFC 3339 strings; bytes base64; NaN and Infinity as
// Python's json module writes them. InvalidArgument says what and where, e.g.
// `df.customer_id[3]: expected int64, got "abc"`.
Result<PushRequest> ParsePushRequest(std::string_view json, const Definitions& defs);

// Push's outcome as the JSON body the feature server answers with (file paths relative to
// `repo_root`).
std::string PushResultJson(const std::string& push_source_name, PushTarget to,
                           const PushResult& result, const std::filesystem::path& repo_root);

}  // namespace granary
