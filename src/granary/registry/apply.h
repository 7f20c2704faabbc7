// Plan and apply: a repository's definitions files checked and compared with the registry's latest
// version, and (apply) stored as a new version. The one implementation behind `granary plan`,
// `granary apply` and the Python SDK's FeatureStore.plan() / apply().
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "granary/common/result.h"
#include "granary/common/time.h"
#include "granary/registry/definitions.h"
#include "granary/registry/plan.h"
#include "granary/registry/registry_store.h"
#include "granary/registry/repo_config.h"
#include "granary/registry/validator.h"

namespace granary {

struct ApplyOutcome {
  Definitions definitions;  // the repository's, loaded and valid
  // From the registry's latest version (or from nothing when there is none).
  std::vector<PlanChange> changes;
  // The registry's latest version before this call; unset when nothing was applied yet (or, for
  // a plan, when the registry file does not exist).
  std::optional<RegistryVersionInfo> previous;
  // The definitions of `previous` (empty when it is unset).
  Definitions previous_definitions;
  // The definitions have the fingerprint of `previous`: nothing to write.
  bool up_to_date = false;
  // The version written by an apply; unset for a plan and when up to date.
  std::optional<RegistryVersionInfo> applied;
};

enum class ApplyMode { kPlan, kApply };

// Loads <root>'s definitions, validates them (with `inspector` checking sources against their
// data; may be null), compares them with the registry's latest version and, for kApply, commits
// them as a new version stamped `now` unless they are unchanged. A plan never creates the
// registry file. Warnings go to `warnings` (may be null), also when the result is an error.
// InvalidArgument lists every load and validation error at once.
Result<ApplyOutcome> PlanOrApply(const RepoConfig& config, SourceInspector* inspector,
                                 ApplyMode mode, Timestamp now,
                                 std::vector<std::string>* warnings = nullptr);

}  // namespace granary
