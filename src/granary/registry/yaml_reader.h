// YamlMap: reads one YAML mapping of a definitions file into typed fields, recording problems
// (missing keys, wrong shapes, unknown keys with a suggestion) in Diagnostics with file and line.
// Internal to the registry; yaml-cpp types do not leave this subsystem.
#pragma once

#include <yaml-cpp/yaml.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "granary/registry/diagnostics.h"

namespace granary {

// The 1-based location of a node.
SourceLocation LocationOf(const std::string& file, const YAML::Node& node);

class YamlMap {
 public:
  // `what` names the object in messages, e.g. "feature view 'customer_risk'".
  YamlMap(const YAML::Node& node, std::string file, std::string what, Diagnostics* diag);

  bool valid() const { return valid_; }
  const std::string& what() const { return what_; }
  SourceLocation location() const { return LocationOf(file_, node_); }
  SourceLocation LocationOfKey(const std::string& key) const;

  // Each accessor marks the key as known; a missing required key is an error.
  std::optional<std::string> String(const std::string& key, bool required);
  std::optional<bool> Bool(const std::string& key);
  std::vector<std::string> StringList(const std::string& key, bool required);
  std::map<std::string, std::string> StringMap(const std::string& key);
  // The raw node (or an undefined node when absent).
  YAML::Node Node(const std::string& key, bool required);

  // Reports every key that no accessor asked for, with a "did you mean".
  void CheckUnknownKeys();

  void Error(const std::string& key, const std::string& message);
  void Warning(const std::string& key, const std::string& message);

 private:
  YAML::Node node_;
  std::string file_;
  std::string what_;
  Diagnostics* diag_;
  bool valid_;
  std::set<std::string> known_;
};

}  // namespace granary
