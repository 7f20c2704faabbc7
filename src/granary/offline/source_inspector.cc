#include "granary/offline/source_inspector.h"

#include <arrow/api.h>
#include <arrow/csv/api.h>
#include <arrow/io/api.h>
#include <fmt/format.h>
#include <parquet/arrow/reader.h>
#include <parquet/exception.h>

#include "granary/offline/delta_log.h"
#include "granary/offline/file_listing.h"

namespace granary {

Result<std::shared_ptr<arrow::Schema>> ReadParquetSchema(const std::filesystem::path& file) {
  auto in = arrow::io::ReadableFile::Open(file.string());
  if (!in.ok())
    return Status::IOError(fmt::format("cannot open {}: {}", file.string(), in.status().message()));
  auto reader = parquet::arrow::OpenFile(*in, arrow::default_memory_pool());
  if (!reader.ok()) {
    return Status::InvalidArgument(fmt::format("{} is not a readable Parquet file: {}",
                                               file.string(), reader.status().message()));
  }
  std::shared_ptr<arrow::Schema> schema;
  auto st = (*reader)->GetSchema(&schema);
  if (!st.ok()) {
    return Status::InvalidArgument(
        fmt::format("{}: cannot map its Parquet schema to Arrow: {}", file.string(), st.message()));
  }
  return schema;
}

Result<std::shared_ptr<arrow::Schema>> ReadCsvHeader(const std::filesystem::path& file) {
  auto in = arrow::io::ReadableFile::Open(file.string());
  if (!in.ok())
    return Status::IOError(fmt::format("cannot open {}: {}", file.string(), in.status().message()));
  auto read_options = arrow::csv::ReadOptions::Defaults();
  read_options.block_size = 1 << 16;
  auto reader = arrow::csv::StreamingReader::Make(
      arrow::io::default_io_context(), *in, read_options, arrow::csv::ParseOptions::Defaults(),
      arrow::csv::ConvertOptions::Defaults());
  if (!reader.ok()) {
    return Status::InvalidArgument(
        fmt::format("{} is not a readable CSV file with a header row: {}", file.string(),
                    reader.status().message()));
  }
  return (*reader)->schema();
}

Result<std::optional<InspectedSchema>> FileSourceInspector::Inspect(const DataSource& source) {
  std::filesystem::path path(source.path);
  if (path.is_relative()) path = root_ / path;
  try {
    switch (source.format) {
      case SourceFormat::kDelta: {
        auto schema = ReadDeltaSchema(path);
        if (schema.status().code() == StatusCode::kNotFound)
          return std::optional<InspectedSchema>();
        if (!schema.ok()) return schema.status();
        return std::optional(InspectedSchema{*schema, true});
      }
      case SourceFormat::kCsv: {
        GRANARY_ASSIGN_OR_RAISE(auto files, ListDataFiles(path, ".csv"));
        if (files.empty()) return std::optional<InspectedSchema>();
        GRANARY_ASSIGN_OR_RAISE(auto schema, ReadCsvHeader(files.front()));
        return std::optional(InspectedSchema{schema, false});
      }
      case SourceFormat::kParquet: {
        GRANARY_ASSIGN_OR_RAISE(auto files, ListDataFiles(path, ".parquet"));
        if (files.empty()) return std::optional<InspectedSchema>();
        GRANARY_ASSIGN_OR_RAISE(auto schema, ReadParquetSchema(files.front()));
        // Hive-style partition folders (key=value) between the source path and the file.
        std::filesystem::path relative = files.front().lexically_relative(path).parent_path();
        arrow::FieldVector fields = schema->fields();
        for (const auto& part : relative) {
          std::string segment = part.string();
          size_t eq = segment.find('=');
          if (eq != std::string::npos && eq > 0 &&
              schema->GetFieldByName(segment.substr(0, eq)) == nullptr) {
            fields.push_back(arrow::field(segment.substr(0, eq), arrow::utf8()));
          }
        }
        return std::optional(InspectedSchema{arrow::schema(fields), true});
      }
    }
  } catch (const std::exception& e) {  // parquet throws from some paths; keep it at this edge
    return Status::InvalidArgument(fmt::format("cannot read {}: {}", path.string(), e.what()));
  }
  return Status::Internal("unknown source format");
}

}  // namespace granary
