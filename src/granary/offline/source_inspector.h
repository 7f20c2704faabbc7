// FileSourceInspector: reads the schema of Parquet, CSV and Delta Lake sources for validation.
#pragma once

#include <filesystem>

#include "granary/registry/validator.h"

namespace granary {

// Resolves source paths against a repository root. Thread-compatible.
class FileSourceInspector final : public SourceInspector {
 public:
  explicit FileSourceInspector(std::filesystem::path root) : root_(std::move(root)) {}

  // Parquet: the schema of the first file (plus hive partition columns k=v of its folders, as
  // strings); CSV: the header of the first file (untyped); Delta: the newest metaData schema.
  Result<std::optional<InspectedSchema>> Inspect(const DataSource& source) override;

 private:
  std::filesystem::path root_;
};

}  // namespace granary
