// OpenOfflineEngine: the offline engine a repository's granary.yaml names (offline_engine.h).
//
//   offline_store:
//     type: file     # the embedded engine (the default when offline_store is left out)
//   offline_store:
//     type: spark    # Apache Spark through Spark Connect
//     remote: "sc://host:15002"
//
// Callers pass the knobs of every engine; each engine takes its own and ignores the others (the
// CLI's --memory-budget, --threads and --spill-dir set the embedded engine's).
#pragma once

#include <memory>

#include "granary/common/result.h"
#include "granary/offline/embedded/embedded_engine.h"
#include "granary/offline/offline_engine.h"
#include "granary/registry/repo_config.h"

namespace granary {

struct OfflineEngineOptions {
  EmbeddedEngineOptions embedded;  // type: file
};

// The engine of config.offline_store, over the repository at config.root. InvalidArgument for an
// unknown type; kNotImplemented for a type this build does not include; the engine's own
// connection errors (naming the server) otherwise.
Result<std::unique_ptr<OfflineEngine>> OpenOfflineEngine(const RepoConfig& config,
                                                         const OfflineEngineOptions& options = {});

}  // namespace granary
