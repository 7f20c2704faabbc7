// granary: the command line of the Granary feature store.
#include <absl/synchronization/mutex.h>
#include <fmt/format.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <string_view>

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

namespace {

// Arrow's allocator (mimalloc v3, linked statically into the pyarrow wheel's libarrow, its API
// not exported) returns freed memory to the OS after `purge_delay` ms, 1000 by default. The
// offline engine frees and reallocates large buffers all the time, and the kernel then zeroes
// the pages again when they are touched (measured with mimalloc v2's 10 ms: 2.5x slower).
// Commands that run the offline engine keep freed memory for 5 s unless the user chose otherwise
// (MIMALLOC_PURGE_DELAY in the environment).
//
// mimalloc reads its options from the environment once, in its constructor, when libarrow is
// loaded: before main(), where a setenv comes too late. An executable's .preinit_array runs
// earlier, but the C library's own initialisation, which comes after it, resets the environment
// to the one the process started with. So the process runs itself again with the variable set
// (one exec: about 50 ms, only for these commands). tests/test_cli_allocator.py checks that
// mimalloc runs with the value.
constexpr const char* kPurgeDelayVariable = "MIMALLOC_PURGE_DELAY";
constexpr const char* kOfflinePurgeDelayMillis = "5000";

// Whether the command line names a command whose work is the offline engine's. Any argument
// equal to such a name counts (an option's value too: the cost is one exec).
bool RunsOfflineWork(int argc, char** argv) {
  static constexpr std::string_view kCommands[] = {"get-historical-features",
                                                   "materialize",
                                                   "materialize-incremental",
                                                   "schedule",
                                                   "serve",
                                                   "serve-offline",
                                                   "stats",
                                                   "datagen"};
  for (int i = 1; i < argc; ++i) {
    for (std::string_view command : kCommands) {
      if (command == argv[i]) return true;
    }
  }
  return false;
}

// Runs this program again with the purge delay set, when that is needed; returns only when it is
// not (or when the exec failed: the command then runs with mimalloc's default).
void KeepFreedMemoryForOfflineWork(int argc, char** argv) {
  if (getenv(kPurgeDelayVariable) != nullptr || !RunsOfflineWork(argc, argv)) return;
  if (setenv(kPurgeDelayVariable, kOfflinePurgeDelayMillis, /*overwrite=*/0) != 0) return;
  execv("/proc/self/exe", argv);
}

}  // namespace

int main(int argc, char** argv) {
  KeepFreedMemoryForOfflineWork(argc, argv);
  // mimalloc asks for transparent huge pages for its arenas: each 2 MiB range it purged and then
  // touches again is faulted back whole and zeroed by the kernel, which was 16 % of a training
  // set's CPU time (bench/pit_join, perf: clear_page_erms under do_huge_pmd_anonymous_page).
  // With 4 KiB pages only the pages touched are zeroed: system time 3.8 -> 2.3 s and peak RSS
  // about 40 MiB lower on that benchmark. mimalloc reads MIMALLOC_ALLOW_THP when the library
  // loads, before main, so the process turns huge pages off itself (what that option does),
  // unless the user set the option.
  if (getenv("MIMALLOC_ALLOW_THP") == nullptr) (void)prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
  // gRPC (the feature server's gRPC port, the Spark Connect client) locks absl::Mutex, and
  // Debian's Abseil is built without NDEBUG, so every lock also updated a graph of lock orders
  // for deadlock detection: 3x the cost of a lock (122 against 41 ns for a nested pair, measured
  // here). Under gRPC load of 1 x 250 feature requests Abseil's share of the server's `perf`
  // samples went from 3.2 % to 1.6 % (the throughput's change, 1-2 %, is inside this machine's
  // noise). Release builds of Abseil have it off; so does Granary.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
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
