#include "granary/serving/registry_json.h"

#include <algorithm>

#include "granary/common/json.h"
#include "granary/registry/document.h"

namespace granary {
namespace {

void Str(JsonWriter& w, std::string_view s) { w.String(s.data(), s.size()); }
void Key(JsonWriter& w, std::string_view k) { w.Key(k.data(), k.size()); }

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

  // Every object exactly as its canonical form (registry/document.h), sorted by name.
  auto add_all = [&](std::string_view key, const auto& items) {
    Key(w, key);
    w.StartArray();
    for (const auto* item : Sorted(items)) DefinitionNodeToJson(DocumentOf(*item), &w);
    w.EndArray();
  };
  add_all("entities", defs.entities);
  add_all("data_sources", defs.data_sources);
  add_all("feature_views", defs.feature_views);
  add_all("feature_services", defs.feature_services);
  w.EndObject();
  return w.Release();
}

}  // namespace granary
