// Delta Lake transaction log: the parts needed to know a table's schema.
//
// The full log replay (add/remove actions, checkpoints, partition values) for reading the data
// belongs with the offline retrieval engine; here is what validation needs.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>

#include "granary/common/result.h"

namespace arrow {
class Schema;
}

namespace granary {

// Converts a Delta schemaString (JSON, as in a metaData action) to an Arrow schema: long, integer,
// short, byte, float, double, boolean, string, binary, date, timestamp (UTC), timestamp_ntz,
// decimal(p,s), array, struct and map.
Result<std::shared_ptr<arrow::Schema>> DeltaSchemaToArrow(std::string_view schema_json);

// The schema of the newest metaData action of the table at `table` (its folder). Reads the JSON
// commits and, when they do not hold one, the checkpoint named by _last_checkpoint. NotFound when
// `table` does not exist; InvalidArgument when it has no _delta_log; Corruption on bad logs.
Result<std::shared_ptr<arrow::Schema>> ReadDeltaSchema(const std::filesystem::path& table);

}  // namespace granary
