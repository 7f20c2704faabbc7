#include "granary/registry/serialize.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "granary/common/hash.h"
#include "granary/registry/loader.h"

namespace granary {
namespace {

std::string Emit(const YAML::Node& node) {
  YAML::Emitter out;
  out.SetIndent(2);
  out << node;
  return out.c_str();
}

YAML::Node Flow(YAML::Node node) {
  node.SetStyle(YAML::EmitterStyle::Flow);
  return node;
}

YAML::Node ListNode(const std::vector<std::string>& items) {
  YAML::Node n(YAML::NodeType::Sequence);
  for (const auto& s : items) n.push_back(s);
  return Flow(n);
}

YAML::Node MapNode(const std::map<std::string, std::string>& items) {
  YAML::Node n(YAML::NodeType::Map);
  for (const auto& [k, v] : items) n[k] = v;
  return Flow(n);
}

class FieldWriter {
 public:
  void Add(const std::string& key, const YAML::Node& value) {
    fields_.emplace_back(key, Emit(value));
  }
  void Add(const std::string& key, const std::string& value) { Add(key, YAML::Node(value)); }
  void AddIfSet(const std::string& key, const std::string& value) {
    if (!value.empty()) Add(key, value);
  }
  void AddIfSet(const std::string& key, const std::map<std::string, std::string>& value) {
    if (!value.empty()) Add(key, MapNode(value));
  }
  // The keys every kind may end with.
  void AddDocumentation(const std::string& owner, const std::string& description,
                        const std::map<std::string, std::string>& tags) {
    AddIfSet("owner", owner);
    AddIfSet("description", description);
    AddIfSet("tags", tags);
  }
  ObjectFields Take() { return std::move(fields_); }

 private:
  ObjectFields fields_;
};

YAML::Node ParseFields(const ObjectFields& fields) {
  YAML::Node n(YAML::NodeType::Map);
  for (const auto& [k, v] : fields) n[k] = YAML::Load(v);
  return n;
}

}  // namespace

ObjectFields FieldsOf(const Entity& e) {
  FieldWriter w;
  w.Add("name", e.name);
  w.Add("join_keys", ListNode(e.join_keys));
  std::vector<std::string> types;
  for (const ValueType& t : e.join_key_types) types.push_back(t.ToString());
  if (types.size() == 1)
    w.Add("value_type", types[0]);
  else
    w.Add("value_type", ListNode(types));
  w.AddDocumentation("", e.description, e.tags);
  return w.Take();
}

ObjectFields FieldsOf(const DataSource& s) {
  FieldWriter w;
  w.Add("name", s.name);
  if (s.is_push()) {
    w.Add("type", "push");
    w.Add("batch_source", s.batch_source);
    w.AddDocumentation("", s.description, s.tags);
    return w.Take();
  }
  w.Add("type", s.format == SourceFormat::kDelta ? "delta" : "file");
  if (s.format != SourceFormat::kDelta) w.Add("format", std::string(SourceFormatName(s.format)));
  // path (the usual form), or table, or query: never an empty path, so fingerprints of path
  // sources stay what they were before tables and queries existed.
  if (!s.table.empty()) {
    w.Add("table", s.table);
  } else if (!s.query.empty()) {
    w.Add("query", s.query);
  } else {
    w.Add("path", s.path);
  }
  w.Add("timestamp_field", s.timestamp_field);
  w.AddIfSet("created_timestamp_column", s.created_timestamp_column);
  w.AddIfSet("date_partition_column", s.date_partition_column);
  w.AddIfSet("field_mapping", s.field_mapping);
  w.AddDocumentation("", s.description, s.tags);
  return w.Take();
}

ObjectFields FieldsOf(const FeatureView& v) {
  FieldWriter w;
  w.Add("name", v.name);
  w.Add("entities", ListNode(v.entities));
  w.Add("source", v.source);
  w.Add("ttl", v.ttl.is_zero() ? std::string("0") : FormatDuration(v.ttl));
  w.Add("online", YAML::Node(v.online));
  if (!v.online_key_ttl.is_zero()) w.Add("online_key_ttl", FormatDuration(v.online_key_ttl));
  YAML::Node schema(YAML::NodeType::Sequence);
  for (const Field& f : v.schema) {
    YAML::Node field(YAML::NodeType::Map);
    field["name"] = f.name;
    field["type"] = f.type.ToString();
    if (!f.description.empty()) field["description"] = f.description;
    schema.push_back(Flow(field));
  }
  w.Add("schema", schema);
  w.AddDocumentation(v.owner, v.description, v.tags);
  return w.Take();
}

ObjectFields FieldsOf(const FeatureService& s) {
  FieldWriter w;
  w.Add("name", s.name);
  YAML::Node features(YAML::NodeType::Sequence);
  for (const FeatureProjection& p : s.projections) {
    if (p.features.empty()) {
      features.push_back(p.view);
    } else {
      YAML::Node proj(YAML::NodeType::Map);
      proj["view"] = p.view;
      proj["features"] = ListNode(p.features);
      features.push_back(Flow(proj));
    }
  }
  w.Add("features", features);
  w.AddDocumentation(s.owner, s.description, s.tags);
  return w.Take();
}

std::string ObjectToYaml(const ObjectFields& fields) { return Emit(ParseFields(fields)); }

std::string DefinitionsToYaml(Definitions defs) {
  defs.SortByName();
  YAML::Node doc(YAML::NodeType::Map);
  auto add_all = [&](const char* key, const auto& items) {
    YAML::Node list(YAML::NodeType::Sequence);
    for (const auto& item : items) list.push_back(ParseFields(FieldsOf(item)));
    doc[key] = list;
  };
  add_all("entities", defs.entities);
  add_all("data_sources", defs.data_sources);
  add_all("feature_views", defs.feature_views);
  // The registry's own record of earlier online schemas, kept out of FieldsOf (plans, describe).
  for (size_t i = 0; i < defs.feature_views.size(); ++i) {
    const std::vector<std::string>& history = defs.feature_views[i].online_history;
    if (history.empty()) continue;
    YAML::Node list(YAML::NodeType::Sequence);
    for (const std::string& text : history) list.push_back(text);
    doc["feature_views"][i]["online_history"] = list;
  }
  add_all("feature_services", defs.feature_services);
  return Emit(doc) + "\n";
}

Result<Definitions> DefinitionsFromYaml(const std::string& text, const std::string& origin) {
  Definitions defs;
  Diagnostics diag;
  LoadDefinitionsText(origin, text, &defs, &diag);
  if (diag.has_errors()) {
    return Status::Corruption(fmt::format("stored definitions in {} are unreadable: {}", origin,
                                          diag.ToStatus().message()));
  }
  return defs;
}

std::string DefinitionsFingerprint(const Definitions& defs) {
  // The online history is what apply remembers, not what the repository defines: files that did
  // not change since the last apply have its fingerprint.
  Definitions defined = defs;
  for (FeatureView& view : defined.feature_views) view.online_history.clear();
  return HexFingerprint(defs.project + "\n" + DefinitionsToYaml(std::move(defined)));
}

}  // namespace granary
