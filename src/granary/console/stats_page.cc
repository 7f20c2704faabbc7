// Feature statistics as JSON (GET /api/stats, `granary stats --json`, the SDK) and the online
// sample beside them.
#include <fmt/format.h>

#include "granary/common/json.h"
#include "granary/console/console_service.h"
#include "granary/online/online_store.h"
#include "granary/serving/online_features.h"

namespace granary {
namespace {

void OptionalDouble(JsonWriter& w, std::string_view key, const std::optional<double>& v) {
  w.Key(key);
  if (v) {
    w.Double(*v);
  } else {
    w.Null();
  }
}

void TimeOrNull(JsonWriter& w, std::string_view key, const std::optional<Timestamp>& t) {
  w.Key(key);
  if (t) {
    w.String(FormatTimestamp(*t));
  } else {
    w.Null();
  }
}

}  // namespace

std::string FeatureStatsJson(const FeatureStatsReport& report, const std::string& online_sample,
                             const std::string& online_note) {
  JsonWriter w;
  w.StartObject();
  w.Key("view");
  w.String(report.view);
  TimeOrNull(w, "start", report.start);
  TimeOrNull(w, "end", report.end);
  TimeOrNull(w, "first_event", report.first_event);
  TimeOrNull(w, "last_event", report.last_event);
  w.Key("rows");
  w.Int64(report.rows);
  w.Key("elapsed_seconds");
  w.Double(static_cast<double>(report.elapsed.micros) / 1e6);
  w.Key("scan");
  w.StartObject();
  w.Key("files");
  w.Int64(report.scan.files_total);
  w.Key("files_pruned");
  w.Int64(report.scan.files_pruned);
  w.Key("row_groups");
  w.Int64(report.scan.row_groups_total);
  w.Key("row_groups_pruned");
  w.Int64(report.scan.row_groups_pruned);
  w.Key("rows_scanned");
  w.Int64(report.scan.rows_scanned);
  w.Key("delta_version");
  if (report.delta_version >= 0) {
    w.Int64(report.delta_version);
  } else {
    w.Null();
  }
  w.Key("engine");
  w.String(report.scan.engine_detail);
  w.EndObject();
  w.Key("features");
  w.StartArray();
  for (const FeatureStats& f : report.features) {
    w.StartObject();
    w.Key("name");
    w.String(f.name);
    w.Key("type");
    w.String(f.type.ToString());
    w.Key("count");
    w.Int64(f.count);
    w.Key("nulls");
    w.Int64(f.nulls);
    w.Key("null_rate");
    w.Double(f.null_rate());
    w.Key("nan");
    w.Int64(f.nan);
    OptionalDouble(w, "min", f.min);
    OptionalDouble(w, "max", f.max);
    OptionalDouble(w, "mean", f.mean);
    if (!f.min_text.empty() || !f.max_text.empty()) {
      w.Key("min_text");
      w.String(f.min_text);
      w.Key("max_text");
      w.String(f.max_text);
    }
    w.Key("distinct_estimate");
    w.Int64(f.distinct_estimate);
    w.Key("histogram");
    w.StartArray();
    for (const HistogramBin& b : f.histogram) {
      w.StartObject();
      w.Key("low");
      w.Double(b.low);
      w.Key("high");
      w.Double(b.high);
      w.Key("count");
      w.Int64(b.count);
      w.EndObject();
    }
    w.EndArray();
    w.Key("top_values");
    w.StartArray();
    for (const ValueCount& v : f.top_values) {
      w.StartObject();
      w.Key("value");
      w.String(v.value);
      w.Key("count");
      w.Int64(v.count);
      w.EndObject();
    }
    w.EndArray();
    w.Key("top_values_exact");
    w.Bool(f.top_values_exact);
    w.EndObject();
  }
  w.EndArray();
  w.Key("join_keys");
  w.StartArray();
  for (const std::string& k : report.join_keys) w.String(k);
  w.EndArray();
  w.Key("sample_keys");
  w.StartArray();
  for (const auto& key : report.sample_keys) {
    w.StartArray();
    for (const std::string& part : key) w.String(part);
    w.EndArray();
  }
  w.EndArray();
  w.Key("online_sample");
  if (online_sample.empty()) {
    w.Null();
  } else {
    w.RawValue(online_sample);
  }
  w.Key("online_note");
  w.String(online_note);
  w.EndObject();
  return w.Release();
}

Result<std::string> ReadOnlineSample(const RepoConfig& config,
                                     std::shared_ptr<const Definitions> definitions,
                                     const FeatureView& view, const FeatureStatsReport& report,
                                     const Clock* clock) {
  if (!view.online) {
    return Status::FailedPrecondition(
        fmt::format("feature view '{}' is not online (online: false)", view.name));
  }
  if (report.sample_keys.empty()) {
    return Status::NotFound("the time range holds no rows, so no entity to sample");
  }
  OnlineFeaturesRequest request;
  for (const Field& f : view.schema) request.features.push_back(view.name + ":" + f.name);
  for (size_t k = 0; k < report.join_keys.size(); ++k) {
    OnlineFeaturesRequest::EntityColumn column;
    column.name = report.join_keys[k];
    column.from_text = true;
    for (const auto& key : report.sample_keys) column.values.emplace_back(key[k]);
    request.entities.push_back(std::move(column));
  }
  // Read-only: the embedded store opens beside a server that holds it.
  OnlineStoreOptions store_options;
  store_options.read_only = true;
  store_options.clock = clock;
  store_options.connect_timeout = Duration::Seconds(2);
  GRANARY_ASSIGN_OR_RAISE(auto store, OpenOnlineStore(config, store_options));
  GRANARY_ASSIGN_OR_RAISE(auto service,
                          OnlineFeaturesService::Make(std::move(definitions), store.get(),
                                                      config.online_store.key_ttl));
  std::string json;
  GRANARY_RETURN_NOT_OK(service->GetOnlineFeatures(request, &json));
  return json;
}

}  // namespace granary
