#include "granary/serving/push.h"

#include <arrow/api.h>
#include <fmt/format.h>

#include "granary/common/json.h"
#include "granary/common/strings.h"
#include "granary/serving/json_format.h"
#include "granary/types/arrow_convert.h"

namespace granary {
namespace {

// A JSON value as it appears in the request, shortened, for messages.
std::string Shown(const boost::json::value& v) {
  JsonWriter w;
  w.Value(v);
  std::string text = w.Release();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

Result<Value> JsonScalar(const boost::json::value& v, ScalarType type) {
  auto expected = [&](std::string_view hint = "") {
    return Status::InvalidArgument(
        fmt::format("expected {}, got {}{}", ValueType::Scalar(type).ToString(), Shown(v), hint));
  };
  switch (type) {
    case ScalarType::kInt32:
    case ScalarType::kInt64: {
      if (!v.is_int64()) return expected(v.is_string() ? "; write the number without quotes" : "");
      const int64_t n = v.get_int64();
      if (type == ScalarType::kInt64) return Value(n);
      if (n < INT32_MIN || n > INT32_MAX) return expected(" (out of the int32 range)");
      return Value(static_cast<int32_t>(n));
    }
    case ScalarType::kFloat32:
    case ScalarType::kFloat64: {
      if (!v.is_number()) return expected(v.is_string() ? "; write the number without quotes" : "");
      const double d = JsonNumberAsDouble(v);
      if (type == ScalarType::kFloat32) return Value(static_cast<float>(d));
      return Value(d);
    }
    case ScalarType::kString:
      if (!v.is_string()) return expected("; write it in quotes");
      return Value(std::string(JsonStringView(v.get_string())));
    case ScalarType::kBytes: {
      if (!v.is_string()) return expected("; write bytes as a base64 string");
      auto bytes = serving::DecodeBase64(JsonStringView(v.get_string()));
      if (!bytes.ok()) return expected(": " + bytes.status().message());
      return Value(Bytes{std::move(*bytes)});
    }
    case ScalarType::kBool:
      if (!v.is_bool()) return expected("; write true or false");
      return Value(v.get_bool());
    case ScalarType::kTimestamp: {
      if (!v.is_string()) {
        return expected("; write an RFC 3339 time such as \"2026-11-23T02:00:00Z\"");
      }
      auto ts = ParseTimestamp(JsonStringView(v.get_string()));
      if (!ts.ok()) return expected(": " + ts.status().message());
      return Value(*ts);
    }
  }
  return expected();
}

template <typename T>
Value CollectList(const boost::json::array& array, ScalarType element, Status* error) {
  std::vector<T> out;
  out.reserve(array.size());
  for (size_t i = 0; i < array.size(); ++i) {
    if (array[i].is_null()) {
      *error = Status::InvalidArgument(fmt::format(
          "element {} of the list is null; list elements may not be null (the whole list may)", i));
      return Value();
    }
    auto v = JsonScalar(array[i], element);
    if (!v.ok()) {
      *error = Status::InvalidArgument(fmt::format("element {}: {}", i, v.status().message()));
      return Value();
    }
    out.push_back(v->get<T>());
  }
  return Value(std::move(out));
}

Result<Value> JsonValue(const boost::json::value& v, ValueType type) {
  if (v.is_null()) return Value();
  if (!type.is_list) return JsonScalar(v, type.scalar);
  if (!v.is_array()) {
    return Status::InvalidArgument(
        fmt::format("expected {} (a JSON list), got {}", type.ToString(), Shown(v)));
  }
  Status error;
  Value out;
  switch (type.scalar) {
    case ScalarType::kBool:
      out = CollectList<bool>(v.get_array(), type.scalar, &error);
      break;
    case ScalarType::kInt32:
      out = CollectList<int32_t>(v.get_array(), type.scalar, &error);
      break;
    case ScalarType::kInt64:
      out = CollectList<int64_t>(v.get_array(), type.scalar, &error);
      break;
    case ScalarType::kFloat32:
      out = CollectList<float>(v.get_array(), type.scalar, &error);
      break;
    case ScalarType::kFloat64:
      out = CollectList<double>(v.get_array(), type.scalar, &error);
      break;
    case ScalarType::kString:
      out = CollectList<std::string>(v.get_array(), type.scalar, &error);
      break;
    case ScalarType::kBytes:
      out = CollectList<Bytes>(v.get_array(), type.scalar, &error);
      break;
    case ScalarType::kTimestamp:
      out = CollectList<Timestamp>(v.get_array(), type.scalar, &error);
      break;
  }
  if (!error.ok()) return error;
  return out;
}

// The type of a column no view declares, from its first non-null value.
Result<ValueType> InferType(const std::string& column, const boost::json::array& values) {
  for (size_t i = 0; i < values.size(); ++i) {
    const boost::json::value& v = values[i];
    if (v.is_null()) continue;
    if (v.is_bool()) return ValueType::Scalar(ScalarType::kBool);
    if (v.is_int64()) return ValueType::Scalar(ScalarType::kInt64);
    if (v.is_number()) return ValueType::Scalar(ScalarType::kFloat64);
    if (v.is_string()) return ValueType::Scalar(ScalarType::kString);
    return Status::InvalidArgument(fmt::format(
        "df.{}[{}]: the column is not read by any feature view of the push source, so its values "
        "must be numbers, strings or booleans, not {}",
        column, i, Shown(v)));
  }
  return ValueType::Scalar(ScalarType::kString);  // all null
}

Status BadShape(std::string_view what) { return Status::InvalidArgument(std::string(what)); }

}  // namespace

Result<PushRequest> ParsePushRequest(std::string_view json, const Definitions& defs) {
  // Strings must be valid UTF-8 (Arrow string columns, Parquet files). NaN, Infinity and
  // -Infinity are accepted as values, as Python's json module (and so Feast's client) writes
  // them for float columns.
  JsonParseOptions options;
  options.allow_non_finite = true;
  auto parsed = ParseJson(json, options);
  if (!parsed.ok()) {
    return Status::InvalidArgument("the request is not valid JSON: " + parsed.status().message());
  }
  const boost::json::value& doc = *parsed;
  if (!doc.is_object()) {
    return BadShape(
        "the request must be a JSON object such as {\"push_source_name\": \"name\", \"df\": "
        "{\"customer_id\": [1001], ...}, \"to\": \"online\"}");
  }
  PushRequest request;
  const boost::json::object* df = nullptr;
  static const std::vector<std::string> kKeys = {"push_source_name", "df", "to",
                                                 "allow_registry_cache", "transform_on_write"};
  for (const auto& member : doc.get_object()) {
    std::string_view key(member.key().data(), member.key().size());
    const boost::json::value& v = member.value();
    if (key == "push_source_name") {
      if (!v.is_string()) return BadShape("push_source_name: must be a string");
      request.push_source_name.assign(JsonStringView(v.get_string()));
    } else if (key == "df") {
      if (!v.is_object()) {
        return BadShape(
            "df: must be an object of column name to a list of values, such as "
            "{\"customer_id\": [1001, 1002], \"event_timestamp\": [\"2026-11-23T02:00:00Z\", "
            "...]}");
      }
      df = &v.get_object();
    } else if (key == "to") {
      if (!v.is_string())
        return BadShape(
            "to: must be \"online\", \"offline\" or "
            "\"online_and_offline\"");
      GRANARY_ASSIGN_OR_RAISE(request.to, ParsePushTarget(JsonStringView(v.get_string())));
    } else if (key == "allow_registry_cache" || key == "transform_on_write") {
      if (!v.is_bool()) return BadShape(fmt::format("{}: must be true or false", key));
    } else {
      return Status::InvalidArgument(
          fmt::format("unknown request field '{}'{}; the fields are push_source_name, df and to",
                      key, DidYouMean(key, kKeys)));
    }
  }
  if (request.push_source_name.empty()) {
    return BadShape("push_source_name: missing; name the push source to write to");
  }
  if (df == nullptr) return BadShape("df: missing; give the rows as {column: [values]}");
  GRANARY_ASSIGN_OR_RAISE(auto types, PushColumnTypes(defs, request.push_source_name));

  arrow::FieldVector fields;
  arrow::ArrayVector arrays;
  int64_t num_rows = -1;
  std::string first_column;
  for (const auto& member : *df) {
    const std::string name(member.key().data(), member.key().size());
    if (!member.value().is_array()) {
      return Status::InvalidArgument(
          fmt::format("df.{}: must be a list of values, not {}", name, Shown(member.value())));
    }
    const boost::json::array& values = member.value().get_array();
    if (num_rows < 0) {
      num_rows = static_cast<int64_t>(values.size());
      first_column = name;
    } else if (static_cast<int64_t>(values.size()) != num_rows) {
      return Status::InvalidArgument(
          fmt::format("df.{} has {} values but df.{} has {}; give every column one value per row",
                      name, values.size(), first_column, num_rows));
    }
    for (const auto& f : fields) {
      if (f->name() == name) {
        return Status::InvalidArgument(fmt::format("df: column '{}' is given twice", name));
      }
    }
    ValueType type;
    if (auto it = types.find(name); it != types.end()) {
      type = it->second;
    } else {
      GRANARY_ASSIGN_OR_RAISE(type, InferType(name, values));
    }
    std::vector<Value> column;
    column.reserve(values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      auto v = JsonValue(values[i], type);
      if (!v.ok()) {
        return Status::InvalidArgument(fmt::format("df.{}[{}]: {}", name, i, v.status().message()));
      }
      column.push_back(std::move(*v));
    }
    GRANARY_ASSIGN_OR_RAISE(auto array, MakeArray(type, column));
    fields.push_back(arrow::field(name, array->type()));
    arrays.push_back(std::move(array));
  }
  if (num_rows <= 0) return BadShape("df: has no rows; give at least one value per column");
  request.rows = arrow::Table::Make(arrow::schema(fields), arrays, num_rows);
  return request;
}

// ------------------------------------------------------------------------------ the push core

std::string PushResultJson(const std::string& push_source_name, PushTarget to,
                           const PushResult& result, const std::filesystem::path& repo_root) {
  JsonWriter w;
  w.StartObject();
  w.Key("push_source_name");
  w.String(push_source_name);
  w.Key("to");
  const std::string_view target = PushTargetName(to);
  w.String(target);
  w.Key("rows");
  w.Int64(result.rows);
  if (to != PushTarget::kOffline) {
    w.Key("online");
    w.StartObject();
    w.Key("views");
    w.StartArray();
    for (const std::string& v : result.views) {
      w.String(v);
    }
    w.EndArray();
    w.Key("written");
    w.Int64(result.online.written);
    w.Key("skipped_older");
    w.Int64(result.online.skipped_older);
    w.EndObject();
  }
  if (to != PushTarget::kOnline) {
    w.Key("offline");
    w.StartObject();
    w.Key("files");
    w.StartArray();
    for (const auto& f : result.offline.files) {
      const std::string name = std::filesystem::path(f).lexically_relative(repo_root).string();
      w.String(name);
    }
    w.EndArray();
    if (result.offline.delta_version >= 0) {
      w.Key("delta_version");
      w.Int64(result.offline.delta_version);
    }
    w.EndObject();
  }
  w.EndObject();
  return w.Release();
}

}  // namespace granary
