#include "granary/serving/online_write.h"

#include <arrow/api.h>
#include <fmt/format.h>

#include "granary/common/json.h"
#include "granary/common/strings.h"
#include "granary/types/arrow_convert.h"

namespace granary {
namespace {

// Feast's client names the times of its rows so, whatever the source calls them.
constexpr const char* kFeastEventTime = "event_timestamp";
constexpr const char* kFeastCreatedTime = "created";

Result<std::shared_ptr<arrow::Array>> Combined(const std::shared_ptr<arrow::ChunkedArray>& c) {
  if (c->num_chunks() == 1) return c->chunk(0);
  auto combined = arrow::Concatenate(c->chunks());
  if (!combined.ok()) return Status::Internal(combined.status().ToString());
  return *combined;
}

Status NoNulls(const arrow::Array& a, const std::string& column) {
  if (a.null_count() == 0) return Status::OK();
  for (int64_t i = 0; i < a.length(); ++i) {
    if (a.IsNull(i)) {
      return Status::InvalidArgument(
          fmt::format("df.{}[{}]: must not be null (every written row needs it)", column, i));
    }
  }
  return Status::OK();
}

// Of two accepted names, the one the df has (the first when both are given: an error).
Result<std::string> OneOf(const boost::json::object& df, const std::string& a,
                          const std::string& b) {
  const bool has_a = df.contains(a), has_b = a != b && df.contains(b);
  if (has_a && has_b) {
    return Status::InvalidArgument(
        fmt::format("df: give either '{}' or '{}', not both (they are the same time)", a, b));
  }
  if (has_b) return b;
  if (has_a) return a;
  return std::string();
}

}  // namespace

Result<OnlineWriteRequest> ParseOnlineWriteRequest(std::string_view json, const Definitions& defs,
                                                   const ViewLayouts& layouts) {
  JsonParseOptions options;
  options.allow_non_finite = true;  // Python's json module writes NaN for float features
  auto parsed = ParseJson(json, options);
  if (!parsed.ok()) {
    return Status::InvalidArgument("the request is not valid JSON: " + parsed.status().message());
  }
  if (!parsed->is_object()) {
    return Status::InvalidArgument(
        "the request must be a JSON object such as {\"feature_view_name\": \"name\", \"df\": "
        "{\"customer_id\": [1001], \"event_timestamp\": [\"2026-11-23T02:00:00Z\"], ...}}");
  }
  OnlineWriteRequest request;
  const boost::json::object* df = nullptr;
  static const std::vector<std::string> kKeys = {"feature_view_name", "df", "allow_registry_cache",
                                                 "transform_on_write"};
  for (const auto& member : parsed->get_object()) {
    std::string_view key(member.key().data(), member.key().size());
    const boost::json::value& v = member.value();
    if (key == "feature_view_name") {
      if (!v.is_string()) return Status::InvalidArgument("feature_view_name: must be a string");
      request.feature_view_name.assign(JsonStringView(v.get_string()));
    } else if (key == "df") {
      if (!v.is_object()) {
        return Status::InvalidArgument(
            "df: must be an object of column name to a list of values, such as "
            "{\"customer_id\": [1001, 1002], \"event_timestamp\": [\"2026-11-23T02:00:00Z\", "
            "...]}");
      }
      df = &v.get_object();
    } else if (key == "allow_registry_cache" || key == "transform_on_write") {
      // Feast's: the server always reads its current registry snapshot, and views have no
      // transformations to run on write.
      if (!v.is_bool())
        return Status::InvalidArgument(fmt::format("{}: must be true or false", key));
    } else {
      return Status::InvalidArgument(
          fmt::format("unknown request field '{}'{}; the fields are feature_view_name, df, "
                      "allow_registry_cache and transform_on_write",
                      key, DidYouMean(key, kKeys)));
    }
  }
  if (request.feature_view_name.empty()) {
    return Status::InvalidArgument(
        "feature_view_name: missing; name the feature view the rows belong to");
  }
  if (df == nullptr) {
    return Status::InvalidArgument("df: missing; give the rows as {column: [values]}");
  }
  const FeatureView* view = defs.FindFeatureView(request.feature_view_name);
  auto layout_it = layouts.find(request.feature_view_name);
  if (view == nullptr || layout_it == layouts.end()) {
    std::vector<std::string> names;
    for (const auto& [name, layout] : layouts) names.push_back(name);
    return Status::InvalidArgument(fmt::format(
        "feature_view_name: '{}' is not {}{}; the online feature views are: {}",
        request.feature_view_name,
        view == nullptr ? "a feature view" : "an online feature view (online: false)",
        DidYouMean(request.feature_view_name, names), names.empty() ? "none" : Join(names, ", ")));
  }
  const ViewLayout& layout = *layout_it->second;
  const DataSource* source = defs.FindOfflineSource(view->source);

  // The columns there may be, and their types.
  const ValueType timestamp = ValueType::Scalar(ScalarType::kTimestamp);
  std::map<std::string, ValueType> types;
  std::vector<std::string> known;
  for (const ViewLayout::Column& k : layout.join_keys()) {
    types[k.name] = k.type;
    known.push_back(k.name);
  }
  for (const ViewLayout::Column& f : layout.features()) {
    types[f.name] = f.type;
    known.push_back(f.name);
  }
  const std::string source_time = source != nullptr ? source->timestamp_field : kFeastEventTime;
  const std::string source_created = source != nullptr && !source->created_timestamp_column.empty()
                                         ? source->created_timestamp_column
                                         : kFeastCreatedTime;
  for (const std::string& name : {std::string(kFeastEventTime), source_time,
                                  std::string(kFeastCreatedTime), source_created}) {
    if (types.emplace(name, timestamp).second) known.push_back(name);
  }
  for (const auto& member : *df) {
    const std::string name(member.key().data(), member.key().size());
    if (types.count(name) == 0) {
      return Status::InvalidArgument(fmt::format(
          "df: column '{}' is not a join key, feature or time of feature view '{}'{}; the "
          "columns are: {}",
          name, request.feature_view_name, DidYouMean(name, known), Join(known, ", ")));
    }
  }
  GRANARY_ASSIGN_OR_RAISE(std::string time_column, OneOf(*df, kFeastEventTime, source_time));
  GRANARY_ASSIGN_OR_RAISE(std::string created_column,
                          OneOf(*df, kFeastCreatedTime, source_created));
  GRANARY_ASSIGN_OR_RAISE(auto table, JsonDfToTable(*df, types));

  arrow::FieldVector fields;
  arrow::ArrayVector arrays;
  auto column = [&](const std::string& name,
                    const char* role) -> Result<std::shared_ptr<arrow::Array>> {
    auto c = table->GetColumnByName(name);
    if (c == nullptr) {
      return Status::InvalidArgument(
          fmt::format("df: missing column '{}' ({} of feature view '{}'); the df has: {}", name,
                      role, request.feature_view_name, Join(table->schema()->field_names(), ", ")));
    }
    return Combined(c);
  };
  for (const ViewLayout::Column& k : layout.join_keys()) {
    GRANARY_ASSIGN_OR_RAISE(auto raw, column(k.name, "a join key"));
    GRANARY_ASSIGN_OR_RAISE(auto typed, CastToValueType(raw, k.type, "df." + k.name));
    GRANARY_RETURN_NOT_OK(NoNulls(*typed, k.name));
    fields.push_back(arrow::field(k.name, typed->type()));
    arrays.push_back(std::move(typed));
  }
  if (time_column.empty()) {
    return Status::InvalidArgument(fmt::format(
        "df: missing the event time: give a column '{}'{}", kFeastEventTime,
        source_time != kFeastEventTime ? fmt::format(" or '{}'", source_time) : std::string()));
  }
  {
    GRANARY_ASSIGN_OR_RAISE(auto raw, column(time_column, "the event time"));
    GRANARY_ASSIGN_OR_RAISE(auto typed, ToUtcMicros(raw, "df." + time_column));
    GRANARY_RETURN_NOT_OK(NoNulls(*typed, time_column));
    fields.push_back(arrow::field("event_timestamp", typed->type()));
    arrays.push_back(std::move(typed));
  }
  if (!created_column.empty()) {
    GRANARY_ASSIGN_OR_RAISE(auto raw, column(created_column, "the created time"));
    GRANARY_ASSIGN_OR_RAISE(auto typed, ToUtcMicros(raw, "df." + created_column));
    // Feast's client sends a null created time for every row of a view without one: no column.
    if (typed->null_count() != typed->length()) {
      if (typed->null_count() > 0) {
        return Status::InvalidArgument(fmt::format(
            "df.{}: {} of {} rows have no created time; give one for every row or for none",
            created_column, typed->null_count(), typed->length()));
      }
      fields.push_back(arrow::field("created_timestamp", typed->type()));
      arrays.push_back(std::move(typed));
    }
  }
  for (const ViewLayout::Column& f : layout.features()) {
    GRANARY_ASSIGN_OR_RAISE(auto raw, column(f.name, "a feature"));
    GRANARY_ASSIGN_OR_RAISE(auto typed, CastToValueType(raw, f.type, "df." + f.name));
    fields.push_back(arrow::field(f.name, typed->type()));
    arrays.push_back(std::move(typed));
  }
  request.num_rows = table->num_rows();
  request.rows =
      arrow::RecordBatch::Make(arrow::schema(fields), table->num_rows(), std::move(arrays));
  return request;
}

Result<WriteStats> WriteToOnlineStore(const PushContext& context,
                                      const OnlineWriteRequest& request) {
  auto layout = context.layouts->find(request.feature_view_name);
  if (layout == context.layouts->end()) {
    return Status::InvalidArgument(
        fmt::format("feature view '{}' is not online (any more)", request.feature_view_name));
  }
  if (context.max_clock_skew.micros < 0) {
    return Status::InvalidArgument(
        fmt::format("the clock-skew tolerance of a write must not be negative, not {}",
                    FormatDuration(context.max_clock_skew)));
  }
  auto table = arrow::Table::FromRecordBatches({request.rows});
  if (!table.ok()) return Status::Internal(table.status().ToString());
  GRANARY_RETURN_NOT_OK(CheckNotInTheFuture(**table, {"event_timestamp", "created_timestamp"},
                                            *context.clock, context.max_clock_skew));
  auto stats = context.store->WriteBatch(*layout->second, *request.rows);
  if (!stats.ok()) {
    return stats.status().WithContext(
        fmt::format("online write of feature view '{}'", request.feature_view_name));
  }
  if (context.log != nullptr) {
    context.log->Record({request.feature_view_name}, request.rows->num_rows());
  }
  return *stats;
}

std::string OnlineWriteResultJson(const OnlineWriteRequest& request, const WriteStats& stats) {
  JsonWriter w;
  w.StartObject();
  w.Key("feature_view_name");
  w.String(request.feature_view_name);
  w.Key("rows");
  w.Int64(request.rows->num_rows());
  w.Key("written");
  w.Int64(stats.written);
  w.Key("skipped_older");
  w.Int64(stats.skipped_older);
  w.EndObject();
  return w.Release();
}

}  // namespace granary
