// get-online-features: the latest feature values of some entities, as the feature server's JSON.
#include <fmt/format.h>

#include "granary/cli/cli.h"
#include "granary/online/online_store.h"
#include "granary/registry/registry_factory.h"
#include "granary/registry/registry_store.h"
#include "granary/serving/online_features.h"

namespace granary::cli {
namespace {

struct Options {
  std::vector<std::string> features;  // each may hold several, comma-separated
  std::string feature_service;
  std::vector<std::string> entities;  // KEY=V1,V2,...
  bool full_feature_names = false;
};

std::vector<std::string> SplitCommas(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    out.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

Result<OnlineFeaturesRequest> BuildRequest(const Options& o) {
  OnlineFeaturesRequest request;
  for (const std::string& f : o.features) {
    for (std::string& one : SplitCommas(f)) {
      if (!one.empty()) request.features.push_back(std::move(one));
    }
  }
  request.feature_service = o.feature_service;
  request.full_feature_names = o.full_feature_names;
  for (const std::string& e : o.entities) {
    size_t eq = e.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Status::InvalidArgument(fmt::format(
          "--entity {}: write KEY=V1,V2,... such as --entity customer_id=1001,1002", e));
    }
    OnlineFeaturesRequest::EntityColumn column;
    column.name = e.substr(0, eq);
    column.from_text = true;
    for (std::string& v : SplitCommas(e.substr(eq + 1))) column.values.emplace_back(std::move(v));
    request.entities.push_back(std::move(column));
  }
  return request;
}

void RunGetOnlineFeatures(Context& ctx, const Options& options) {
  RepoConfig config;
  if (!ctx.LoadConfig(&config)) return;
  auto request = BuildRequest(options);
  if (!request.ok()) return ctx.Fail(request.status());
  auto registry = OpenRegistry(config, OpenMode::kOpenExisting);
  if (!registry.ok()) return ctx.Fail(registry.status());
  auto latest = LatestApplied(**registry);
  if (!latest.ok()) return ctx.Fail(latest.status());
  auto definitions = std::make_shared<const Definitions>(std::move(latest->definitions));
  // Read-only: beside a running server, which holds the embedded store for writing.
  OnlineStoreOptions store_options;
  store_options.read_only = true;
  auto store = OpenOnlineStore(config, store_options);
  if (!store.ok()) return ctx.Fail(store.status());
  auto service =
      OnlineFeaturesService::Make(definitions, store->get(), config.online_store.key_ttl);
  if (!service.ok()) return ctx.Fail(service.status());
  std::string json;
  Status st = (*service)->GetOnlineFeatures(*request, &json);
  if (!st.ok()) return ctx.Fail(st);
  fmt::print("{}\n", json);
}

}  // namespace

void RegisterOnlineCommands(CLI::App& app, Context& ctx) {
  auto options = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "get-online-features",
      "Print the latest feature values of entities, as the feature server's JSON response");
  auto* features = cmd->add_option("--features", options->features,
                                   "Features as view:feature, comma-separated (repeatable)");
  auto* service = cmd->add_option("--feature-service", options->feature_service,
                                  "A feature service, instead of --features");
  features->excludes(service);
  cmd->add_option("--entity", options->entities,
                  "Entity join key and values: KEY=V1,V2,... (repeatable, one per join key)")
      ->required();
  cmd->add_flag("--full-feature-names", options->full_feature_names,
                "Name features view__feature in the output");
  cmd->callback([&ctx, options, features, service] {
    if (features->count() == 0 && service->count() == 0) {
      return ctx.Fail(
          Status::InvalidArgument("give --features view:feature,... or --feature-service NAME"));
    }
    RunGetOnlineFeatures(ctx, *options);
  });
}

}  // namespace granary::cli
