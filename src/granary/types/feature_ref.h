// FeatureRef ("view:feature") and EntityKey (join key names with their values).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "granary/common/result.h"
#include "granary/types/value.h"

namespace granary {

// A reference to one feature of one feature view, written "view:feature".
struct FeatureRef {
  std::string view;
  std::string feature;

  // Parses "view:feature"; both parts must be non-empty.
  static Result<FeatureRef> Parse(std::string_view text);
  // "view:feature".
  std::string ToString() const { return view + ":" + feature; }
  // The output column name: "view__feature" with full feature names, else "feature".
  std::string OutputName(bool full_feature_names) const {
    return full_feature_names ? view + "__" + feature : feature;
  }
  bool operator==(const FeatureRef&) const = default;
};

// The key of one entity: join key names (sorted by the entity's definition order) and values.
struct EntityKey {
  std::vector<std::string> join_keys;
  std::vector<Value> values;  // same length as join_keys

  bool operator==(const EntityKey&) const = default;
  // "customer_id=1001" or "a=1,b=\"x\"".
  std::string ToString() const;
};

}  // namespace granary
