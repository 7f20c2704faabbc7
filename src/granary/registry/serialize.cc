#include "granary/registry/serialize.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "granary/common/hash.h"
#include "granary/registry/document.h"
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

YAML::Node ToYaml(const DefinitionNode& node) {
  switch (node.kind) {
    case DefinitionNode::Kind::kString:
      return YAML::Node(node.text);
    case DefinitionNode::Kind::kBool:
      return YAML::Node(node.flag);
    case DefinitionNode::Kind::kDuration:
      return YAML::Node(node.duration.is_zero() ? std::string("0") : FormatDuration(node.duration));
    case DefinitionNode::Kind::kList: {
      YAML::Node n(YAML::NodeType::Sequence);
      for (const auto& item : node.items) n.push_back(ToYaml(item));
      return node.flow ? Flow(n) : n;
    }
    case DefinitionNode::Kind::kMap: {
      YAML::Node n(YAML::NodeType::Map);
      for (const auto& [key, value] : node.fields) n[key] = ToYaml(value);
      return node.flow ? Flow(n) : n;
    }
  }
  return YAML::Node();
}

ObjectFields FieldsOfDocument(const DefinitionNode& doc) {
  ObjectFields fields;
  for (const auto& [key, value] : doc.fields) fields.emplace_back(key, Emit(ToYaml(value)));
  return fields;
}

YAML::Node ParseFields(const ObjectFields& fields) {
  YAML::Node n(YAML::NodeType::Map);
  for (const auto& [k, v] : fields) n[k] = YAML::Load(v);
  return n;
}

}  // namespace

ObjectFields FieldsOf(const Entity& e) { return FieldsOfDocument(DocumentOf(e)); }
ObjectFields FieldsOf(const DataSource& s) { return FieldsOfDocument(DocumentOf(s)); }
ObjectFields FieldsOf(const FeatureView& v) { return FieldsOfDocument(DocumentOf(v)); }
ObjectFields FieldsOf(const FeatureService& s) { return FieldsOfDocument(DocumentOf(s)); }

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
