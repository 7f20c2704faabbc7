// The state one materialization run shares with the code that materializes its views
// (materializer.cc, tile_materializer.cc). Internal to materialize/.
#pragma once

#include <atomic>
#include <string>

#include "granary/materialize/materializer.h"
#include "granary/offline/offline_engine.h"
#include "granary/online/online_store.h"
#include "granary/registry/definitions.h"
#include "granary/registry/registry_store.h"
#include "granary/registry/repo_config.h"

namespace granary {

struct RunContext {
  const RepoConfig& config;
  const MaterializeRequest& request;
  const MaterializeOptions& options;
  const Definitions& defs;
  RegistryStore& registry;
  OnlineStore& store;
  OfflineEngine& engine;
  const std::atomic<bool>* cancelled;
  const std::string& lock_token;  // recorded with each run (its liveness)
};

inline bool IsCancelled(const std::atomic<bool>* cancelled) {
  return cancelled != nullptr && cancelled->load();
}

}  // namespace granary
