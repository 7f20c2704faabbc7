// list and describe: what the registry's latest version defines.
#include <fmt/format.h>

#include <algorithm>

#include "granary/cli/cli.h"
#include "granary/common/strings.h"
#include "granary/registry/registry_store.h"
#include "granary/registry/serialize.h"

namespace granary::cli {
namespace {

using Row = std::vector<std::string>;

void PrintTable(const Row& header, const std::vector<Row>& rows) {
  std::vector<size_t> widths(header.size());
  for (size_t i = 0; i < header.size(); ++i) widths[i] = header[i].size();
  for (const Row& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) widths[i] = std::max(widths[i], r[i].size());
  }
  auto print = [&](const Row& r) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(widths[i] - r[i].size() + 2, ' ');
    }
    fmt::print("{}\n", line);
  };
  print(header);
  for (const Row& r : rows) print(r);
}

// The normalized kind: "entities", "data-sources", "feature-views" or "feature-services".
std::optional<std::string> NormalizeKind(std::string kind) {
  std::replace(kind.begin(), kind.end(), '_', '-');
  if (kind == "entity" || kind == "entities") return "entities";
  if (kind == "data-source" || kind == "data-sources") return "data-sources";
  if (kind == "feature-view" || kind == "feature-views") return "feature-views";
  if (kind == "feature-service" || kind == "feature-services") return "feature-services";
  return std::nullopt;
}

Status UnknownKind(const std::string& kind) {
  return Status::InvalidArgument(fmt::format(
      "unknown kind '{}': use entities, data-sources, feature-views or feature-services", kind));
}

bool LoadLatest(Context& ctx, RepoConfig* config, Definitions* defs) {
  if (!ctx.LoadConfig(config)) return false;
  auto store = OpenSqliteRegistry(config->RegistryPath(), OpenMode::kOpenExisting);
  if (!store.ok()) {
    ctx.Fail(store.status());
    return false;
  }
  auto latest = (*store)->Latest();
  if (!latest.ok()) {
    ctx.Fail(latest.status());
    return false;
  }
  if (!latest->has_value()) {
    ctx.Fail(Status::FailedPrecondition(fmt::format(
        "registry {} holds no version yet: run 'granary apply'", config->RegistryPath().string())));
    return false;
  }
  *defs = std::move((*latest)->definitions);
  defs->SortByName();
  return true;
}

void RunList(Context& ctx, const std::string& kind_arg) {
  auto kind = NormalizeKind(kind_arg);
  if (!kind) return ctx.Fail(UnknownKind(kind_arg));
  RepoConfig config;
  Definitions defs;
  if (!LoadLatest(ctx, &config, &defs)) return;
  std::vector<Row> rows;
  if (*kind == "entities") {
    for (const Entity& e : defs.entities) {
      std::vector<std::string> types;
      for (const auto& t : e.join_key_types) types.push_back(t.ToString());
      rows.push_back({e.name, Join(e.join_keys, ","), Join(types, ","), e.description});
    }
    PrintTable({"NAME", "JOIN KEYS", "TYPE", "DESCRIPTION"}, rows);
  } else if (*kind == "data-sources") {
    for (const DataSource& s : defs.data_sources) {
      if (s.is_push()) {
        rows.push_back({s.name, "push", "(batch_source: " + s.batch_source + ")", ""});
        continue;
      }
      rows.push_back(
          {s.name, std::string(SourceFormatName(s.format)), s.Where(), s.timestamp_field});
    }
    PrintTable({"NAME", "FORMAT", "PATH", "TIMESTAMP FIELD"}, rows);
  } else if (*kind == "feature-views") {
    for (const FeatureView& v : defs.feature_views) {
      rows.push_back({v.name, Join(v.entities, ","), v.source,
                      v.ttl.is_zero() ? "none" : FormatDuration(v.ttl), v.online ? "yes" : "no",
                      std::to_string(v.schema.size())});
    }
    PrintTable({"NAME", "ENTITIES", "SOURCE", "TTL", "ONLINE", "FEATURES"}, rows);
  } else {
    for (const FeatureService& s : defs.feature_services) {
      size_t features = 0;
      std::vector<std::string> views;
      for (const auto& p : s.projections) {
        const FeatureView* v = defs.FindFeatureView(p.view);
        features += p.features.empty() && v ? v->schema.size() : p.features.size();
        views.push_back(p.view);
      }
      rows.push_back({s.name, Join(views, ","), std::to_string(features), s.description});
    }
    PrintTable({"NAME", "VIEWS", "FEATURES", "DESCRIPTION"}, rows);
  }
}

void RunDescribe(Context& ctx, const std::string& kind_arg, const std::string& name) {
  auto kind = NormalizeKind(kind_arg);
  if (!kind) return ctx.Fail(UnknownKind(kind_arg));
  RepoConfig config;
  Definitions defs;
  if (!LoadLatest(ctx, &config, &defs)) return;
  auto describe = [&](const auto& items, std::string_view what) {
    std::vector<std::string> names;
    for (const auto& item : items) {
      if (item.name == name) {
        fmt::print("{}\n", ObjectToYaml(FieldsOf(item)));
        return;
      }
      names.push_back(item.name);
    }
    ctx.Fail(Status::NotFound(fmt::format("no {} '{}' in the registry{} (known: {})", what, name,
                                          DidYouMean(name, names),
                                          names.empty() ? "none" : Join(names, ", "))));
  };
  if (*kind == "entities")
    describe(defs.entities, "entity");
  else if (*kind == "data-sources")
    describe(defs.data_sources, "data source");
  else if (*kind == "feature-views")
    describe(defs.feature_views, "feature view");
  else
    describe(defs.feature_services, "feature service");
}

}  // namespace

void RegisterCatalogCommands(CLI::App& app, Context& ctx) {
  auto kind = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  auto* list = app.add_subcommand("list", "List applied objects of one kind");
  list->add_option("kind", *kind, "entities | data-sources | feature-views | feature-services")
      ->required();
  list->callback([&ctx, kind] { RunList(ctx, *kind); });

  auto* describe = app.add_subcommand("describe", "Show one applied object in full (YAML)");
  describe->add_option("kind", *kind, "entity | data-source | feature-view | feature-service")
      ->required();
  describe->add_option("name", *name, "The object's name")->required();
  describe->callback([&ctx, kind, name] { RunDescribe(ctx, *kind, *name); });
}

}  // namespace granary::cli
