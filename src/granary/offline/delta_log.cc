#include "granary/offline/delta_log.h"

// RapidJSON rather than simdjson: the pyarrow wheel's libparquet exports the symbols of its own,
// newer simdjson, which interpose on Debian's libsimdjson in any process that loads both (ASan
// caught the mismatch). Arrow's bundled RapidJSON lives in namespace arrow::rapidjson, so the
// header-only Debian copy used here cannot clash.
#include <arrow/api.h>
#include <arrow/io/api.h>
#include <fmt/format.h>
#include <parquet/arrow/reader.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace granary {
namespace {

using JsonValue = rapidjson::Value;

Result<std::shared_ptr<arrow::DataType>> DeltaType(const JsonValue& type);

const JsonValue* Member(const JsonValue& v, const char* name) {
  if (!v.IsObject()) return nullptr;
  auto it = v.FindMember(name);
  return it == v.MemberEnd() ? nullptr : &it->value;
}

bool BoolMember(const JsonValue& v, const char* name, bool fallback) {
  const JsonValue* m = Member(v, name);
  return m != nullptr && m->IsBool() ? m->GetBool() : fallback;
}

Result<std::shared_ptr<arrow::DataType>> PrimitiveType(std::string_view name) {
  if (name == "long") return arrow::int64();
  if (name == "integer") return arrow::int32();
  if (name == "short") return arrow::int16();
  if (name == "byte") return arrow::int8();
  if (name == "float") return arrow::float32();
  if (name == "double") return arrow::float64();
  if (name == "boolean") return arrow::boolean();
  if (name == "string") return arrow::utf8();
  if (name == "binary") return arrow::binary();
  if (name == "date") return arrow::date32();
  if (name == "timestamp") return arrow::timestamp(arrow::TimeUnit::MICRO, "UTC");
  if (name == "timestamp_ntz") return arrow::timestamp(arrow::TimeUnit::MICRO);
  if (name.starts_with("decimal(")) {
    int precision = 0, scale = 0;
    if (std::sscanf(std::string(name).c_str(), "decimal(%d,%d)", &precision, &scale) == 2 ||
        std::sscanf(std::string(name).c_str(), "decimal(%d, %d)", &precision, &scale) == 2) {
      return arrow::decimal128(precision, scale);
    }
  }
  return Status::InvalidArgument(fmt::format("unsupported Delta type '{}'", name));
}

Result<std::shared_ptr<arrow::Field>> DeltaField(const JsonValue& field) {
  const JsonValue* name = Member(field, "name");
  const JsonValue* type = Member(field, "type");
  if (name == nullptr || !name->IsString() || type == nullptr) {
    return Status::Corruption("a Delta schema field lacks 'name' or 'type'");
  }
  GRANARY_ASSIGN_OR_RAISE(auto arrow_type, DeltaType(*type));
  // An absent 'nullable' means nullable, as Delta's default.
  return arrow::field(name->GetString(), arrow_type, BoolMember(field, "nullable", true));
}

Result<std::shared_ptr<arrow::DataType>> DeltaType(const JsonValue& type) {
  if (type.IsString())
    return PrimitiveType(std::string_view(type.GetString(), type.GetStringLength()));
  const JsonValue* kind_value = Member(type, "type");
  if (kind_value == nullptr || !kind_value->IsString()) {
    return Status::Corruption("a Delta type has no 'type'");
  }
  const std::string_view kind = kind_value->GetString();
  if (kind == "struct") {
    const JsonValue* fields = Member(type, "fields");
    if (fields == nullptr || !fields->IsArray()) {
      return Status::Corruption("a Delta struct has no 'fields'");
    }
    arrow::FieldVector out;
    for (const auto& f : fields->GetArray()) {
      GRANARY_ASSIGN_OR_RAISE(auto field, DeltaField(f));
      out.push_back(field);
    }
    return arrow::struct_(out);
  }
  if (kind == "array") {
    const JsonValue* element = Member(type, "elementType");
    if (element == nullptr) return Status::Corruption("a Delta array has no elementType");
    GRANARY_ASSIGN_OR_RAISE(auto element_type, DeltaType(*element));
    return arrow::list(
        arrow::field("element", element_type, BoolMember(type, "containsNull", true)));
  }
  if (kind == "map") {
    const JsonValue* key = Member(type, "keyType");
    const JsonValue* value = Member(type, "valueType");
    if (key == nullptr || value == nullptr) {
      return Status::Corruption("a Delta map lacks keyType or valueType");
    }
    GRANARY_ASSIGN_OR_RAISE(auto key_type, DeltaType(*key));
    GRANARY_ASSIGN_OR_RAISE(auto value_type, DeltaType(*value));
    return arrow::map(key_type, value_type);
  }
  return Status::InvalidArgument(fmt::format("unsupported Delta type '{}'", kind));
}

// Version number of a commit file name "00000000000000000012.json", or -1.
int64_t CommitVersion(const std::string& name) {
  if (name.size() != 25 || !name.ends_with(".json")) return -1;
  int64_t v = 0;
  for (size_t i = 0; i < 20; ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    v = v * 10 + (name[i] - '0');
  }
  return v;
}

Result<std::optional<std::string>> SchemaFromCheckpoint(const std::filesystem::path& log) {
  std::ifstream in(log / "_last_checkpoint");
  if (!in) return std::optional<std::string>();
  std::stringstream buf;
  buf << in.rdbuf();
  rapidjson::Document doc;
  doc.Parse(buf.str().c_str());
  const JsonValue* version_value = doc.HasParseError() ? nullptr : Member(doc, "version");
  if (version_value == nullptr || !version_value->IsInt64()) {
    return Status::Corruption(
        fmt::format("{} is not valid JSON with a version", (log / "_last_checkpoint").string()));
  }
  const std::string prefix = fmt::format("{:020}.checkpoint", version_value->GetInt64());
  std::vector<std::filesystem::path> parts;
  for (const auto& entry : std::filesystem::directory_iterator(log)) {
    std::string name = entry.path().filename().string();
    if (name.starts_with(prefix) && name.ends_with(".parquet")) parts.push_back(entry.path());
  }
  std::sort(parts.begin(), parts.end());
  for (const auto& part : parts) {
    auto file = arrow::io::ReadableFile::Open(part.string());
    if (!file.ok()) return Status::IOError(file.status().ToString());
    auto reader = parquet::arrow::OpenFile(*file, arrow::default_memory_pool());
    if (!reader.ok()) {
      return Status::Corruption(
          fmt::format("checkpoint {}: {}", part.string(), reader.status().message()));
    }
    auto table = (*reader)->ReadTable();
    if (!table.ok()) {
      return Status::Corruption(
          fmt::format("checkpoint {}: {}", part.string(), table.status().message()));
    }
    auto column = (*table)->GetColumnByName("metaData");
    if (column == nullptr) continue;
    for (const auto& chunk : column->chunks()) {
      const auto& meta = static_cast<const arrow::StructArray&>(*chunk);
      auto schema_field = meta.GetFieldByName("schemaString");
      if (schema_field == nullptr) continue;
      const auto& strings = static_cast<const arrow::StringArray&>(*schema_field);
      for (int64_t i = 0; i < meta.length(); ++i) {
        if (meta.IsValid(i) && strings.IsValid(i)) return std::optional(strings.GetString(i));
      }
    }
  }
  return std::optional<std::string>();
}

}  // namespace

Result<std::shared_ptr<arrow::Schema>> DeltaSchemaToArrow(std::string_view schema_json) {
  rapidjson::Document doc;
  doc.Parse(schema_json.data(), schema_json.size());
  if (doc.HasParseError()) return Status::Corruption("the Delta schemaString is not valid JSON");
  GRANARY_ASSIGN_OR_RAISE(auto type, DeltaType(doc));
  if (type->id() != arrow::Type::STRUCT)
    return Status::Corruption("a Delta schema must be a struct");
  return arrow::schema(type->fields());
}

Result<std::shared_ptr<arrow::Schema>> ReadDeltaSchema(const std::filesystem::path& table) {
  std::error_code ec;
  if (!std::filesystem::exists(table, ec)) {
    return Status::NotFound(fmt::format("no Delta table at {}", table.string()));
  }
  const auto log = table / "_delta_log";
  if (!std::filesystem::is_directory(log, ec)) {
    return Status::InvalidArgument(fmt::format(
        "{} is not a Delta table: it has no _delta_log folder; use type: file for plain Parquet",
        table.string()));
  }
  std::vector<std::pair<int64_t, std::filesystem::path>> commits;
  for (const auto& entry : std::filesystem::directory_iterator(log, ec)) {
    int64_t v = CommitVersion(entry.path().filename().string());
    if (v >= 0) commits.emplace_back(v, entry.path());
  }
  std::sort(commits.rbegin(), commits.rend());
  for (const auto& [version, path] : commits) {
    std::ifstream in(path);
    std::string line, schema;
    int line_number = 0;
    while (std::getline(in, line)) {
      ++line_number;
      if (line.find("\"metaData\"") == std::string::npos) continue;
      rapidjson::Document action;
      action.Parse(line.c_str(), line.size());
      if (action.HasParseError()) {
        return Status::Corruption(fmt::format("{}:{}: not valid JSON", path.string(), line_number));
      }
      const JsonValue* meta = Member(action, "metaData");
      const JsonValue* schema_string = meta ? Member(*meta, "schemaString") : nullptr;
      if (schema_string != nullptr && schema_string->IsString())
        schema = schema_string->GetString();
    }
    if (!schema.empty()) return DeltaSchemaToArrow(schema);
  }
  GRANARY_ASSIGN_OR_RAISE(auto from_checkpoint, SchemaFromCheckpoint(log));
  if (from_checkpoint) return DeltaSchemaToArrow(*from_checkpoint);
  return Status::Corruption(fmt::format(
      "Delta table {} has no metaData action in its log or checkpoint", table.string()));
}

}  // namespace granary
