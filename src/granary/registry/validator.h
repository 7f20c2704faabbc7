// Validation of a repository's definitions: every reference resolves, names are unique and usable,
// and (where a source's data exists) every column a view reads is there with a fitting type.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "granary/common/result.h"
#include "granary/registry/definitions.h"
#include "granary/registry/diagnostics.h"

namespace arrow {
class Schema;
}

namespace granary {

// The columns a data source really has.
struct InspectedSchema {
  std::shared_ptr<arrow::Schema> schema;
  // False when column types are not stored in the data (CSV): only names are checked then.
  bool typed = true;
};

// Reads the schema of a source's data; implemented by the offline store (offline/), which the
// registry does not depend on. Implementations must be thread-compatible.
class SourceInspector {
 public:
  virtual ~SourceInspector() = default;
  // The source's schema; std::nullopt when its data does not exist yet (a warning, not an error);
  // an error when data exists but cannot be read.
  virtual Result<std::optional<InspectedSchema>> Inspect(const DataSource& source) = 0;
};

// Fills in the output type of every aggregation whose type depends on its column (sum, min, max,
// first, last) and is not given, from the column's type in the source's data. Aggregations whose
// source has no data (or an untyped one: CSV) keep no type; ValidateDefinitions then asks for an
// explicit `type:`. Runs before ValidateDefinitions.
void InferAggregationTypes(Definitions* defs, SourceInspector* inspector);

// Checks `defs` and reports every problem to `diag`. With an inspector, sources are checked against
// their data too.
void ValidateDefinitions(const Definitions& defs, SourceInspector* inspector, Diagnostics* diag);

}  // namespace granary
