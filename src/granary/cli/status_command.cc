// status: per online view, its watermark, staleness, last run and success rate; with
// --max-staleness, exit 2 naming the stale views (for cron, a monitor or a readiness check).
#include <fmt/format.h>

#include <chrono>

#include "granary/cli/cli.h"
#include "granary/common/clock.h"
#include "granary/common/json.h"
#include "granary/common/progress.h"
#include "granary/materialize/interval.h"
#include "granary/materialize/view_status.h"
#include "granary/online/view_layout.h"
#include "granary/registry/registry_store.h"

namespace granary::cli {
namespace {

// Exit code when views are stale: distinct from 1 (the command itself failed).
constexpr int kStaleExitCode = 2;

struct StatusArgs {
  std::string max_staleness;
  bool json = false;
  int runs = 10;
};

std::string HumanAge(Duration d) {
  if (d.micros < 0) return "0s";
  const auto seconds = std::chrono::seconds(d.micros / 1'000'000);
  return Progress::HumanDuration(seconds);
}

std::string RunLine(const MaterializationRun& run) {
  std::string line =
      fmt::format("#{} {} by {}, {} .. {}", run.id, RunStatusName(run.status), run.trigger,
                  FormatIntervalStart(run.interval_start), FormatTimestamp(run.interval_end));
  if (run.finished_at) {
    line += fmt::format(", finished {} ({})", FormatTimestamp(*run.finished_at),
                        HumanAge(*run.finished_at - run.started_at));
  } else {
    line += fmt::format(", started {}", FormatTimestamp(run.started_at));
  }
  line += fmt::format(", {} rows read, {} entities written", run.rows_read, run.entities_written);
  return line;
}

void WriteRun(JsonWriter& w, const MaterializationRun& run) {
  w.StartObject();
  w.Key("id");
  w.Int64(run.id);
  w.Key("status");
  w.String(std::string(RunStatusName(run.status)).c_str());
  w.Key("trigger");
  w.String(run.trigger.c_str());
  w.Key("interval_start");
  if (run.interval_start == kUnboundedStart) {
    w.Null();
  } else {
    w.String(FormatTimestamp(run.interval_start).c_str());
  }
  w.Key("interval_end");
  w.String(FormatTimestamp(run.interval_end).c_str());
  w.Key("started_at");
  w.String(FormatTimestamp(run.started_at).c_str());
  w.Key("finished_at");
  if (run.finished_at) {
    w.String(FormatTimestamp(*run.finished_at).c_str());
  } else {
    w.Null();
  }
  w.Key("rows_read");
  w.Int64(run.rows_read);
  w.Key("entities_written");
  w.Int64(run.entities_written);
  w.Key("entities_skipped");
  w.Int64(run.entities_skipped);
  w.Key("error");
  w.String(run.error.c_str());
  w.Key("pid");
  w.Int64(run.pid);
  w.Key("host");
  w.String(run.host.c_str());
  w.EndObject();
}

std::string StaleReason(const ViewStatus& s, Duration max_staleness) {
  if (s.layout_changed) {
    return fmt::format("{} (its schema changed since the last run; materialize it again)", s.view);
  }
  if (!s.watermark) return fmt::format("{} (never materialized)", s.view);
  return fmt::format("{} (watermark {}, {} old > {})", s.view, FormatTimestamp(*s.watermark),
                     HumanAge(*s.staleness), FormatDuration(max_staleness));
}

Status Run(Context& ctx, const RepoConfig& config, const StatusArgs& args) {
  std::optional<Duration> max_staleness;
  if (!args.max_staleness.empty()) {
    auto d = ParseDuration(args.max_staleness);
    if (!d.ok()) return d.status().WithContext("--max-staleness");
    max_staleness = *d;
  }
  if (args.runs < 1) return Status::InvalidArgument("--runs must be at least 1");
  GRANARY_ASSIGN_OR_RAISE(auto registry,
                          OpenSqliteRegistry(config.RegistryPath(), OpenMode::kOpenExisting));
  GRANARY_ASSIGN_OR_RAISE(auto latest, registry->Latest());
  if (!latest) {
    return Status::FailedPrecondition(fmt::format(
        "registry {} holds no definitions yet: run 'granary apply' first", registry->Describe()));
  }
  const Timestamp now = SystemClock::Default().Now();
  GRANARY_ASSIGN_OR_RAISE(
      auto statuses,
      CollectOnlineViewStatus(*registry, latest->definitions, config.online_store, now, args.runs));
  std::vector<std::string> stale;
  if (max_staleness) {
    for (const ViewStatus& s : statuses) {
      if (IsStale(s, *max_staleness)) stale.push_back(StaleReason(s, *max_staleness));
    }
  }

  if (args.json) {
    JsonWriter w;
    w.StartObject();
    w.Key("project");
    w.String(config.project.c_str());
    w.Key("now");
    w.String(FormatTimestamp(now).c_str());
    w.Key("max_staleness_seconds");
    if (max_staleness) {
      w.Double(static_cast<double>(max_staleness->micros) / 1e6);
    } else {
      w.Null();
    }
    w.Key("stale");
    w.StartArray();
    for (const ViewStatus& s : statuses) {
      if (max_staleness && IsStale(s, *max_staleness)) w.String(s.view.c_str());
    }
    w.EndArray();
    w.Key("views");
    w.StartArray();
    for (const ViewStatus& s : statuses) {
      w.StartObject();
      w.Key("view");
      w.String(s.view.c_str());
      w.Key("watermark");
      if (s.watermark) {
        w.String(FormatTimestamp(*s.watermark).c_str());
      } else {
        w.Null();
      }
      w.Key("staleness_seconds");
      if (s.staleness) {
        w.Double(static_cast<double>(s.staleness->micros) / 1e6);
      } else {
        w.Null();
      }
      w.Key("schema_changed");
      w.Bool(s.layout_changed);
      w.Key("running");
      w.Bool(s.running);
      w.Key("last_run");
      if (s.last_run) {
        WriteRun(w, *s.last_run);
      } else {
        w.Null();
      }
      w.Key("last_success_at");
      if (s.last_success && s.last_success->finished_at) {
        w.String(FormatTimestamp(*s.last_success->finished_at).c_str());
      } else {
        w.Null();
      }
      w.Key("recent_runs");
      w.Int(s.recent_runs);
      w.Key("recent_succeeded");
      w.Int(s.recent_succeeded);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    fmt::print("{}\n", w.str());
  } else {
    fmt::print("Project {} at {} (registry {})\n", config.project, FormatTimestamp(now),
               registry->Describe());
    for (const ViewStatus& s : statuses) {
      std::string head = fmt::format("{}: ", s.view);
      if (s.watermark) {
        head += fmt::format("watermark {} ({} ago)", FormatTimestamp(*s.watermark),
                            HumanAge(*s.staleness));
      } else if (s.layout_changed) {
        head += fmt::format(
            "schema or online store changed since the watermark {}: stale until the next run",
            FormatTimestamp(*s.stale_watermark));
      } else {
        head += "never materialized";
      }
      if (s.recent_runs > 0) {
        head +=
            fmt::format("; {} of the last {} runs succeeded", s.recent_succeeded, s.recent_runs);
      }
      if (s.running) head += "; running now";
      fmt::print("{}\n", head);
      if (s.last_run) {
        fmt::print("  last run {}\n", RunLine(*s.last_run));
        if (s.last_run->status == RunStatus::kFailed) {
          fmt::print("  error: {}\n", s.last_run->error);
          if (s.last_success && s.last_success->finished_at) {
            fmt::print("  last success: #{} finished {}\n", s.last_success->id,
                       FormatTimestamp(*s.last_success->finished_at));
          }
        }
      }
    }
  }
  if (!stale.empty()) {
    fmt::print(stderr, "stale (older than {}): {}\n", FormatDuration(*max_staleness),
               fmt::join(stale, "; "));
    ctx.exit_code = kStaleExitCode;
  }
  return Status::OK();
}

}  // namespace

void RegisterStatusCommand(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<StatusArgs>();
  CLI::App* cmd = app.add_subcommand(
      "status", "Show each online view's watermark, staleness, last run and success rate");
  cmd->add_option("--max-staleness", args->max_staleness,
                  "Exit with code 2, naming them, when views are older than this (e.g. 26h)");
  cmd->add_flag("--json", args->json, "Print JSON for machines");
  cmd->add_option("--runs", args->runs, "How many recent runs the success rate covers")
      ->capture_default_str();
  cmd->callback([&ctx, args] {
    RepoConfig config;
    if (!ctx.LoadConfig(&config)) return;
    Status st = Run(ctx, config, *args);
    if (!st.ok()) ctx.Fail(st);
  });
}

}  // namespace granary::cli
