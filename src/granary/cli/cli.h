// The `granary` command line: each file registers one group of commands on the CLI11 app.
// Commands print results to stdout, warnings and errors to stderr, and set the exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "granary/common/result.h"
#include "granary/common/status.h"
#include "granary/common/time.h"
#include "granary/registry/repo_config.h"

namespace granary::cli {

// Options shared by every command, and the outcome of the one that ran.
struct Context {
  std::string repo = ".";  // -C / --repo
  int exit_code = 0;

  // Prints "error: ..." to stderr and sets a non-zero exit code.
  void Fail(const Status& status);
  // Loads <repo>/granary.yaml, printing the error on failure.
  bool LoadConfig(RepoConfig* out);
};

void RegisterInitCommand(CLI::App& app, Context& ctx);
void RegisterRepoCommands(CLI::App& app, Context& ctx);         // apply, plan, teardown
void RegisterCatalogCommands(CLI::App& app, Context& ctx);      // list, describe
void RegisterDatagenCommand(CLI::App& app, Context& ctx);       // datagen
void RegisterHistoricalCommand(CLI::App& app, Context& ctx);    // get-historical-features
void RegisterOnlineCommands(CLI::App& app, Context& ctx);       // get-online-features
void RegisterMaterializeCommands(CLI::App& app, Context& ctx);  // materialize(-incremental)
void RegisterStatusCommand(CLI::App& app, Context& ctx);        // status
void RegisterScheduleCommand(CLI::App& app, Context& ctx);      // schedule
void RegisterServeCommand(CLI::App& app, Context& ctx);         // serve
void RegisterServeOfflineCommand(CLI::App& app, Context& ctx);  // serve-offline (Arrow Flight)
void RegisterImportFeastCommand(CLI::App& app, Context& ctx);   // import-feast
void RegisterUiCommand(CLI::App& app, Context& ctx);            // ui
void RegisterStatsCommand(CLI::App& app, Context& ctx);         // stats
void RegisterRegistryCommands(CLI::App& app, Context& ctx);     // registry info/export/import
void RegisterVerifyCommand(CLI::App& app, Context& ctx);        // verify

// When the command line names no known command but has a word where the command goes, prints
// "error: unknown command 'aply', did you mean 'apply'?" and returns CLI11's extras exit code;
// else returns 0 (the parse error is something else).
int ReportUnknownCommand(CLI::App& app);

// "2GiB", "512MiB", "1.5G", "800M", "1000000" (bytes); InvalidArgument naming `option`.
Result<int64_t> ParseByteSize(const std::string& text, std::string_view option);
// Adds --spill-dir to a command that spills. The folder must exist and be writable when the
// command starts: a run that spills after minutes of work would otherwise fail only then.
CLI::Option* AddSpillDirOption(CLI::App* cmd, std::string* spill_dir);
// Removes the spill folders under `spill_dir` (empty: $TMPDIR or /tmp) that runs killed outright
// left behind, naming each on stderr (offline/spill_folder.h: never a live process's). The
// commands that spill call it before they start.
void RemoveStaleSpillFolders(const std::string& spill_dir);
// An ISO 8601 time or "now" (then `now`); InvalidArgument naming `what`.
Result<Timestamp> ParseTimeArgument(const std::string& text, std::string_view what, Timestamp now);

}  // namespace granary::cli
