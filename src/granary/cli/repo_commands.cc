// apply, plan, teardown: turning a repository's definitions into registry versions.
#include <fmt/format.h>

#include <filesystem>

#include "granary/cli/cli.h"
#include "granary/common/clock.h"
#include "granary/offline/source_inspector.h"
#include "granary/online/online_store.h"
#include "granary/registry/loader.h"
#include "granary/registry/plan.h"
#include "granary/registry/registry_store.h"
#include "granary/registry/serialize.h"

namespace granary::cli {
namespace {

// Loads and validates the repository's definitions, printing warnings; false (with the errors
// printed) when they are not valid.
bool LoadValidDefinitions(Context& ctx, const RepoConfig& config, Definitions* out) {
  Diagnostics diag;
  auto defs = LoadRepositoryDefinitions(config, &diag);
  if (!defs.ok()) {
    ctx.Fail(defs.status());
    return false;
  }
  // Validation runs even after load errors, so one run reports every problem.
  FileSourceInspector inspector(config.root);
  ValidateDefinitions(*defs, &inspector, &diag);
  for (const std::string& w : diag.Warnings()) fmt::print(stderr, "warning: {}\n", w);
  if (diag.has_errors()) {
    ctx.Fail(diag.ToStatus());
    return false;
  }
  *out = std::move(*defs);
  return true;
}

void RunPlanOrApply(Context& ctx, bool apply) {
  RepoConfig config;
  if (!ctx.LoadConfig(&config)) return;
  Definitions defs;
  if (!LoadValidDefinitions(ctx, config, &defs)) return;

  const bool exists = std::filesystem::exists(config.RegistryPath());
  Definitions before;
  std::unique_ptr<RegistryStore> store;
  std::optional<RegistryVersion> latest;
  if (exists || apply) {
    auto opened = OpenSqliteRegistry(config.RegistryPath(),
                                     apply ? OpenMode::kCreateIfMissing : OpenMode::kOpenExisting);
    if (!opened.ok()) return ctx.Fail(opened.status());
    store = std::move(*opened);
    auto l = store->Latest();
    if (!l.ok()) return ctx.Fail(l.status());
    latest = std::move(*l);
    if (latest) before = latest->definitions;
  }
  const auto changes = PlanChanges(before, defs);
  const std::string fingerprint = DefinitionsFingerprint(defs);
  fmt::print("Project {}: {} entities, {} data sources, {} feature views, {} feature services\n",
             config.project, defs.entities.size(), defs.data_sources.size(),
             defs.feature_views.size(), defs.feature_services.size());
  if (latest && latest->info.fingerprint == fingerprint) {
    fmt::print("No changes: registry version {} ({}) is up to date.\n", latest->info.version,
               config.RegistryPath().string());
    return;
  }
  fmt::print("{}", FormatPlan(changes));
  if (latest && changes.empty()) {
    fmt::print("(the project name changed from '{}')\n", latest->info.project);
  }
  if (!apply) {
    fmt::print("Nothing was written; run 'granary apply' to store this as a new version.\n");
    return;
  }
  auto info = store->Commit(defs, SystemClock::Default().Now());
  if (!info.ok()) return ctx.Fail(info.status());
  fmt::print("Applied: registry version {} (fingerprint {}) in {}\n", info->version,
             info->fingerprint, config.RegistryPath().string());
}

void RunTeardown(Context& ctx) {
  RepoConfig config;
  if (!ctx.LoadConfig(&config)) return;
  // The online data goes first, through the store: if the store cannot be reached, nothing is
  // removed and teardown can be run again.
  const bool embedded = config.online_store.type == "rocksdb";
  const auto online_path = config.Resolve(config.online_store.path);
  int removed = 0;
  if (!embedded || std::filesystem::exists(online_path)) {
    auto store = OpenOnlineStore(config);
    if (!store.ok()) return ctx.Fail(store.status().WithContext("nothing was removed"));
    Status st = (*store)->DeleteAll();
    if (!st.ok()) return ctx.Fail(st.WithContext("teardown of the online store"));
    fmt::print("removed the online data of project {} ({})\n", config.project,
               (*store)->Describe());
    ++removed;
  }
  std::error_code ec;
  auto remove = [&](const std::filesystem::path& p) {
    if (!std::filesystem::exists(p, ec)) return;
    std::filesystem::remove_all(p, ec);
    if (ec) {
      ctx.Fail(Status::IOError(fmt::format("cannot remove {}: {}", p.string(), ec.message())));
      return;
    }
    fmt::print("removed {}\n", p.string());
    ++removed;
  };
  if (embedded) remove(online_path);
  for (const char* suffix : {"", "-wal", "-shm"}) {
    remove(std::filesystem::path(config.RegistryPath().string() + suffix));
  }
  if (removed == 0 && ctx.exit_code == 0)
    fmt::print("Nothing to remove: the project was not applied.\n");
}

}  // namespace

void RegisterRepoCommands(CLI::App& app, Context& ctx) {
  app.add_subcommand("apply", "Validate the definitions and store them as a new registry version")
      ->callback([&ctx] { RunPlanOrApply(ctx, /*apply=*/true); });
  app.add_subcommand("plan", "Show what apply would change, without writing anything")
      ->callback([&ctx] { RunPlanOrApply(ctx, /*apply=*/false); });
  app.add_subcommand("teardown",
                     "Remove the project's online data (RocksDB or Redis) and its registry")
      ->callback([&ctx] { RunTeardown(ctx); });
}

}  // namespace granary::cli
