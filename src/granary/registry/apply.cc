#include "granary/registry/apply.h"

#include <filesystem>

#include "granary/registry/loader.h"
#include "granary/registry/registry_factory.h"
#include "granary/registry/serialize.h"

namespace granary {

Result<ApplyOutcome> PlanOrApply(const RepoConfig& config, SourceInspector* inspector,
                                 ApplyMode mode, Timestamp now,
                                 std::vector<std::string>* warnings) {
  Diagnostics diag;
  GRANARY_ASSIGN_OR_RAISE(Definitions defs, LoadRepositoryDefinitions(config, &diag));
  InferAggregationTypes(&defs, inspector);
  // Validation runs even after load errors, so one run reports every problem.
  ValidateDefinitions(defs, inspector, &diag);
  if (warnings != nullptr) {
    for (std::string& w : diag.Warnings()) warnings->push_back(std::move(w));
  }
  GRANARY_RETURN_NOT_OK(diag.ToStatus());

  const bool apply = mode == ApplyMode::kApply;
  ApplyOutcome out;
  Definitions before;
  std::unique_ptr<RegistryStore> store;
  if (apply || RegistryMayExist(config.Registry())) {
    auto opened =
        OpenRegistry(config, apply ? OpenMode::kCreateIfMissing : OpenMode::kOpenExisting);
    // A plan against a registry never created compares with nothing.
    if (!opened.ok() && !(IsNoDefinitionsApplied(opened.status()) && !apply)) {
      return opened.status();
    }
    if (opened.ok()) {
      store = std::move(*opened);
      GRANARY_ASSIGN_OR_RAISE(auto latest, store->Latest());
      if (latest) {
        out.previous = latest->info;
        before = std::move(latest->definitions);
      }
    }
  }
  CarryOnlineHistory(before, &defs);
  out.changes = PlanChanges(before, defs);
  out.previous_definitions = std::move(before);
  out.up_to_date = out.previous && out.previous->fingerprint == DefinitionsFingerprint(defs);
  if (apply && !out.up_to_date) {
    // Optimistic: the commit checks that the version planned against is still the newest, so two
    // applies from two hosts at once give one new version and a conflict for the other.
    GRANARY_ASSIGN_OR_RAISE(
        out.applied, store->CommitVersion(defs, now, out.previous ? out.previous->version : 0));
  }
  out.definitions = std::move(defs);
  return out;
}

}  // namespace granary
