#include "granary/offline/engine_factory.h"

#include <fmt/format.h>

namespace granary {

Result<std::unique_ptr<OfflineEngine>> OpenOfflineEngine(const RepoConfig& config,
                                                         const OfflineEngineOptions& options) {
  const std::string& type = config.offline_store.type;
  if (type == "file") return MakeEmbeddedEngine(config.root, options.embedded);
  if (type == "spark") {
    return Status::NotImplemented(fmt::format(
        "{}: offline_store type spark is not built into this Granary yet; use type file (the "
        "embedded engine) for now",
        config.ConfigPath().string()));
  }
  return Status::InvalidArgument(fmt::format(
      "{}: offline_store type '{}' is not an offline engine; use file (the embedded engine) or "
      "spark",
      config.ConfigPath().string(), type));
}

}  // namespace granary
