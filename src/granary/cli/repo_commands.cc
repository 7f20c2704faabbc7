// apply, plan, teardown: turning a repository's definitions into registry versions.
#include <fmt/format.h>

#include <filesystem>

#include "granary/cli/cli.h"
#include "granary/common/clock.h"
#include "granary/offline/source_inspector.h"
#include "granary/online/online_store.h"
#include "granary/registry/apply.h"

namespace granary::cli {
namespace {

void RunPlanOrApply(Context& ctx, bool apply) {
  RepoConfig config;
  if (!ctx.LoadConfig(&config)) return;
  FileSourceInspector inspector(config.root);
  std::vector<std::string> warnings;
  auto outcome = PlanOrApply(config, &inspector, apply ? ApplyMode::kApply : ApplyMode::kPlan,
                             SystemClock::Default().Now(), &warnings);
  for (const std::string& w : warnings) fmt::print(stderr, "warning: {}\n", w);
  if (!outcome.ok()) return ctx.Fail(outcome.status());
  const Definitions& defs = outcome->definitions;
  fmt::print("Project {}: {} entities, {} data sources, {} feature views, {} feature services\n",
             config.project, defs.entities.size(), defs.data_sources.size(),
             defs.feature_views.size(), defs.feature_services.size());
  if (outcome->up_to_date) {
    fmt::print("No changes: registry version {} ({}) is up to date.\n", outcome->previous->version,
               config.RegistryPath().string());
    return;
  }
  fmt::print("{}", FormatPlan(outcome->changes));
  if (outcome->previous && outcome->changes.empty()) {
    fmt::print("(the project name changed from '{}')\n", outcome->previous->project);
  }
  if (!apply) {
    fmt::print("Nothing was written; run 'granary apply' to store this as a new version.\n");
    return;
  }
  fmt::print("Applied: registry version {} (fingerprint {}) in {}\n", outcome->applied->version,
             outcome->applied->fingerprint, config.RegistryPath().string());
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
