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

std::string_view PushTargetName(PushTarget to) {
  switch (to) {
    case PushTarget::kOnline:
      return "online";
    case PushTarget::kOffline:
      return "offline";
    case PushTarget::kOnlineAndOffline:
      return "online_and_offline";
  }
  return "online";
}

Result<PushTarget> ParsePushTarget(std::string_view text) {
  for (PushTarget t : {PushTarget::kOnline, PushTarget::kOffline, PushTarget::kOnlineAndOffline}) {
    if (text == PushTargetName(t)) return t;
  }
  return Status::InvalidArgument(fmt::format(
      "to: '{}' is not a push target; use \"online\", \"offline\" or \"online_and_offline\"",
      text));
}

Result<std::map<std::string, ValueType>> PushColumnTypes(const Definitions& defs,
                                                         const std::string& push_source) {
  const DataSource* push = defs.FindDataSource(push_source);
  if (push == nullptr || !push->is_push()) {
    std::vector<std::string> names;
    for (const DataSource& s : defs.data_sources) {
      if (s.is_push()) names.push_back(s.name);
    }
    return Status::InvalidArgument(
        fmt::format("push_source_name: '{}' is not {}{}; the push sources are: {}", push_source,
                    push == nullptr ? "a data source" : "a push source (type: push)",
                    DidYouMean(push_source, names),
                    names.empty() ? "none (define one with type: push)" : Join(names, ", ")));
  }
  const DataSource* batch = defs.FindOfflineSource(push_source);
  if (batch == nullptr) {
    return Status::FailedPrecondition(
        fmt::format("push source '{}' names batch_source '{}', which is not defined", push_source,
                    push->batch_source));
  }
  std::map<std::string, ValueType> types;
  const ValueType timestamp = ValueType::Scalar(ScalarType::kTimestamp);
  types[batch->SourceColumnFor(batch->timestamp_field)] = timestamp;
  if (!batch->created_timestamp_column.empty()) {
    types[batch->SourceColumnFor(batch->created_timestamp_column)] = timestamp;
  }
  for (const FeatureView& v : defs.feature_views) {
    if (v.source != push_source) continue;
    for (const std::string& e : v.entities) {
      const Entity* entity = defs.FindEntity(e);
      if (entity == nullptr) continue;
      for (size_t i = 0; i < entity->join_keys.size() && i < entity->join_key_types.size(); ++i) {
        types.emplace(batch->SourceColumnFor(entity->join_keys[i]), entity->join_key_types[i]);
      }
    }
    for (const Field& f : v.schema) types.emplace(batch->SourceColumnFor(f.name), f.type);
  }
  return types;
}

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
  GRANARY_ASSIGN_OR_RAISE(request.rows, JsonDfToTable(*df, types));
  return request;
}

Result<std::shared_ptr<arrow::Table>> JsonDfToTable(const boost::json::object& df,
                                                    const std::map<std::string, ValueType>& types) {
  arrow::FieldVector fields;
  arrow::ArrayVector arrays;
  int64_t num_rows = -1;
  std::string first_column;
  for (const auto& member : df) {
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
  return arrow::Table::Make(arrow::schema(fields), arrays, num_rows);
}

// ------------------------------------------------------------------------------ the push core

namespace {

struct ViewBatch {
  const ViewLayout* layout;
  std::shared_ptr<arrow::RecordBatch> rows;
};

// The rows of one online view, as OnlineStore::WriteBatch takes them.
Result<ViewBatch> BatchForView(const DataSource& batch, const std::string& push_source,
                               const ViewLayout& layout, const arrow::Table& rows) {
  arrow::FieldVector fields;
  arrow::ArrayVector arrays;
  auto column = [&](const std::string& name,
                    const char* role) -> Result<std::shared_ptr<arrow::Array>> {
    const std::string source_column = batch.SourceColumnFor(name);
    auto c = rows.GetColumnByName(source_column);
    if (c == nullptr) {
      return Status::InvalidArgument(fmt::format(
          "df: missing column '{}' ({} of feature view '{}', which reads push source '{}'); "
          "the df has: {}",
          source_column, role, layout.name(), push_source,
          Join(rows.schema()->field_names(), ", ")));
    }
    if (c->num_chunks() == 1) return c->chunk(0);
    auto combined = arrow::Concatenate(c->chunks());
    if (!combined.ok()) return Status::Internal(combined.status().ToString());
    return *combined;
  };
  auto no_nulls = [&](const arrow::Array& a, const std::string& name) -> Status {
    if (a.null_count() == 0) return Status::OK();
    for (int64_t i = 0; i < a.length(); ++i) {
      if (a.IsNull(i)) {
        return Status::InvalidArgument(
            fmt::format("df.{}[{}]: must not be null (every pushed row needs it)",
                        batch.SourceColumnFor(name), i));
      }
    }
    return Status::OK();
  };
  for (const ViewLayout::Column& key : layout.join_keys()) {
    GRANARY_ASSIGN_OR_RAISE(auto raw, column(key.name, "a join key"));
    GRANARY_ASSIGN_OR_RAISE(
        auto typed, CastToValueType(raw, key.type, "df." + batch.SourceColumnFor(key.name)));
    GRANARY_RETURN_NOT_OK(no_nulls(*typed, key.name));
    fields.push_back(arrow::field(key.name, typed->type()));
    arrays.push_back(std::move(typed));
  }
  {
    GRANARY_ASSIGN_OR_RAISE(auto raw, column(batch.timestamp_field, "the timestamp_field"));
    GRANARY_ASSIGN_OR_RAISE(auto typed,
                            ToUtcMicros(raw, "df." + batch.SourceColumnFor(batch.timestamp_field)));
    GRANARY_RETURN_NOT_OK(no_nulls(*typed, batch.timestamp_field));
    fields.push_back(arrow::field("event_timestamp", typed->type()));
    arrays.push_back(std::move(typed));
  }
  if (!batch.created_timestamp_column.empty() &&
      rows.GetColumnByName(batch.SourceColumnFor(batch.created_timestamp_column)) != nullptr) {
    GRANARY_ASSIGN_OR_RAISE(auto raw, column(batch.created_timestamp_column, "the created time"));
    GRANARY_ASSIGN_OR_RAISE(
        auto typed,
        ToUtcMicros(raw, "df." + batch.SourceColumnFor(batch.created_timestamp_column)));
    fields.push_back(arrow::field("created_timestamp", typed->type()));
    arrays.push_back(std::move(typed));
  }
  for (const ViewLayout::Column& f : layout.features()) {
    GRANARY_ASSIGN_OR_RAISE(auto raw, column(f.name, "a feature"));
    GRANARY_ASSIGN_OR_RAISE(auto typed,
                            CastToValueType(raw, f.type, "df." + batch.SourceColumnFor(f.name)));
    fields.push_back(arrow::field(f.name, typed->type()));
    arrays.push_back(std::move(typed));
  }
  return ViewBatch{
      &layout, arrow::RecordBatch::Make(arrow::schema(fields), rows.num_rows(), std::move(arrays))};
}

// Rows bound for the offline source alone must still carry what every reader of the source needs:
// the join keys of the views that read it and the event time, never null (the same messages as
// the online path).
Status CheckOfflineRows(const Definitions& defs, const DataSource& batch,
                        const std::string& push_source, const arrow::Table& rows) {
  std::vector<std::string> required;
  for (const FeatureView& v : defs.feature_views) {
    if (v.source != push_source) continue;
    for (const std::string& entity_name : v.entities) {
      const Entity* entity = defs.FindEntity(entity_name);
      if (entity == nullptr) continue;
      for (const std::string& key : entity->join_keys) required.push_back(key);
    }
  }
  required.push_back(batch.timestamp_field);
  for (const std::string& name : required) {
    const std::string column = batch.SourceColumnFor(name);
    auto c = rows.GetColumnByName(column);
    if (c == nullptr) {
      return Status::InvalidArgument(
          fmt::format("df: missing column '{}' (needed by the readers of push source '{}'); the "
                      "df has: {}",
                      column, push_source, Join(rows.schema()->field_names(), ", ")));
    }
    if (c->null_count() == 0) continue;
    int64_t row = 0;
    for (const auto& chunk : c->chunks()) {
      for (int64_t i = 0; i < chunk->length(); ++i, ++row) {
        if (chunk->IsNull(i)) {
          return Status::InvalidArgument(
              fmt::format("df.{}[{}]: must not be null (every pushed row needs it)", column, row));
        }
      }
    }
  }
  return Status::OK();
}

}  // namespace

Result<PushResult> Push(const PushContext& context, const std::string& push_source_name,
                        const arrow::Table& rows, PushTarget to) {
  const Definitions& defs = *context.definitions;
  GRANARY_RETURN_NOT_OK(PushColumnTypes(defs, push_source_name).status());
  const DataSource* batch = defs.FindOfflineSource(push_source_name);
  if (rows.num_rows() == 0) {
    return Status::InvalidArgument("the pushed rows are empty; give at least one row");
  }
  if (context.max_clock_skew.micros < 0) {
    return Status::InvalidArgument(
        fmt::format("the clock-skew tolerance of a push must not be negative, not {}",
                    FormatDuration(context.max_clock_skew)));
  }
  // Check and convert everything before writing anything.
  std::vector<std::string> times = {batch->SourceColumnFor(batch->timestamp_field)};
  if (!batch->created_timestamp_column.empty()) {
    times.push_back(batch->SourceColumnFor(batch->created_timestamp_column));
  }
  GRANARY_RETURN_NOT_OK(CheckNotInTheFuture(rows, times, *context.clock, context.max_clock_skew));
  PushResult result;
  result.rows = rows.num_rows();
  std::vector<ViewBatch> batches;
  if (to != PushTarget::kOffline) {
    for (const FeatureView& v : defs.feature_views) {
      if (v.source != push_source_name || !v.online) continue;
      auto layout = context.layouts->find(v.name);
      if (layout == context.layouts->end()) continue;
      GRANARY_ASSIGN_OR_RAISE(ViewBatch b,
                              BatchForView(*batch, push_source_name, *layout->second, rows));
      batches.push_back(std::move(b));
      result.views.push_back(v.name);
    }
    if (batches.empty()) {
      return Status::InvalidArgument(fmt::format(
          "no online feature view reads push source '{}', so there is nothing to write online; "
          "set source: {} (and online: true) on a view, or push with \"to\": \"offline\"",
          push_source_name, push_source_name));
    }
  }
  if (to == PushTarget::kOffline) {
    GRANARY_RETURN_NOT_OK(CheckOfflineRows(defs, *batch, push_source_name, rows));
  }
  if (to != PushTarget::kOnline) {
    auto appended = AppendToSource(context.repo_root, *batch, rows, *context.clock);
    if (!appended.ok()) {
      return appended.status().WithContext(
          fmt::format("offline append to data source '{}'", batch->name));
    }
    result.offline = std::move(*appended);
  }
  for (const ViewBatch& b : batches) {
    auto stats = context.store->WriteBatch(*b.layout, *b.rows);
    if (!stats.ok()) {
      return stats.status().WithContext(fmt::format(
          "online write of feature view '{}'{}", b.layout->name(),
          to == PushTarget::kOnlineAndOffline ? " (the rows were appended offline)" : ""));
    }
    result.online += *stats;
  }
  if (context.log != nullptr && !batches.empty()) context.log->Record(result.views, result.rows);
  return result;
}

Status CheckNotInTheFuture(const arrow::Table& rows, const std::vector<std::string>& columns,
                           const Clock& clock, Duration max_clock_skew) {
  const Timestamp now = clock.Now();
  const Timestamp limit = now + max_clock_skew;
  for (const std::string& column : columns) {
    auto c = rows.GetColumnByName(column);
    if (c == nullptr) continue;  // a missing column is reported by the checks that need it
    int64_t row = 0;
    for (const auto& chunk : c->chunks()) {
      GRANARY_ASSIGN_OR_RAISE(auto micros, ToUtcMicros(chunk, "df." + column));
      const auto& times = static_cast<const arrow::TimestampArray&>(*micros);
      for (int64_t i = 0; i < times.length(); ++i, ++row) {
        if (times.IsNull(i) || times.Value(i) <= limit.micros) continue;
        return Status::InvalidArgument(fmt::format(
            "df.{}[{}]: {} is in the future (now is {}; pushed times may be at most {} ahead, "
            "the clock-skew tolerance): it would shadow every real value of the entity until "
            "then; fix the producer's clock or its time zone, or raise the tolerance (granary "
            "serve --push-max-clock-skew, push(max_clock_skew=...) in the SDK)",
            column, row, FormatTimestamp(Timestamp::FromMicros(times.Value(i))),
            FormatTimestamp(now), FormatDuration(max_clock_skew)));
      }
    }
  }
  return Status::OK();
}

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
      const std::string name = f.lexically_relative(repo_root).string();
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
