#include "granary/registry/yaml_reader.h"

#include <fmt/format.h>

#include "granary/common/strings.h"

namespace granary {

SourceLocation LocationOf(const std::string& file, const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  return SourceLocation{file, mark.is_null() ? 0 : mark.line + 1};
}

YamlMap::YamlMap(const YAML::Node& node, std::string file, std::string what, Diagnostics* diag)
    : node_(node),
      file_(std::move(file)),
      what_(std::move(what)),
      diag_(diag),
      valid_(node.IsMap()) {
  if (!valid_) {
    diag_->Error(LocationOf(file_, node_),
                 fmt::format("{}: expected a mapping of keys to values", what_));
  }
}

SourceLocation YamlMap::LocationOfKey(const std::string& key) const {
  if (valid_) {
    for (const auto& kv : node_) {
      if (kv.first.IsScalar() && kv.first.Scalar() == key) return LocationOf(file_, kv.first);
    }
  }
  return location();
}

void YamlMap::Error(const std::string& key, const std::string& message) {
  diag_->Error(LocationOfKey(key), key.empty() ? fmt::format("{}: {}", what_, message)
                                               : fmt::format("{}: '{}' {}", what_, key, message));
}

void YamlMap::Warning(const std::string& key, const std::string& message) {
  diag_->Warning(LocationOfKey(key), fmt::format("{}: '{}' {}", what_, key, message));
}

YAML::Node YamlMap::Node(const std::string& key, bool required) {
  known_.insert(key);
  if (!valid_) return YAML::Node(YAML::NodeType::Undefined);
  YAML::Node n = node_[key];
  if ((!n.IsDefined() || n.IsNull()) && required) {
    diag_->Error(location(), fmt::format("{}: '{}' is required", what_, key));
  }
  return n;
}

std::optional<std::string> YamlMap::String(const std::string& key, bool required) {
  YAML::Node n = Node(key, required);
  if (!n.IsDefined() || n.IsNull()) return std::nullopt;
  if (!n.IsScalar()) {
    Error(key, "must be a single value, not a list or mapping");
    return std::nullopt;
  }
  return n.Scalar();
}

std::optional<bool> YamlMap::Bool(const std::string& key) {
  auto s = String(key, false);
  if (!s) return std::nullopt;
  if (*s == "true" || *s == "True" || *s == "yes") return true;
  if (*s == "false" || *s == "False" || *s == "no") return false;
  Error(key, fmt::format("must be true or false, not '{}'", *s));
  return std::nullopt;
}

std::vector<std::string> YamlMap::StringList(const std::string& key, bool required) {
  YAML::Node n = Node(key, required);
  std::vector<std::string> out;
  if (!n.IsDefined() || n.IsNull()) return out;
  if (n.IsScalar()) return {n.Scalar()};  // a single item may be written without brackets
  if (!n.IsSequence()) {
    Error(key, "must be a list of names, e.g. [a, b]");
    return out;
  }
  for (const auto& item : n) {
    if (!item.IsScalar()) {
      diag_->Error(LocationOf(file_, item),
                   fmt::format("{}: every item of '{}' must be a name", what_, key));
      continue;
    }
    out.push_back(item.Scalar());
  }
  if (required && out.empty()) Error(key, "must not be empty");
  return out;
}

std::map<std::string, std::string> YamlMap::StringMap(const std::string& key) {
  YAML::Node n = Node(key, false);
  std::map<std::string, std::string> out;
  if (!n.IsDefined() || n.IsNull()) return out;
  if (!n.IsMap()) {
    Error(key, "must be a mapping, e.g. {a: b}");
    return out;
  }
  for (const auto& kv : n) {
    if (!kv.first.IsScalar() || !kv.second.IsScalar()) {
      diag_->Error(LocationOf(file_, kv.first),
                   fmt::format("{}: every entry of '{}' must map a name to a value", what_, key));
      continue;
    }
    out[kv.first.Scalar()] = kv.second.Scalar();
  }
  return out;
}

void YamlMap::CheckUnknownKeys() {
  if (!valid_) return;
  std::vector<std::string> known(known_.begin(), known_.end());
  for (const auto& kv : node_) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "?";
    if (known_.count(key)) continue;
    diag_->Error(LocationOf(file_, kv.first),
                 fmt::format("{}: unknown key '{}'{} (known keys: {})", what_, key,
                             DidYouMean(key, known), Join(known, ", ")));
  }
}

}  // namespace granary
