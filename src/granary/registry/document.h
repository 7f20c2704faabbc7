// DefinitionNode: one definition object as a neutral tree, the single description of which keys
// an object has, in which order, and which are left out when they hold their default. Every
// serialization prints this tree and nothing else: the canonical YAML the registry stores and
// fingerprints (serialize.h), the feature server's GET /registry JSON (DefinitionNodeToJson) and
// the Python SDK's dicts (python/src/registry_bindings.cc). A new key is added here once.
// Plain values; thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "granary/common/time.h"
#include "granary/registry/definitions.h"

namespace granary {

class JsonWriter;

struct DefinitionNode {
  enum class Kind { kString, kBool, kDuration, kList, kMap };
  Kind kind = Kind::kString;
  std::string text;   // kString
  bool flag = false;  // kBool
  Duration duration;  // kDuration: printed "0" or "30d" in text forms, microseconds in Python
  std::vector<DefinitionNode> items;                           // kList
  std::vector<std::pair<std::string, DefinitionNode>> fields;  // kMap, in canonical order
  // Printed on one line in YAML ("[a, b]", "{name: x, type: int64}").
  bool flow = false;

  // Declared here and defaulted in document.cc, where the node type is complete: a member that
  // holds the node itself (`fields`) must not be destroyed or moved in the class body (clang with
  // libstdc++ rejects that).
  DefinitionNode();
  ~DefinitionNode();
  DefinitionNode(const DefinitionNode&);
  DefinitionNode(DefinitionNode&&) noexcept;
  DefinitionNode& operator=(const DefinitionNode&);
  DefinitionNode& operator=(DefinitionNode&&) noexcept;

  static DefinitionNode String(std::string text);
  static DefinitionNode Bool(bool flag);
  static DefinitionNode OfDuration(Duration d);
  static DefinitionNode List(bool flow);
  static DefinitionNode Map(bool flow);
  static DefinitionNode StringList(const std::vector<std::string>& items);           // flow
  static DefinitionNode StringMap(const std::map<std::string, std::string>& items);  // flow

  // kMap: appends a field.
  void Add(std::string key, DefinitionNode value);
  // kList: appends an item.
  void Append(DefinitionNode value) { items.push_back(std::move(value)); }
};

DefinitionNode DocumentOf(const Entity& e);
DefinitionNode DocumentOf(const DataSource& s);
DefinitionNode DocumentOf(const FeatureView& v);
DefinitionNode DocumentOf(const FeatureService& s);

// Writes the node as one JSON value (durations as their text, "30d").
void DefinitionNodeToJson(const DefinitionNode& node, JsonWriter* w);

}  // namespace granary
