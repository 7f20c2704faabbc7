// apply, plan, teardown: turning a repository's definitions into registry versions.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>

#include "granary/cli/cli.h"
#include "granary/common/clock.h"
#include "granary/materialize/repository_lock.h"
#include "granary/offline/engine_factory.h"
#include "granary/online/online_store.h"
#include "granary/online/view_layout.h"
#include "granary/registry/apply.h"

namespace granary::cli {
namespace {

// A warning for each online view whose stored layout (docs/ONLINE_LAYOUT.md: the schema
// fingerprint in every value) differs between `before` and `after`, saying which of its features
// read NOT_FOUND from the apply on, until the view is materialized again. `after` carries the
// online history that apply keeps (CarryOnlineHistory).
std::vector<std::string> OnlineLayoutWarnings(const RepoConfig& config, const Definitions& before,
                                              const Definitions& after, bool apply) {
  std::vector<std::string> out;
  for (const FeatureView& view : after.feature_views) {
    const FeatureView* old_view = before.FindFeatureView(view.name);
    if (old_view == nullptr || !view.online || !old_view->online) continue;
    auto old_layout = ViewLayout::Make(before, *old_view, config.online_store.key_ttl);
    auto new_layout = ViewLayout::Make(after, view, config.online_store.key_ttl);
    if (!old_layout.ok() || !new_layout.ok()) continue;
    if ((*old_layout)->fingerprint() == (*new_layout)->fingerprint()) continue;
    const ViewLayout::Earlier* earlier = (*new_layout)->FindEarlier((*old_layout)->fingerprint());
    const char* from = apply ? "from now on" : "once applied,";
    std::string what;
    if (earlier == nullptr) {
      what = fmt::format(
          "so do its entities' join keys, so {} its values stored online read NOT_FOUND until "
          "the view is materialized again",
          from);
    } else {
      std::vector<std::string> missing;
      for (size_t f = 0; f < earlier->from_current.size(); ++f) {
        if (earlier->from_current[f] < 0) missing.push_back((*new_layout)->features()[f].name);
      }
      what = missing.empty()
                 ? fmt::format(
                       "its values stored online keep serving its features, but {} 'granary "
                       "status' counts the view as not materialized until it is materialized "
                       "again",
                       from)
                 : fmt::format(
                       "its values stored online keep serving the features it keeps, but {} "
                       "{} (added or retyped) read NOT_FOUND until the view is materialized again",
                       from, fmt::join(missing, ", "));
    }
    out.push_back(fmt::format(
        "feature view '{}': its online schema changes and {}; {}run 'granary "
        "materialize-incremental now --views {}' (it reloads the view from its source within "
        "the ttl)",
        view.name, what, apply ? "" : "after apply, ", view.name));
  }
  return out;
}

void RunPlanOrApply(Context& ctx, bool apply) {
  RepoConfig config;
  if (!ctx.LoadConfig(&config)) return;
  // The offline engine checks the sources: their form, and their columns where the data exists.
  auto engine = OpenOfflineEngine(config);
  if (!engine.ok()) return ctx.Fail(engine.status());
  std::vector<std::string> warnings;
  auto outcome = PlanOrApply(config, engine->get(), apply ? ApplyMode::kApply : ApplyMode::kPlan,
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
  for (const std::string& warning :
       OnlineLayoutWarnings(config, outcome->previous_definitions, defs, apply)) {
    fmt::print(stderr, "warning: {}\n", warning);
  }
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

// Asks on the terminal whether to delete everything teardown deletes. Without a terminal (a
// script, a pipe) there is nobody to ask: the caller must have said --yes.
bool ConfirmTeardown(Context& ctx, const RepoConfig& config) {
  const std::string what = fmt::format(
      "teardown deletes project {}'s online data ({}), its registry ({}) with every version, "
      "watermark and run history",
      config.project,
      config.online_store.type == "rocksdb" ? config.Resolve(config.online_store.path).string()
                                            : config.online_store.type,
      config.RegistryPath().string());
  if (!isatty(STDIN_FILENO)) {
    ctx.Fail(Status::InvalidArgument(fmt::format(
        "{}; stdin is not a terminal, so nothing was asked and nothing was removed: run "
        "'granary teardown --yes' to confirm",
        what)));
    return false;
  }
  fmt::print("{}.\nContinue? [y/N] ", what);
  std::fflush(stdout);
  std::string answer;
  if (!std::getline(std::cin, answer)) answer.clear();
  if (answer == "y" || answer == "Y" || answer == "yes" || answer == "YES" || answer == "Yes") {
    return true;
  }
  fmt::print("Nothing was removed.\n");
  return false;
}

void RunTeardown(Context& ctx, bool yes) {
  RepoConfig config;
  if (!ctx.LoadConfig(&config)) return;
  if (!yes && !ConfirmTeardown(ctx, config)) return;
  // Hold the repository lock throughout, so that no materialization writes while (or after) the
  // store and its registry go.
  std::unique_ptr<RepositoryLock> lock;
  if (std::filesystem::exists(config.RegistryPath())) {
    auto acquired = RepositoryLock::Acquire(config.RegistryPath(), "granary teardown",
                                            SystemClock::Default().Now());
    if (!acquired.ok()) return ctx.Fail(acquired.status().WithContext("nothing was removed"));
    lock = std::move(*acquired);
  }
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
  // The registry with SQLite's journal files, and the materialization lock beside it (held by this
  // process, so no run starts in between; unlinking a held flock file is safe).
  for (const char* suffix : {"", "-wal", "-shm", ".materialize.lock"}) {
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
  auto yes = std::make_shared<bool>(false);
  CLI::App* teardown = app.add_subcommand(
      "teardown",
      "Remove the project's online data (RocksDB or Redis) and its registry (asks first)");
  teardown->add_flag("-y,--yes", *yes,
                     "Do not ask (required when stdin is not a terminal, as in scripts)");
  teardown->callback([&ctx, yes] { RunTeardown(ctx, *yes); });
}

}  // namespace granary::cli
