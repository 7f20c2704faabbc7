// The `granary` command line: each file registers one group of commands on the CLI11 app.
// Commands print results to stdout, warnings and errors to stderr, and set the exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "granary/common/status.h"
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
void RegisterRepoCommands(CLI::App& app, Context& ctx);     // apply, plan, teardown
void RegisterCatalogCommands(CLI::App& app, Context& ctx);  // list, describe
void RegisterDatagenCommand(CLI::App& app, Context& ctx);   // datagen
void RegisterHistoricalCommand(CLI::App& app, Context& ctx);  // get-historical-features
void RegisterOnlineCommands(CLI::App& app, Context& ctx);   // get-online-features
void RegisterServeCommand(CLI::App& app, Context& ctx);     // serve

}  // namespace granary::cli
