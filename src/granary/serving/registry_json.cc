#include "granary/serving/registry_json.h"

#include <algorithm>

#include "granary/common/json.h"

namespace granary {
namespace {

void Str(JsonWriter& w, std::string_view s) { w.String(s.data(), s.size()); }
void Key(JsonWriter& w, std::string_view k) { w.Key(k.data(), k.size()); }
void StrIfSet(JsonWriter& w, std::string_view key, const std::string& value) {
  if (value.empty()) return;
  Key(w, key);
  Str(w, value);
}
void List(JsonWriter& w, std::string_view key, const std::vector<std::string>& items) {
  Key(w, key);
  w.StartArray();
  for (const auto& s : items) Str(w, s);
  w.EndArray();
}
void MapIfSet(JsonWriter& w, std::string_view key, const std::map<std::string, std::string>& m) {
  if (m.empty()) return;
  Key(w, key);
  w.StartObject();
  for (const auto& [k, v] : m) {
    Key(w, k);
    Str(w, v);
  }
  w.EndObject();
}
std::string DurationText(Duration d) { return d.is_zero() ? "0" : FormatDuration(d); }

template <typename T>
std::vector<const T*> Sorted(const std::vector<T>& items) {
  std::vector<const T*> out;
  for (const T& item : items) out.push_back(&item);
  std::stable_sort(out.begin(), out.end(),
                   [](const T* a, const T* b) { return a->name < b->name; });
  return out;
}

}  // namespace

std::string RegistryJson(const RegistryVersionInfo& info, const Definitions& defs) {
  JsonWriter w;
  w.StartObject();
  Key(w, "project");
  Str(w, defs.project.empty() ? info.project : defs.project);
  Key(w, "version");
  w.Int64(info.version);
  Key(w, "applied_at");
  Str(w, FormatTimestamp(info.applied_at));
  Key(w, "fingerprint");
  Str(w, info.fingerprint);

  Key(w, "entities");
  w.StartArray();
  for (const Entity* e : Sorted(defs.entities)) {
    w.StartObject();
    Key(w, "name");
    Str(w, e->name);
    List(w, "join_keys", e->join_keys);
    std::vector<std::string> types;
    for (const ValueType& t : e->join_key_types) types.push_back(t.ToString());
    List(w, "value_types", types);
    StrIfSet(w, "description", e->description);
    MapIfSet(w, "tags", e->tags);
    w.EndObject();
  }
  w.EndArray();

  Key(w, "data_sources");
  w.StartArray();
  for (const DataSource* s : Sorted(defs.data_sources)) {
    w.StartObject();
    Key(w, "name");
    Str(w, s->name);
    Key(w, "type");
    if (s->is_push()) {
      Str(w, "push");
      Key(w, "batch_source");
      Str(w, s->batch_source);
    } else {
      Str(w, s->format == SourceFormat::kDelta ? "delta" : "file");
      if (s->format != SourceFormat::kDelta) {
        Key(w, "format");
        Str(w, SourceFormatName(s->format));
      }
      if (s->table.empty() && s->query.empty()) {
        Key(w, "path");
        Str(w, s->path);
      }
      StrIfSet(w, "table", s->table);
      StrIfSet(w, "query", s->query);
      Key(w, "timestamp_field");
      Str(w, s->timestamp_field);
      StrIfSet(w, "created_timestamp_column", s->created_timestamp_column);
      StrIfSet(w, "date_partition_column", s->date_partition_column);
      MapIfSet(w, "field_mapping", s->field_mapping);
    }
    StrIfSet(w, "description", s->description);
    MapIfSet(w, "tags", s->tags);
    w.EndObject();
  }
  w.EndArray();

  Key(w, "feature_views");
  w.StartArray();
  for (const FeatureView* v : Sorted(defs.feature_views)) {
    w.StartObject();
    Key(w, "name");
    Str(w, v->name);
    List(w, "entities", v->entities);
    Key(w, "source");
    Str(w, v->source);
    Key(w, "ttl");
    Str(w, DurationText(v->ttl));
    Key(w, "online");
    w.Bool(v->online);
    if (!v->online_key_ttl.is_zero()) {
      Key(w, "online_key_ttl");
      Str(w, DurationText(v->online_key_ttl));
    }
    Key(w, "schema");
    w.StartArray();
    for (const Field& f : v->schema) {
      w.StartObject();
      Key(w, "name");
      Str(w, f.name);
      Key(w, "type");
      Str(w, f.type.ToString());
      StrIfSet(w, "description", f.description);
      w.EndObject();
    }
    w.EndArray();
    StrIfSet(w, "owner", v->owner);
    StrIfSet(w, "description", v->description);
    MapIfSet(w, "tags", v->tags);
    w.EndObject();
  }
  w.EndArray();

  Key(w, "feature_services");
  w.StartArray();
  for (const FeatureService* s : Sorted(defs.feature_services)) {
    w.StartObject();
    Key(w, "name");
    Str(w, s->name);
    Key(w, "features");
    w.StartArray();
    for (const FeatureProjection& p : s->projections) {
      w.StartObject();
      Key(w, "view");
      Str(w, p.view);
      if (!p.features.empty()) List(w, "features", p.features);
      w.EndObject();
    }
    w.EndArray();
    StrIfSet(w, "owner", s->owner);
    StrIfSet(w, "description", s->description);
    MapIfSet(w, "tags", s->tags);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return w.Release();
}

}  // namespace granary
