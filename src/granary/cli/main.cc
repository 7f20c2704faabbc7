// granary: the command line of the Granary feature store.
#include <fmt/format.h>

#include "granary/cli/cli.h"

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

}  // namespace granary::cli

int main(int argc, char** argv) {
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
  granary::cli::RegisterOnlineCommands(app, ctx);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return ctx.exit_code;
}
