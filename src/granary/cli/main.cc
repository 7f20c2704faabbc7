// granary: the command line of the Granary feature store.
#include <fmt/format.h>
#include <stdlib.h>
#include <sys/prctl.h>

#include "granary/cli/cli.h"
#include "granary/common/strings.h"

namespace granary::cli {

void Context::Fail(const Status& status) {
  fmt::print(stderr, "error: {}\n", status.message());
  exit_code = 1;
}

bool Context::LoadConfig(RepoConfig* out) {
  auto config = LoadRepoConfig(repo);
  if (!config.ok()) {
    Fail(config.status());
    return false;
  }
  *out = std::move(*config);
  return true;
}

int ReportUnknownCommand(CLI::App& app) {
  if (!app.get_subcommands().empty()) return 0;
  const std::vector<std::string> extras = app.remaining();
  if (extras.empty() || extras.front().empty() || extras.front()[0] == '-') return 0;
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    names.push_back(sub->get_name());
  }
  fmt::print(stderr, "error: unknown command '{}'{}\nRun 'granary --help' to list the commands.\n",
             extras.front(), DidYouMean(extras.front(), names));
  return static_cast<int>(CLI::ExitCodes::ExtrasError);
}

}  // namespace granary::cli

int main(int argc, char** argv) {
  // Arrow's allocator (mimalloc in the pyarrow wheel) returns freed memory to the OS after 10 ms
  // by default; the offline engine frees and reallocates large buffers all the time, and the
  // kernel then spends more time zeroing pages than the join spends working (measured: 2.5x
  // slower). Keep freed memory for 5 s unless the user chose otherwise.
  setenv("MIMALLOC_PURGE_DELAY", "5000", /*overwrite=*/0);
  // mimalloc asks for transparent huge pages for its arenas: each 2 MiB range it purged and then
  // touches again is faulted back whole and zeroed by the kernel, which was 16 % of a training
  // set's CPU time (bench/pit_join, perf: clear_page_erms under do_huge_pmd_anonymous_page).
  // With 4 KiB pages only the pages touched are zeroed: system time 3.8 -> 2.3 s and peak RSS
  // about 40 MiB lower on that benchmark. mimalloc reads MIMALLOC_ALLOW_THP when the library
  // loads, before main, so the process turns huge pages off itself (what that option does),
  // unless the user set the option.
  if (getenv("MIMALLOC_ALLOW_THP") == nullptr) (void)prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
  granary::cli::Context ctx;
  CLI::App app{"Granary: a feature store for machine learning (training sets and online features)",
               "granary"};
  app.require_subcommand(1);
  app.option_defaults()->always_capture_default();
  app.add_option("-C,--repo", ctx.repo, "Feature repository folder (holds granary.yaml)")
      ->capture_default_str();
  app.set_version_flag("--version", "granary 0.1.0");
  granary::cli::RegisterInitCommand(app, ctx);
  granary::cli::RegisterRepoCommands(app, ctx);
  granary::cli::RegisterCatalogCommands(app, ctx);
  granary::cli::RegisterDatagenCommand(app, ctx);
  granary::cli::RegisterHistoricalCommand(app, ctx);
  granary::cli::RegisterOnlineCommands(app, ctx);
  granary::cli::RegisterMaterializeCommands(app, ctx);
  granary::cli::RegisterStatusCommand(app, ctx);
  granary::cli::RegisterScheduleCommand(app, ctx);
  granary::cli::RegisterServeCommand(app, ctx);
  granary::cli::RegisterServeOfflineCommand(app, ctx);
  granary::cli::RegisterImportFeastCommand(app, ctx);
  granary::cli::RegisterUiCommand(app, ctx);
  granary::cli::RegisterStatsCommand(app, ctx);
  granary::cli::RegisterRegistryCommands(app, ctx);
  granary::cli::RegisterVerifyCommand(app, ctx);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // A mistyped command is not a missing one: name it and the closest command.
    if (int code = granary::cli::ReportUnknownCommand(app); code != 0) return code;
    return app.exit(e);
  } catch (const std::exception& e) {
    // Subsystems return errors as values; an exception that gets here is a bug. Say so plainly
    // rather than abort with a core dump.
    fmt::print(stderr, "error: internal error (a bug in Granary, please report it): {}\n",
               e.what());
    return 1;
  }
  return ctx.exit_code;
}
