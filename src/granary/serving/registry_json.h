// The applied definitions as JSON, for the feature server's GET /registry.
#pragma once

#include <string>

#include "granary/registry/definitions.h"
#include "granary/registry/registry_store.h"

namespace granary {

// {"project", "version", "applied_at", "fingerprint", "entities": [...], "data_sources": [...],
//  "feature_views": [...], "feature_services": [...]}: every object with the keys of its YAML
// definition (docs/CONCEPTS.md), durations as "90d" text, empty optional keys left out, each kind
// sorted by name. docs/SERVING.md shows an example. Stateless; thread-safe.
std::string RegistryJson(const RegistryVersionInfo& info, const Definitions& definitions);

}  // namespace granary
