// FileSourceInspector: reads the schema of Parquet, CSV and Delta Lake sources for validation.
#pragma once

#include <filesystem>

#include "granary/registry/validator.h"

namespace arrow {
class Schema;
}

namespace granary {

// The Arrow schema of a Parquet file. IOError or InvalidArgument naming the file.
Result<std::shared_ptr<arrow::Schema>> ReadParquetSchema(const std::filesystem::path& file);
// The columns of a CSV file (its header row), typed by Arrow's inference of its first rows.
Result<std::shared_ptr<arrow::Schema>> ReadCsvHeader(const std::filesystem::path& file);

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
