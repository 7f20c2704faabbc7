// status: per online view, its watermark, the age of its newest data online, last run and success
// rate; with --max-staleness, exit 2 naming the stale views, with --max-failures, exit 3 naming
// the views failing in a row (for cron, a monitor or a readiness check; docs/OPERATIONS.md).
#include <fmt/format.h>

#include <chrono>
#include <map>

#include "granary/cli/cli.h"
#include "granary/common/clock.h"
#include "granary/common/json.h"
#include "granary/common/progress.h"
#include "granary/materialize/interval.h"
#include "granary/materialize/online_check.h"
#include "granary/materialize/view_status.h"
#include "granary/online/view_layout.h"
#include "granary/registry/registry_factory.h"
#include "granary/registry/registry_store.h"

namespace granary::cli {
namespace {

// Exit codes when an alert fires: distinct from 1 (the command itself failed). Stale views win
// when both fire; stderr names every view either way.
constexpr int kStaleExitCode = 2;
constexpr int kFailingExitCode = 3;

struct StatusArgs {
  std::string max_staleness;
  int max_failures = -1;  // -1: no alert
  bool json = false;
  int runs = 10;
};

// A duration with the precision it has: "35ms", "0.6s", "42s", "12m05s", "3h07m", "331d04h".
std::string HumanAge(Duration d) {
  if (d.micros < 0) return "0s";
  const double seconds = static_cast<double>(d.micros) / 1e6;
  if (seconds < 0.1) return fmt::format("{}ms", d.micros / 1000);
  if (seconds < 10) return fmt::format("{:.1f}s", seconds);
  const int64_t s = d.micros / 1'000'000;
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  if (s < 48 * 3600) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  return fmt::format("{}d{:02}h", s / 86400, (s % 86400) / 3600);
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
  if (!run.note.empty()) line += fmt::format("; {}", run.note);
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
  w.Key("note");
  w.String(run.note.c_str());
  w.Key("newest_event");
  if (run.newest_event) {
    w.String(FormatTimestamp(*run.newest_event).c_str());
  } else {
    w.Null();
  }
  w.EndObject();
}

std::string StaleReason(const ViewStatus& s, const ViewDataCheck* check, Duration max_staleness) {
  if (check != nullptr && check->state == ViewDataCheck::State::kLost) {
    return fmt::format("{} ({}; materialize-incremental reloads it)", s.view, check->reason);
  }
  if (s.layout_changed) {
    return fmt::format("{} (its schema changed since the last run; materialize it again)", s.view);
  }
  if (!s.watermark && s.push) {
    return fmt::format("{} (last push {}, {} old > {})", s.view,
                       FormatTimestamp(s.push->last_push_at), HumanAge(*s.staleness),
                       FormatDuration(max_staleness));
  }
  if (!s.watermark) {
    return fmt::format("{} (never materialized{})", s.view, s.push_view ? " nor pushed" : "");
  }
  return fmt::format("{} (watermark {}, {} old > {})", s.view, FormatTimestamp(*s.watermark),
                     HumanAge(*s.staleness), FormatDuration(max_staleness));
}

std::string FailingReason(const ViewStatus& s) {
  std::string reason = fmt::format("{} ({} failed run{} in a row", s.view, s.consecutive_failures,
                                   s.consecutive_failures == 1 ? "" : "s");
  if (s.last_finished && !s.last_finished->error.empty()) {
    reason += fmt::format(", the last: {}", s.last_finished->error);
  }
  return reason + ")";
}

Status Run(Context& ctx, const RepoConfig& config, const StatusArgs& args) {
  std::optional<Duration> max_staleness;
  if (!args.max_staleness.empty()) {
    auto d = ParseDuration(args.max_staleness);
    if (!d.ok()) return d.status().WithContext("--max-staleness");
    max_staleness = *d;
  }
  if (args.runs < 1) return Status::InvalidArgument("--runs must be at least 1");
  if (args.max_failures < -1) {
    return Status::InvalidArgument(
        "--max-failures must be 0 or more (0: alert on any failed newest run)");
  }
  GRANARY_ASSIGN_OR_RAISE(auto registry, OpenRegistry(config, OpenMode::kOpenExisting));
  GRANARY_ASSIGN_OR_RAISE(RegistryVersion latest, LatestApplied(*registry));
  const Timestamp now = SystemClock::Default().Now();
  GRANARY_ASSIGN_OR_RAISE(auto statuses, CollectOnlineViewStatus(*registry, latest.definitions,
                                                                 config, now, args.runs));
  // What the online store still holds (online_check.h). A store that cannot be opened here (the
  // embedded store held by a server, Redis down) leaves the views unchecked, saying why.
  std::map<std::string, ViewDataCheck> checks;
  std::string store_note;
  {
    OnlineStoreOptions store_options;
    store_options.connect_timeout = Duration::Seconds(1);
    // Read-only: the embedded store opens beside a server that holds it (a RocksDB secondary).
    store_options.read_only = true;
    auto store = OpenOnlineStore(config, store_options);
    if (!store.ok()) {
      store_note = store.status().message();
    } else {
      GRANARY_ASSIGN_OR_RAISE(auto found,
                              CheckOnlineData(*registry, latest.definitions, config, **store));
      for (ViewDataCheck& c : found) checks[c.view] = std::move(c);
    }
  }
  auto check_of = [&](const ViewStatus& s) -> const ViewDataCheck* {
    auto it = checks.find(s.view);
    return it == checks.end() ? nullptr : &it->second;
  };
  auto is_lost = [&](const ViewStatus& s) {
    const ViewDataCheck* c = check_of(s);
    return c != nullptr && c->state == ViewDataCheck::State::kLost;
  };
  // A view whose online data is lost is as stale as one never materialized.
  auto is_stale = [&](const ViewStatus& s) {
    return max_staleness && (IsStale(s, *max_staleness) || is_lost(s));
  };
  std::vector<std::string> stale;
  for (const ViewStatus& s : statuses) {
    if (is_stale(s)) stale.push_back(StaleReason(s, check_of(s), *max_staleness));
  }
  std::vector<std::string> failing;
  auto is_failing = [&](const ViewStatus& s) {
    return args.max_failures >= 0 && IsFailing(s, args.max_failures);
  };
  for (const ViewStatus& s : statuses) {
    if (is_failing(s)) failing.push_back(FailingReason(s));
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
      if (is_stale(s)) w.String(s.view.c_str());
    }
    w.EndArray();
    w.Key("max_failures");
    if (args.max_failures >= 0) {
      w.Int(args.max_failures);
    } else {
      w.Null();
    }
    w.Key("failing");
    w.StartArray();
    for (const ViewStatus& s : statuses) {
      if (is_failing(s)) w.String(s.view.c_str());
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
      w.Key("newest_event");
      if (s.newest_event) {
        w.String(FormatTimestamp(*s.newest_event).c_str());
      } else {
        w.Null();
      }
      w.Key("data_age_seconds");
      if (s.data_age) {
        w.Double(static_cast<double>(s.data_age->micros) / 1e6);
      } else {
        w.Null();
      }
      w.Key("push_view");
      w.Bool(s.push_view);
      w.Key("last_push_at");
      if (s.push) {
        w.String(FormatTimestamp(s.push->last_push_at).c_str());
      } else {
        w.Null();
      }
      w.Key("rows_pushed");
      w.Int64(s.push ? s.push->rows : 0);
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
      w.Key("consecutive_failures");
      w.Int(s.consecutive_failures);
      w.Key("online_data");
      w.StartObject();
      const ViewDataCheck* check = check_of(s);
      w.Key("state");
      w.String(
          std::string(ViewDataStateName(check ? check->state : ViewDataCheck::State::kNotChecked))
              .c_str());
      w.Key("reason");
      w.String(check ? check->reason.c_str() : store_note.c_str());
      w.Key("lost_shards");
      w.StartArray();
      if (check) {
        for (const std::string& shard : check->lost_shards) w.String(shard.c_str());
      }
      w.EndArray();
      w.EndObject();
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
        if (s.newest_event) {
          head += fmt::format(", newest data {} ({} old)", FormatTimestamp(*s.newest_event),
                              HumanAge(*s.data_age));
        } else {
          head += ", age of the newest data unknown (kept from the next run that writes rows)";
        }
      } else if (s.layout_changed) {
        head += fmt::format(
            "schema or online store changed since the watermark {}: stale until the next run",
            FormatTimestamp(*s.stale_watermark));
      } else if (s.push) {
        head += "pushed, not materialized";
      } else {
        head += s.push_view ? "never materialized nor pushed" : "never materialized";
      }
      if (s.push) {
        head += fmt::format("; last push {} ({} ago), {} rows pushed",
                            FormatTimestamp(s.push->last_push_at),
                            HumanAge(now - s.push->last_push_at), s.push->rows);
      }
      if (s.recent_runs > 0) {
        head +=
            fmt::format("; {} of the last {} runs succeeded", s.recent_succeeded, s.recent_runs);
      }
      if (s.consecutive_failures > 0) {
        head += fmt::format("; {} failed in a row", s.consecutive_failures);
      }
      if (s.running) head += "; running now";
      fmt::print("{}\n", head);
      if (is_lost(s)) {
        fmt::print("  ONLINE DATA LOST: {}; the next materialize-incremental reloads it\n",
                   check_of(s)->reason);
      }
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
  if (!args.json && !store_note.empty()) {
    fmt::print("online data not checked: {}\n", store_note);
  }
  if (!stale.empty()) {
    fmt::print(stderr, "stale (older than {}): {}\n", FormatDuration(*max_staleness),
               fmt::join(stale, "; "));
    ctx.exit_code = kStaleExitCode;
  }
  if (!failing.empty()) {
    fmt::print(stderr, "failing (more than {} failed run{} in a row): {}\n", args.max_failures,
               args.max_failures == 1 ? "" : "s", fmt::join(failing, "; "));
    if (ctx.exit_code == 0) ctx.exit_code = kFailingExitCode;
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
  cmd->add_option("--max-failures", args->max_failures,
                  "Exit with code 3, naming them, when views' newest runs failed more than this "
                  "many times in a row (0: any failed newest run)");
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
