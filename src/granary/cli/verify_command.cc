// verify: online equals offline, checked on a sample of entities (materialize/verify.h).
#include <fmt/format.h>

#include "granary/cli/cli.h"
#include "granary/materialize/verify.h"
#include "granary/offline/engine_factory.h"
#include "granary/online/online_store.h"
#include "granary/registry/registry_factory.h"
#include "granary/registry/registry_store.h"

namespace granary::cli {
namespace {

struct Options {
  std::string views;  // comma-separated
  int64_t sample = 100;
  std::string at;
  uint64_t seed = 1;
};

Status RunVerify(Context& ctx, const Options& options) {
  RepoConfig config;
  if (!ctx.LoadConfig(&config)) return Status::OK();
  VerifyOptions verify;
  for (size_t start = 0; start < options.views.size();) {
    size_t comma = options.views.find(',', start);
    if (comma == std::string::npos) comma = options.views.size();
    if (comma > start) verify.views.push_back(options.views.substr(start, comma - start));
    start = comma + 1;
  }
  if (options.sample < 1) {
    return Status::InvalidArgument(
        fmt::format("--sample {}: give at least 1 entity per view", options.sample));
  }
  verify.sample = options.sample;
  verify.seed = options.seed;
  const Timestamp now = SystemClock::Default().Now();
  if (!options.at.empty()) {
    GRANARY_ASSIGN_OR_RAISE(auto at, ParseTimeOrNow(options.at));
    verify.at = at.value_or(now);
  }
  GRANARY_ASSIGN_OR_RAISE(auto registry, OpenRegistry(config, OpenMode::kOpenExisting));
  GRANARY_ASSIGN_OR_RAISE(auto latest, LatestApplied(*registry));
  GRANARY_ASSIGN_OR_RAISE(auto engine, OpenOfflineEngine(config));
  ManualClock clock(now);
  OnlineStoreOptions store_options;
  store_options.read_only = true;  // beside a running server, as get-online-features
  store_options.clock = &clock;
  GRANARY_ASSIGN_OR_RAISE(auto store, OpenOnlineStore(config, store_options));
  GRANARY_ASSIGN_OR_RAISE(VerifyReport report,
                          VerifyOnline(latest.definitions, *engine, *store, clock, *registry,
                                       config.online_store.key_ttl, verify, now));
  fmt::print(
      "verify: online ({}) against offline ({}); floats match within {:g} (float64) and "
      "{:g} (float32), relative\n",
      store->Describe(), engine->Describe(), verify.float64_tolerance, verify.float32_tolerance);
  int64_t values = 0, mismatches = 0;
  for (const ViewVerification& v : report.views) {
    if (!v.skipped.empty()) {
      fmt::print("  {}: skipped: {}\n", v.view, v.skipped);
      continue;
    }
    values += v.values;
    mismatches += v.mismatches;
    fmt::print("  {}: at {} ({}): {} entities, {} values: {} match, {} differ\n", v.view,
               FormatTimestamp(v.at), v.at_reason, v.entities, v.values, v.values - v.mismatches,
               v.mismatches);
    for (const std::string& e : v.examples) fmt::print("      {}\n", e);
  }
  if (!report.ok()) {
    return Status::FailedPrecondition(fmt::format(
        "{} of {} online values differ from their offline values; materialize the views again "
        "(or push the rows to the offline source too) and verify again",
        mismatches, values));
  }
  fmt::print("verify: OK, {} values equal online and offline\n", values);
  return Status::OK();
}

}  // namespace

void RegisterVerifyCommand(CLI::App& app, Context& ctx) {
  auto options = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "verify",
      "Check that online values equal offline point-in-time values, on a sample of entities");
  cmd->add_option("--views", options->views,
                  "Feature views to check, comma-separated (default: every online view)");
  cmd->add_option("--sample", options->sample, "Entities per view, at most")->capture_default_str();
  cmd->add_option("--at", options->at,
                  "The instant to compare at (ISO 8601 or 'now'; default: now for views with "
                  "aggregations, the watermark for plain views)");
  cmd->add_option("--seed", options->seed, "Seed of the sample")->capture_default_str();
  cmd->callback([&ctx, options] {
    Status st = RunVerify(ctx, *options);
    if (!st.ok()) ctx.Fail(st);
  });
}

}  // namespace granary::cli
