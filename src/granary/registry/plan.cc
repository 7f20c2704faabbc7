#include "granary/registry/plan.h"

#include <fmt/format.h>

#include <map>
#include <set>

#include "granary/common/strings.h"
#include "granary/registry/serialize.h"

namespace granary {
namespace {

template <typename T>
void Diff(ObjectKind kind, const std::vector<T>& before, const std::vector<T>& after,
          std::vector<PlanChange>* out) {
  std::map<std::string, const T*> old_by_name, new_by_name;
  for (const T& item : before) old_by_name[item.name] = &item;
  for (const T& item : after) new_by_name[item.name] = &item;
  std::set<std::string> names;
  for (const auto& [n, _] : old_by_name) names.insert(n);
  for (const auto& [n, _] : new_by_name) names.insert(n);
  for (const std::string& name : names) {
    auto o = old_by_name.find(name);
    auto n = new_by_name.find(name);
    if (o == old_by_name.end()) {
      out->push_back({PlanChange::Action::kAdd, kind, name, {}});
    } else if (n == new_by_name.end()) {
      out->push_back({PlanChange::Action::kRemove, kind, name, {}});
    } else {
      std::map<std::string, std::string> old_fields, new_fields;
      for (auto& [k, v] : FieldsOf(*o->second)) old_fields[k] = v;
      std::vector<std::string> keys;
      std::set<std::string> seen;
      for (auto& [k, v] : FieldsOf(*n->second)) {
        new_fields[k] = v;
        seen.insert(k);
        auto it = old_fields.find(k);
        if (it == old_fields.end() || it->second != v) keys.push_back(k);
      }
      for (const auto& [k, _] : old_fields) {
        if (!seen.count(k)) keys.push_back(k);
      }
      if (!keys.empty()) out->push_back({PlanChange::Action::kUpdate, kind, name, keys});
    }
  }
}

}  // namespace

std::vector<PlanChange> PlanChanges(const Definitions& before, const Definitions& after) {
  std::vector<PlanChange> out;
  Diff(ObjectKind::kEntity, before.entities, after.entities, &out);
  Diff(ObjectKind::kDataSource, before.data_sources, after.data_sources, &out);
  Diff(ObjectKind::kFeatureView, before.feature_views, after.feature_views, &out);
  Diff(ObjectKind::kFeatureService, before.feature_services, after.feature_services, &out);
  return out;
}

std::string FormatPlan(const std::vector<PlanChange>& changes) {
  if (changes.empty()) return "No changes: the registry already matches the definitions.\n";
  std::string out;
  int added = 0, updated = 0, removed = 0;
  for (const PlanChange& c : changes) {
    switch (c.action) {
      case PlanChange::Action::kAdd:
        ++added;
        out += fmt::format("  + {} {}\n", ObjectKindName(c.kind), c.name);
        break;
      case PlanChange::Action::kUpdate:
        ++updated;
        out += fmt::format("  ~ {} {} ({})\n", ObjectKindName(c.kind), c.name,
                           Join(c.changed_keys, ", "));
        break;
      case PlanChange::Action::kRemove:
        ++removed;
        out += fmt::format("  - {} {}\n", ObjectKindName(c.kind), c.name);
        break;
    }
  }
  out += fmt::format("{} to add, {} to change, {} to remove.\n", added, updated, removed);
  return out;
}

}  // namespace granary
