// Reading and writing whole tables in Parquet or CSV, chosen by the file's extension: entity files
// in, training sets out.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "granary/common/result.h"

namespace arrow {
class DataType;
class Table;
}  // namespace arrow

namespace granary {

// Reads `path` (.parquet or .csv; .csv.gz etc. are not supported). CSV columns are typed by
// Arrow's inference except those in `csv_types` (e.g. join keys read as their declared type, so
// "007" stays a string). NotFound, or InvalidArgument naming the file and what is wrong.
Result<std::shared_ptr<arrow::Table>> ReadTableFile(
    const std::filesystem::path& path,
    const std::map<std::string, std::shared_ptr<arrow::DataType>>& csv_types = {});

// Writes `table` to `path` (.parquet or .csv) atomically: to a temporary file beside it, renamed
// over `path` only when complete, so a failure never leaves a half-written file.
Status WriteTableFile(const arrow::Table& table, const std::filesystem::path& path);

}  // namespace granary
