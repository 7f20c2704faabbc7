// GET /api/registry (the definitions and their lineage) and GET /api/history (the versions and
// what each apply changed).
#include <fmt/format.h>

#include "granary/common/json.h"
#include "granary/console/console_service.h"
#include "granary/registry/plan.h"
#include "granary/registry/registry_factory.h"
#include "granary/registry/registry_store.h"
#include "granary/serving/registry_json.h"

namespace granary {
namespace {

Result<RegistryVersion> LatestVersion(RegistryStore& registry) {
  GRANARY_ASSIGN_OR_RAISE(auto latest, registry.Latest());
  if (!latest) {
    return Status::FailedPrecondition(fmt::format(
        "registry {} holds no definitions yet: run 'granary apply' in the repository first",
        registry.Describe()));
  }
  return std::move(*latest);
}

// Nodes (entities, sources, views, services) and the edges data flows along: entity -> view (keys
// it), source -> view, push source -> its batch source, view -> service. Ids are "kind:name".
void WriteLineage(JsonWriter& w, const Definitions& defs) {
  auto node = [&w](std::string_view kind, const std::string& name) {
    w.StartObject();
    w.Key("id");
    w.String(fmt::format("{}:{}", kind, name));
    w.Key("kind");
    w.String(kind);
    w.Key("name");
    w.String(name);
    w.EndObject();
  };
  auto edge = [&w](std::string_view from_kind, const std::string& from, std::string_view to_kind,
                   const std::string& to) {
    w.StartObject();
    w.Key("from");
    w.String(fmt::format("{}:{}", from_kind, from));
    w.Key("to");
    w.String(fmt::format("{}:{}", to_kind, to));
    w.EndObject();
  };
  w.StartObject();
  w.Key("nodes");
  w.StartArray();
  for (const Entity& e : defs.entities) node("entity", e.name);
  for (const DataSource& s : defs.data_sources) node("data_source", s.name);
  for (const FeatureView& v : defs.feature_views) node("feature_view", v.name);
  for (const FeatureService& s : defs.feature_services) node("feature_service", s.name);
  w.EndArray();
  w.Key("edges");
  w.StartArray();
  for (const DataSource& s : defs.data_sources) {
    if (s.is_push() && defs.FindDataSource(s.batch_source) != nullptr) {
      edge("data_source", s.name, "data_source", s.batch_source);
    }
  }
  for (const FeatureView& v : defs.feature_views) {
    for (const std::string& e : v.entities) edge("entity", e, "feature_view", v.name);
    edge("data_source", v.source, "feature_view", v.name);
  }
  for (const FeatureService& s : defs.feature_services) {
    std::vector<std::string> seen;
    for (const FeatureProjection& p : s.projections) {
      if (std::find(seen.begin(), seen.end(), p.view) != seen.end()) continue;
      seen.push_back(p.view);
      edge("feature_view", p.view, "feature_service", s.name);
    }
  }
  w.EndArray();
  w.EndObject();
}

std::string_view ActionName(PlanChange::Action action) {
  switch (action) {
    case PlanChange::Action::kAdd:
      return "add";
    case PlanChange::Action::kUpdate:
      return "update";
    case PlanChange::Action::kRemove:
      return "remove";
  }
  return "update";
}

}  // namespace

Result<std::string> ConsoleService::RegistryJson() {
  GRANARY_ASSIGN_OR_RAISE(auto registry,
                          OpenRegistry(options_.repository, OpenMode::kOpenExisting));
  GRANARY_ASSIGN_OR_RAISE(RegistryVersion latest, LatestVersion(*registry));
  JsonWriter w;
  w.StartObject();
  w.Key("registry");
  w.RawValue(granary::RegistryJson(latest.info, latest.definitions));
  w.Key("lineage");
  WriteLineage(w, latest.definitions);
  w.EndObject();
  return w.Release();
}

Result<std::string> ConsoleService::HistoryJson(int limit) {
  GRANARY_ASSIGN_OR_RAISE(auto registry,
                          OpenRegistry(options_.repository, OpenMode::kOpenExisting));
  GRANARY_ASSIGN_OR_RAISE(auto versions, registry->History(limit));
  JsonWriter w;
  w.StartObject();
  w.Key("versions");
  w.StartArray();
  // Newest first; each version is compared with the one before it (version 1 with nothing).
  for (const RegistryVersionInfo& info : versions) {
    GRANARY_ASSIGN_OR_RAISE(auto current, registry->Version(info.version));
    if (!current) continue;  // a version removed meanwhile (teardown)
    Definitions before;
    if (info.version > 1) {
      GRANARY_ASSIGN_OR_RAISE(auto previous, registry->Version(info.version - 1));
      if (previous) before = std::move(previous->definitions);
    }
    w.StartObject();
    w.Key("version");
    w.Int64(info.version);
    w.Key("applied_at");
    w.String(FormatTimestamp(info.applied_at));
    w.Key("fingerprint");
    w.String(info.fingerprint);
    w.Key("project");
    w.String(info.project);
    w.Key("changes");
    w.StartArray();
    for (const PlanChange& c : PlanChanges(before, current->definitions)) {
      w.StartObject();
      w.Key("action");
      w.String(ActionName(c.action));
      w.Key("kind");
      w.String(ObjectKindName(c.kind));
      w.Key("name");
      w.String(c.name);
      w.Key("changed_keys");
      w.StartArray();
      for (const std::string& k : c.changed_keys) w.String(k);
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return w.Release();
}

}  // namespace granary
