#include "granary/offline/delta_log.h"

// JSON through common/json.h (Boost.JSON), not simdjson: the pyarrow wheel's libparquet exports
// the symbols of its own, newer simdjson, which interpose on Debian's libsimdjson in any process
// that loads both (ASan caught the mismatch).
#include <arrow/api.h>
#include <fmt/format.h>

#include <cstdio>

#include "granary/offline/delta_json.h"

namespace granary {
namespace {

using delta_json::BoolMember;
using delta_json::JsonValue;
using delta_json::Member;

Result<std::shared_ptr<arrow::DataType>> DeltaType(const JsonValue& type);

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
      // Arrow aborts the process on a precision outside 1..38 (an ARROW_CHECK; seen while writing
      // the delta_log fuzzer). Delta allows at most 38 digits and a scale from 0 to the precision.
      if (precision < 1 || precision > 38 || scale < 0 || scale > precision) {
        return Status::InvalidArgument(fmt::format(
            "unsupported Delta type '{}': a decimal needs a precision from 1 to 38 and a scale "
            "from 0 to the precision",
            name));
      }
      return arrow::decimal128(precision, scale);
    }
  }
  return Status::InvalidArgument(fmt::format("unsupported Delta type '{}'", name));
}

Result<std::shared_ptr<arrow::Field>> DeltaField(const JsonValue& field) {
  const JsonValue* name = Member(field, "name");
  const JsonValue* type = Member(field, "type");
  if (name == nullptr || !name->is_string() || type == nullptr) {
    return Status::Corruption("a Delta schema field lacks 'name' or 'type'");
  }
  GRANARY_ASSIGN_OR_RAISE(auto arrow_type, DeltaType(*type));
  // An absent 'nullable' means nullable, as Delta's default.
  return arrow::field(std::string(JsonStringView(name->get_string())), arrow_type,
                      BoolMember(field, "nullable", true));
}

Result<std::shared_ptr<arrow::DataType>> DeltaType(const JsonValue& type) {
  if (type.is_string()) return PrimitiveType(JsonStringView(type.get_string()));
  const JsonValue* kind_value = Member(type, "type");
  if (kind_value == nullptr || !kind_value->is_string()) {
    return Status::Corruption("a Delta type has no 'type'");
  }
  const std::string_view kind = JsonStringView(kind_value->get_string());
  if (kind == "struct") {
    const JsonValue* fields = Member(type, "fields");
    if (fields == nullptr || !fields->is_array()) {
      return Status::Corruption("a Delta struct has no 'fields'");
    }
    arrow::FieldVector out;
    for (const auto& f : fields->get_array()) {
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

}  // namespace

Result<std::shared_ptr<arrow::Schema>> DeltaSchemaToArrow(std::string_view schema_json) {
  auto doc = ParseJson(schema_json);
  if (!doc.ok()) {
    return Status::Corruption("the Delta schemaString is not valid JSON: " +
                              doc.status().message());
  }
  GRANARY_ASSIGN_OR_RAISE(auto type, DeltaType(*doc));
  if (type->id() != arrow::Type::STRUCT)
    return Status::Corruption("a Delta schema must be a struct");
  return arrow::schema(type->fields());
}

Result<std::shared_ptr<arrow::Schema>> ReadDeltaSchema(const std::filesystem::path& table) {
  // The same replay as reading the table, so validation accepts exactly the tables a scan reads.
  GRANARY_ASSIGN_OR_RAISE(DeltaSnapshot snapshot, ReadDeltaSnapshot(table));
  return snapshot.schema;
}

}  // namespace granary
