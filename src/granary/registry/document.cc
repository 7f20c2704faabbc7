#include "granary/registry/document.h"

#include "granary/common/json.h"

namespace granary {

DefinitionNode::DefinitionNode() = default;
DefinitionNode::~DefinitionNode() = default;
DefinitionNode::DefinitionNode(const DefinitionNode&) = default;
DefinitionNode::DefinitionNode(DefinitionNode&&) noexcept = default;
DefinitionNode& DefinitionNode::operator=(const DefinitionNode&) = default;
DefinitionNode& DefinitionNode::operator=(DefinitionNode&&) noexcept = default;

DefinitionNode DefinitionNode::String(std::string text) {
  DefinitionNode n;
  n.text = std::move(text);
  return n;
}
DefinitionNode DefinitionNode::Bool(bool flag) {
  DefinitionNode n;
  n.kind = Kind::kBool;
  n.flag = flag;
  return n;
}
DefinitionNode DefinitionNode::OfDuration(Duration d) {
  DefinitionNode n;
  n.kind = Kind::kDuration;
  n.duration = d;
  return n;
}
DefinitionNode DefinitionNode::List(bool flow) {
  DefinitionNode n;
  n.kind = Kind::kList;
  n.flow = flow;
  return n;
}
DefinitionNode DefinitionNode::Map(bool flow) {
  DefinitionNode n;
  n.kind = Kind::kMap;
  n.flow = flow;
  return n;
}
DefinitionNode DefinitionNode::StringList(const std::vector<std::string>& items) {
  DefinitionNode n = List(true);
  for (const auto& s : items) n.Append(String(s));
  return n;
}
DefinitionNode DefinitionNode::StringMap(const std::map<std::string, std::string>& items) {
  DefinitionNode n = Map(true);
  for (const auto& [k, v] : items) n.Add(k, String(v));
  return n;
}
void DefinitionNode::Add(std::string key, DefinitionNode value) {
  fields.emplace_back(std::move(key), std::move(value));
}

namespace {

// The keys every kind may end with, each left out when empty.
void AddDocumentation(DefinitionNode* n, const std::string& owner, const std::string& description,
                      const std::map<std::string, std::string>& tags) {
  if (!owner.empty()) n->Add("owner", DefinitionNode::String(owner));
  if (!description.empty()) n->Add("description", DefinitionNode::String(description));
  if (!tags.empty()) n->Add("tags", DefinitionNode::StringMap(tags));
}

void AddIfSet(DefinitionNode* n, const std::string& key, const std::string& value) {
  if (!value.empty()) n->Add(key, DefinitionNode::String(value));
}

}  // namespace

DefinitionNode DocumentOf(const Entity& e) {
  DefinitionNode n = DefinitionNode::Map(false);
  n.Add("name", DefinitionNode::String(e.name));
  n.Add("join_keys", DefinitionNode::StringList(e.join_keys));
  std::vector<std::string> types;
  for (const ValueType& t : e.join_key_types) types.push_back(t.ToString());
  if (types.size() == 1)
    n.Add("value_type", DefinitionNode::String(types[0]));
  else
    n.Add("value_type", DefinitionNode::StringList(types));
  AddDocumentation(&n, "", e.description, e.tags);
  return n;
}

DefinitionNode DocumentOf(const DataSource& s) {
  DefinitionNode n = DefinitionNode::Map(false);
  n.Add("name", DefinitionNode::String(s.name));
  if (s.is_push()) {
    n.Add("type", DefinitionNode::String("push"));
    n.Add("batch_source", DefinitionNode::String(s.batch_source));
    AddDocumentation(&n, "", s.description, s.tags);
    return n;
  }
  n.Add("type", DefinitionNode::String(s.format == SourceFormat::kDelta ? "delta" : "file"));
  if (s.format != SourceFormat::kDelta) {
    n.Add("format", DefinitionNode::String(std::string(SourceFormatName(s.format))));
  }
  // path (the usual form), or table, or query: never an empty path, so fingerprints of path
  // sources stay what they were before tables and queries existed.
  if (!s.table.empty()) {
    n.Add("table", DefinitionNode::String(s.table));
  } else if (!s.query.empty()) {
    n.Add("query", DefinitionNode::String(s.query));
  } else {
    n.Add("path", DefinitionNode::String(s.path));
  }
  n.Add("timestamp_field", DefinitionNode::String(s.timestamp_field));
  AddIfSet(&n, "created_timestamp_column", s.created_timestamp_column);
  AddIfSet(&n, "date_partition_column", s.date_partition_column);
  if (!s.field_mapping.empty()) n.Add("field_mapping", DefinitionNode::StringMap(s.field_mapping));
  AddDocumentation(&n, "", s.description, s.tags);
  return n;
}

DefinitionNode DocumentOf(const FeatureView& v) {
  DefinitionNode n = DefinitionNode::Map(false);
  n.Add("name", DefinitionNode::String(v.name));
  n.Add("entities", DefinitionNode::StringList(v.entities));
  n.Add("source", DefinitionNode::String(v.source));
  n.Add("ttl", DefinitionNode::OfDuration(v.ttl));
  n.Add("online", DefinitionNode::Bool(v.online));
  if (!v.online_key_ttl.is_zero()) {
    n.Add("online_key_ttl", DefinitionNode::OfDuration(v.online_key_ttl));
  }
  // A view of aggregations only has no schema; every other view keeps its (canonical) schema key.
  if (!v.schema.empty() || v.aggregations.empty()) {
    DefinitionNode schema = DefinitionNode::List(false);
    for (const Field& f : v.schema) {
      DefinitionNode field = DefinitionNode::Map(true);
      field.Add("name", DefinitionNode::String(f.name));
      field.Add("type", DefinitionNode::String(f.type.ToString()));
      AddIfSet(&field, "description", f.description);
      schema.Append(std::move(field));
    }
    n.Add("schema", std::move(schema));
  }
  if (!v.aggregations.empty()) {
    DefinitionNode aggregations = DefinitionNode::List(false);
    for (const Aggregation& a : v.aggregations) {
      DefinitionNode agg = DefinitionNode::Map(true);
      agg.Add("name", DefinitionNode::String(a.name));
      agg.Add("function", DefinitionNode::String(std::string(AggregationFunctionName(a.function))));
      AddIfSet(&agg, "column", a.column);
      AddIfSet(&agg, "where", a.where);
      agg.Add("window", DefinitionNode::OfDuration(a.window));
      if (a.type) agg.Add("type", DefinitionNode::String(a.type->ToString()));
      AddIfSet(&agg, "description", a.description);
      aggregations.Append(std::move(agg));
    }
    n.Add("aggregations", std::move(aggregations));
    n.Add("granularity", DefinitionNode::OfDuration(v.granularity));
  }
  AddDocumentation(&n, v.owner, v.description, v.tags);
  return n;
}

DefinitionNode DocumentOf(const FeatureService& s) {
  DefinitionNode n = DefinitionNode::Map(false);
  n.Add("name", DefinitionNode::String(s.name));
  DefinitionNode features = DefinitionNode::List(false);
  for (const FeatureProjection& p : s.projections) {
    if (p.features.empty()) {
      features.Append(DefinitionNode::String(p.view));
    } else {
      DefinitionNode projection = DefinitionNode::Map(true);
      projection.Add("view", DefinitionNode::String(p.view));
      projection.Add("features", DefinitionNode::StringList(p.features));
      features.Append(std::move(projection));
    }
  }
  n.Add("features", std::move(features));
  AddDocumentation(&n, s.owner, s.description, s.tags);
  return n;
}

void DefinitionNodeToJson(const DefinitionNode& node, JsonWriter* w) {
  switch (node.kind) {
    case DefinitionNode::Kind::kString:
      w->String(node.text);
      return;
    case DefinitionNode::Kind::kBool:
      w->Bool(node.flag);
      return;
    case DefinitionNode::Kind::kDuration:
      w->String(node.duration.is_zero() ? std::string("0") : FormatDuration(node.duration));
      return;
    case DefinitionNode::Kind::kList:
      w->StartArray();
      for (const auto& item : node.items) DefinitionNodeToJson(item, w);
      w->EndArray();
      return;
    case DefinitionNode::Kind::kMap:
      w->StartObject();
      for (const auto& [key, value] : node.fields) {
        w->Key(key);
        DefinitionNodeToJson(value, w);
      }
      w->EndObject();
      return;
  }
}

}  // namespace granary
