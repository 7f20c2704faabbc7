// FeatureStoreCore: opening, plan/apply, and the applied definitions as plain Python dicts (the
// Python side wraps them in Entity, FeatureView, ... objects: python/granary/definitions.py).

#include "bindings.h"
#include "feature_store_core.h"
#include "granary/registry/document.h"
#include "granary/registry/plan.h"

namespace granary::python {
namespace {

nb::list Strings(const std::vector<std::string>& items) {
  nb::list out;
  for (const auto& s : items) out.append(s);
  return out;
}

// The canonical tree of an object (registry/document.h) as Python values: durations as
// microseconds, everything else as in the YAML.
nb::object ToPython(const DefinitionNode& node) {
  switch (node.kind) {
    case DefinitionNode::Kind::kString:
      return nb::str(node.text.c_str(), node.text.size());
    case DefinitionNode::Kind::kBool:
      return nb::bool_(node.flag);
    case DefinitionNode::Kind::kDuration:
      return nb::int_(node.duration.micros);
    case DefinitionNode::Kind::kList: {
      nb::list out;
      for (const auto& item : node.items) out.append(ToPython(item));
      return out;
    }
    case DefinitionNode::Kind::kMap: {
      nb::dict out;
      for (const auto& [key, value] : node.fields) out[key.c_str()] = ToPython(value);
      return out;
    }
  }
  return nb::none();
}

// The object's canonical tree plus what is derived rather than defined: where it was defined.
template <typename T>
nb::dict ObjectDict(const T& object) {
  nb::dict d = nb::cast<nb::dict>(ToPython(DocumentOf(object)));
  d["location"] = object.location.ToString();
  return d;
}

// A view also carries its outputs (FeatureView::Outputs: the schema, then the aggregations).
nb::dict ViewDict(const FeatureView& v) {
  nb::dict d = ObjectDict(v);
  nb::list outputs;
  for (const Field& f : v.Outputs()) {
    nb::dict field;
    field["name"] = f.name;
    field["type"] = f.type.ToString();
    field["description"] = f.description;
    outputs.append(field);
  }
  d["outputs"] = outputs;
  return d;
}

nb::dict DefinitionsDict(const Definitions& defs, int64_t version) {
  nb::dict d;
  d["version"] = version;
  d["project"] = defs.project;
  nb::list entities, sources, views, services;
  for (const auto& e : defs.entities) entities.append(ObjectDict(e));
  for (const auto& s : defs.data_sources) sources.append(ObjectDict(s));
  for (const auto& v : defs.feature_views) views.append(ViewDict(v));
  for (const auto& s : defs.feature_services) services.append(ObjectDict(s));
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
      .def_prop_ro("registry_path",
                   // The SQLite file, or the PostgreSQL registry's URL without its password.
                   [](const FeatureStoreCore& self) { return self.config().Registry().Describe(); })
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
