#include "granary/registry/apply.h"

#include <filesystem>

#include "granary/registry/loader.h"
#include "granary/registry/serialize.h"

namespace granary {

Result<ApplyOutcome> PlanOrApply(const RepoConfig& config, SourceInspector* inspector,
                                 ApplyMode mode, Timestamp now,
                                 std::vector<std::string>* warnings) {
  Diagnostics diag;
  GRANARY_ASSIGN_OR_RAISE(Definitions defs, LoadRepositoryDefinitions(config, &diag));
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
  if (apply || std::filesystem::exists(config.RegistryPath())) {
    GRANARY_ASSIGN_OR_RAISE(
        store, OpenSqliteRegistry(config.RegistryPath(),
                                  apply ? OpenMode::kCreateIfMissing : OpenMode::kOpenExisting));
    GRANARY_ASSIGN_OR_RAISE(auto latest, store->Latest());
    if (latest) {
      out.previous = latest->info;
      before = std::move(latest->definitions);
    }
  }
  CarryOnlineHistory(before, &defs);
  out.changes = PlanChanges(before, defs);
  out.previous_definitions = std::move(before);
  out.up_to_date = out.previous && out.previous->fingerprint == DefinitionsFingerprint(defs);
  if (apply && !out.up_to_date) {
    GRANARY_ASSIGN_OR_RAISE(out.applied, store->Commit(defs, now));
  }
  out.definitions = std::move(defs);
  return out;
}

}  // namespace granary
