// stats: what one feature view's offline data looks like over a time range, per feature (count,
// nulls, min/max/mean, distinct estimate, histogram or top values), and the current online values
// of the entities with the newest rows (docs/CONSOLE.md, "Statistics").
#include <fmt/format.h>

#include <cmath>

#include "granary/cli/cli.h"
#include "granary/common/clock.h"
#include "granary/common/json.h"
#include "granary/common/strings.h"
#include "granary/console/console_service.h"
#include "granary/offline/feature_stats.h"
#include "granary/registry/registry_factory.h"
#include "granary/registry/registry_store.h"

namespace granary::cli {
namespace {

struct StatsArgs {
  std::string view;
  std::vector<std::string> features;
  std::string start;
  std::string end;
  int bins = 20;
  int top = 10;
  int sample = 5;
  bool json = false;
};

std::string Number(const std::optional<double>& v) {
  if (!v) return "-";
  if (std::abs(*v) >= 1e15 || (*v != 0 && std::abs(*v) < 1e-4)) return fmt::format("{:.4g}", *v);
  return fmt::format("{:.6g}", *v);
}

// One line per entity of a get-online-features response: its keys, then feature=value (STATUS).
void PrintOnlineSample(const std::string& response, size_t num_keys) {
  auto json = ParseJson(response, {.max_depth = 64, .allow_non_finite = true});
  if (!json.ok()) {
    fmt::print("{}\n", response);
    return;
  }
  const auto* names = JsonMember(*json, "metadata");
  names = names ? JsonMember(*names, "feature_names") : nullptr;
  const auto* results = JsonMember(*json, "results");
  if (names == nullptr || results == nullptr || !results->is_array() || !names->is_array()) return;
  const auto& columns = results->as_array();
  const size_t rows = columns.empty() ? 0 : columns[0].at("values").as_array().size();
  for (size_t r = 0; r < rows; ++r) {
    std::string line = " ";
    for (size_t c = 0; c < columns.size() && c < names->as_array().size(); ++c) {
      const std::string name(JsonStringView(names->as_array()[c].as_string()));
      JsonWriter text;
      text.Value(columns[c].at("values").as_array()[r]);
      const std::string value = text.Release();
      if (c < num_keys) {
        line += fmt::format(" {}={}", name, value);
      } else {
        line += fmt::format(" {}={} ({})", name, value,
                            JsonStringView(columns[c].at("statuses").as_array()[r].as_string()));
      }
    }
    fmt::print("{}\n", line);
  }
}

void PrintHuman(const FeatureStatsReport& r, const std::string& online, const std::string& note) {
  fmt::print("feature view {}: {} rows", r.view, r.rows);
  if (r.first_event) {
    fmt::print(", events {} .. {}", FormatTimestamp(*r.first_event),
               FormatTimestamp(*r.last_event));
  }
  fmt::print(" (range {} .. {}; {} files, {} pruned; {:.2f}s)\n",
             r.start ? FormatTimestamp(*r.start) : "the first row",
             r.end ? FormatTimestamp(*r.end) : "the last row", r.scan.files_total,
             r.scan.files_pruned, static_cast<double>(r.elapsed.micros) / 1e6);
  fmt::print("{:<28} {:<14} {:>10} {:>7} {:>12} {:>12} {:>12} {:>9}\n", "feature", "type", "count",
             "null%", "min", "max", "mean", "distinct");
  for (const FeatureStats& f : r.features) {
    std::string min = f.min_text.empty() ? Number(f.min) : f.min_text;
    std::string max = f.max_text.empty() ? Number(f.max) : f.max_text;
    fmt::print("{:<28} {:<14} {:>10} {:>6.2f}% {:>12} {:>12} {:>12} {:>9}\n", f.name,
               f.type.ToString(), f.count, 100.0 * f.null_rate(), min.substr(0, 12),
               max.substr(0, 12), Number(f.mean), f.distinct_estimate);
    if (!f.top_values.empty()) {
      std::string line;
      for (const ValueCount& v : f.top_values) {
        line += fmt::format("{}{} ({})", line.empty() ? "" : ", ", v.value, v.count);
      }
      fmt::print("  top values: {}{}\n", line, f.top_values_exact ? "" : " (approximate)");
    }
  }
  if (!online.empty()) {
    fmt::print("online sample (the entities with the newest rows; --json for every detail):\n");
    PrintOnlineSample(online, r.join_keys.size());
  } else if (!note.empty()) {
    fmt::print("online sample: none ({})\n", note);
  }
}

Status Run(Context& ctx, const RepoConfig& config, const StatsArgs& args) {
  GRANARY_ASSIGN_OR_RAISE(auto registry, OpenRegistry(config, OpenMode::kOpenExisting));
  GRANARY_ASSIGN_OR_RAISE(auto latest, registry->Latest());
  if (!latest) {
    return Status::FailedPrecondition(fmt::format(
        "registry {} holds no definitions yet: run 'granary apply' first", registry->Describe()));
  }
  auto definitions = std::make_shared<const Definitions>(std::move(latest->definitions));
  const FeatureView* view = definitions->FindFeatureView(args.view);
  if (view == nullptr) {
    std::vector<std::string> names;
    for (const FeatureView& v : definitions->feature_views) names.push_back(v.name);
    return Status::NotFound(
        fmt::format("no feature view '{}'{}; 'granary list feature-views' "
                    "lists them",
                    args.view, DidYouMean(args.view, names)));
  }
  FeatureStatsOptions options;
  const Timestamp now = SystemClock::Default().Now();
  if (!args.start.empty()) {
    GRANARY_ASSIGN_OR_RAISE(options.start, ParseTimeArgument(args.start, "--start", now));
  }
  if (!args.end.empty()) {
    GRANARY_ASSIGN_OR_RAISE(options.end, ParseTimeArgument(args.end, "--end", now));
  }
  for (const std::string& f : args.features) {
    size_t start = 0;
    while (start <= f.size()) {
      size_t comma = f.find(',', start);
      if (comma == std::string::npos) comma = f.size();
      if (comma > start) options.features.push_back(f.substr(start, comma - start));
      start = comma + 1;
    }
  }
  options.histogram_bins = args.bins;
  options.top_values = args.top;
  options.sample_entities = args.sample;
  GRANARY_ASSIGN_OR_RAISE(auto report,
                          ComputeFeatureStats(config.root, *definitions, *view, options));
  std::string online, note;
  if (args.sample > 0) {
    auto sample = ReadOnlineSample(config, definitions, *view, report);
    if (sample.ok()) {
      online = std::move(*sample);
    } else {
      note = sample.status().message();
    }
  }
  if (args.json) {
    fmt::print("{}\n", FeatureStatsJson(report, online, note));
  } else {
    PrintHuman(report, online, note);
  }
  return Status::OK();
}

}  // namespace

void RegisterStatsCommand(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<StatsArgs>();
  CLI::App* cmd = app.add_subcommand(
      "stats",
      "Statistics of a feature view's offline data over a time range (count, nulls, min/max/mean, "
      "distinct, histogram) and an online sample");
  cmd->add_option("view", args->view, "The feature view")->required();
  cmd->add_option("--features", args->features,
                  "Only these features (comma-separated, repeatable); default: all");
  cmd->add_option("--start", args->start,
                  "Rows with an event time at or after this (ISO 8601); default: the first row");
  cmd->add_option("--end", args->end,
                  "Rows with an event time at or before this (ISO 8601 or 'now'); default: the "
                  "last row");
  cmd->add_option("--bins", args->bins, "Histogram bins of numeric features (1 to 1000)");
  cmd->add_option("--top", args->top, "Most frequent values shown of string and bool features");
  cmd->add_option("--sample", args->sample,
                  "Entities whose online values are read (those with the newest rows; 0: none)");
  cmd->add_flag("--json", args->json, "Print the statistics as JSON (docs/CONSOLE.md)");
  cmd->callback([&ctx, args] {
    RepoConfig config;
    if (!ctx.LoadConfig(&config)) return;
    Status st = Run(ctx, config, *args);
    if (!st.ok()) ctx.Fail(st);
  });
}

}  // namespace granary::cli
