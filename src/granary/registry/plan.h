// Plan: what applying new definitions would change relative to the registry's latest version.
#pragma once

#include <string>
#include <vector>

#include "granary/registry/definitions.h"

namespace granary {

struct PlanChange {
  enum class Action { kAdd, kUpdate, kRemove };
  Action action;
  ObjectKind kind;
  std::string name;
  std::vector<std::string> changed_keys;  // for kUpdate: the keys whose values differ
};

// Changes from `before` to `after`, ordered by kind (entities, sources, views, services) then
// name. Empty when both define the same things.
std::vector<PlanChange> PlanChanges(const Definitions& before, const Definitions& after);

// One line per change ("+ feature view customer_risk", "~ entity customer (description)", ...)
// and a summary line, for people.
std::string FormatPlan(const std::vector<PlanChange>& changes);

}  // namespace granary
