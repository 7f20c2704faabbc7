// FeatureStoreCore: opening, plan/apply, and the applied definitions as plain Python dicts (the
// Python side wraps them in Entity, FeatureView, ... objects: python/granary/definitions.py).

#include "bindings.h"
#include "feature_store_core.h"
#include "granary/registry/plan.h"

namespace granary::python {
namespace {

nb::dict Tags(const std::map<std::string, std::string>& tags) {
  nb::dict out;
  for (const auto& [k, v] : tags) out[k.c_str()] = v;
  return out;
}

nb::list Strings(const std::vector<std::string>& items) {
  nb::list out;
  for (const auto& s : items) out.append(s);
  return out;
}

nb::dict EntityDict(const Entity& e) {
  nb::dict d;
  d["name"] = e.name;
  d["join_keys"] = Strings(e.join_keys);
  nb::list types;
  for (const ValueType& t : e.join_key_types) types.append(t.ToString());
  d["join_key_types"] = types;
  d["description"] = e.description;
  d["tags"] = Tags(e.tags);
  d["location"] = e.location.ToString();
  return d;
}

nb::dict SourceDict(const DataSource& s) {
  nb::dict d;
  d["name"] = s.name;
  d["type"] = std::string(SourceFormatName(s.format));
  d["path"] = s.path;
  d["table"] = s.table;
  d["query"] = s.query;
  d["timestamp_field"] = s.timestamp_field;
  d["created_timestamp_column"] = s.created_timestamp_column;
  d["date_partition_column"] = s.date_partition_column;
  d["field_mapping"] = Tags(s.field_mapping);
  d["description"] = s.description;
  d["tags"] = Tags(s.tags);
  d["location"] = s.location.ToString();
  return d;
}

nb::dict ViewDict(const FeatureView& v) {
  nb::dict d;
  d["name"] = v.name;
  d["entities"] = Strings(v.entities);
  d["source"] = v.source;
  d["ttl_micros"] = v.ttl.micros;
  d["online"] = v.online;
  d["online_key_ttl_micros"] = v.online_key_ttl.micros;
  nb::list schema;
  for (const Field& f : v.schema) {
    nb::dict field;
    field["name"] = f.name;
    field["dtype"] = f.type.ToString();
    field["description"] = f.description;
    schema.append(field);
  }
  d["schema"] = schema;
  d["owner"] = v.owner;
  d["description"] = v.description;
  d["tags"] = Tags(v.tags);
  d["location"] = v.location.ToString();
  return d;
}

nb::dict ServiceDict(const FeatureService& s) {
  nb::dict d;
  d["name"] = s.name;
  nb::list projections;
  for (const FeatureProjection& p : s.projections) {
    nb::dict projection;
    projection["view"] = p.view;
    projection["features"] = Strings(p.features);  // empty: every feature of the view
    projections.append(projection);
  }
  d["projections"] = projections;
  d["owner"] = s.owner;
  d["description"] = s.description;
  d["tags"] = Tags(s.tags);
  d["location"] = s.location.ToString();
  return d;
}

nb::dict DefinitionsDict(const Definitions& defs, int64_t version) {
  nb::dict d;
  d["version"] = version;
  d["project"] = defs.project;
  nb::list entities, sources, views, services;
  for (const auto& e : defs.entities) entities.append(EntityDict(e));
  for (const auto& s : defs.data_sources) sources.append(SourceDict(s));
  for (const auto& v : defs.feature_views) views.append(ViewDict(v));
  for (const auto& s : defs.feature_services) services.append(ServiceDict(s));
  d["entities"] = entities;
  d["data_sources"] = sources;
  d["feature_views"] = views;
  d["feature_services"] = services;
  return d;
}

const char* ActionName(PlanChange::Action action) {
  switch (action) {
    case PlanChange::Action::kAdd:
      return "add";
    case PlanChange::Action::kUpdate:
      return "update";
    case PlanChange::Action::kRemove:
      return "remove";
  }
  return "?";
}

nb::dict OutcomeDict(const ApplyOutcome& outcome, const std::vector<std::string>& warnings) {
  nb::dict d;
  nb::list changes;
  for (const PlanChange& c : outcome.changes) {
    nb::dict change;
    change["action"] = ActionName(c.action);
    change["kind"] = std::string(ObjectKindName(c.kind));
    change["name"] = c.name;
    change["changed_keys"] = Strings(c.changed_keys);
    changes.append(change);
  }
  d["changes"] = changes;
  d["text"] = FormatPlan(outcome.changes);
  d["up_to_date"] = outcome.up_to_date;
  d["previous_version"] = outcome.previous ? nb::cast(outcome.previous->version) : nb::none();
  d["applied_version"] = outcome.applied ? nb::cast(outcome.applied->version) : nb::none();
  d["warnings"] = Strings(warnings);
  return d;
}

nb::dict RunPlanOrApply(FeatureStoreCore& self, ApplyMode mode) {
  std::vector<std::string> warnings;
  Result<ApplyOutcome> outcome = Status::Internal("not run");
  {
    nb::gil_scoped_release release;  // reads source schemas from disk
    outcome = self.PlanOrApply(mode, &warnings);
  }
  if (!outcome.ok()) {
    // Warnings also matter when the definitions are invalid: put them after the errors.
    Status st = outcome.status();
    std::string message = st.message();
    for (const auto& w : warnings) message += "\nwarning: " + w;
    throw StatusError(Status(st.code(), message));
  }
  return OutcomeDict(*outcome, warnings);
}

}  // namespace

void BindRegistry(nb::class_<FeatureStoreCore>& cls) {
  cls.def_static(
         "open",
         [](const std::string& repo_path) {
           return ValueOrThrow(FeatureStoreCore::Open(repo_path));
         },
         nb::arg("repo_path"), "Loads <repo_path>/granary.yaml.")
      .def_prop_ro("repo_path",
                   [](const FeatureStoreCore& self) { return self.config().root.string(); })
      .def_prop_ro("project", [](const FeatureStoreCore& self) { return self.config().project; })
      .def_prop_ro(
          "registry_path",
          [](const FeatureStoreCore& self) { return self.config().RegistryPath().string(); })
      .def_prop_ro("online_store_type",
                   [](const FeatureStoreCore& self) { return self.config().online_store.type; })
      .def("plan", [](FeatureStoreCore& self) { return RunPlanOrApply(self, ApplyMode::kPlan); })
      .def("apply", [](FeatureStoreCore& self) { return RunPlanOrApply(self, ApplyMode::kApply); })
      .def(
          "definitions",
          [](FeatureStoreCore& self, bool check_for_newer) {
            FeatureStoreCore::Applied applied;
            {
              nb::gil_scoped_release release;
              applied = ValueOrThrow(self.Latest(check_for_newer));
            }
            return DefinitionsDict(*applied.definitions, applied.version);
          },
          nb::arg("check_for_newer") = true)
      .def("close", [](FeatureStoreCore& self) {
        nb::gil_scoped_release release;
        self.Close();
      });
}

}  // namespace granary::python
