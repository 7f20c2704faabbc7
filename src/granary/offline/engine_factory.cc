#include "granary/offline/engine_factory.h"

#include <fmt/format.h>

#include "granary/offline/spark/spark_engine.h"

namespace granary {

Result<std::unique_ptr<OfflineEngine>> OpenOfflineEngine(const RepoConfig& config,
                                                         const OfflineEngineOptions& options) {
  const std::string& type = config.offline_store.type;
  if (type == "file") return MakeEmbeddedEngine(config.root, options.embedded);
  if (type == "spark") {
    SparkEngineOptions spark;
    spark.remote = config.offline_store.remote;
    spark.repo_root = config.root;
    auto engine = OpenSparkEngine(spark);
    if (!engine.ok()) {
      return engine.status().WithContext(
          fmt::format("{}: offline_store type spark", config.ConfigPath().string()));
    }
    return engine;
  }
  return Status::InvalidArgument(fmt::format(
      "{}: offline_store type '{}' is not an offline engine; use file (the embedded engine) or "
      "spark",
      config.ConfigPath().string(), type));
}

}  // namespace granary
