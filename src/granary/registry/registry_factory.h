// OpenRegistry: the one place a registry store is built, from granary.yaml's `registry`
// (registry_location.h), as OpenOnlineStore builds the online store. Every command, the feature
// server, the scheduler and the Python SDK open their registry here.
#pragma once

#include <memory>

#include "granary/common/result.h"
#include "granary/registry/registry_location.h"
#include "granary/registry/registry_store.h"
#include "granary/registry/repo_config.h"

namespace granary {

// kOpenExisting on a registry that was never created: NoDefinitionsApplied. kCreateIfMissing
// creates it (SQLite: the file and its folder; PostgreSQL: the schema and its tables). Either
// mode migrates an older schema and refuses a newer one.
Result<std::unique_ptr<RegistryStore>> OpenRegistry(const RegistryLocation& location,
                                                    OpenMode mode);
Result<std::unique_ptr<RegistryStore>> OpenRegistry(const RepoConfig& config, OpenMode mode);

// Whether the registry was created (SQLite: the file exists). A PostgreSQL registry is taken as
// existing: opening it tells (a plan against a server that is down fails, as it should).
bool RegistryMayExist(const RegistryLocation& location);

// Drops a PostgreSQL registry's schema with everything in it (`granary teardown`); true when
// there was one. SQLite registries are files: their owner removes them.
Result<bool> DropRegistry(const RegistryLocation& location);

}  // namespace granary
