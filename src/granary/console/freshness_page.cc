// GET /api/freshness: per online view, what `granary status` tells, its run history and the
// watermark's age over time (the sawtooth the runs draw), against the staleness threshold.
#include <fmt/format.h>

#include <algorithm>

#include "granary/common/json.h"
#include "granary/console/console_service.h"
#include "granary/materialize/interval.h"
#include "granary/materialize/view_status.h"
#include "granary/registry/registry_factory.h"
#include "granary/registry/registry_store.h"

namespace granary {
namespace {

double Seconds(Duration d) { return static_cast<double>(d.micros) / 1e6; }

void TimeOrNull(JsonWriter& w, std::string_view key, const std::optional<Timestamp>& t) {
  w.Key(key);
  if (t) {
    w.String(FormatTimestamp(*t));
  } else {
    w.Null();
  }
}

void SecondsOrNull(JsonWriter& w, std::string_view key, const std::optional<Duration>& d) {
  w.Key(key);
  if (d) {
    w.Double(Seconds(*d));
  } else {
    w.Null();
  }
}

void WriteRun(JsonWriter& w, const MaterializationRun& run, bool interrupted) {
  w.StartObject();
  w.Key("id");
  w.Int64(run.id);
  w.Key("status");
  w.String(interrupted ? "failed" : RunStatusName(run.status));
  w.Key("trigger");
  w.String(run.trigger);
  w.Key("interval_start");
  if (run.interval_start == kUnboundedStart) {
    w.Null();
  } else {
    w.String(FormatTimestamp(run.interval_start));
  }
  w.Key("interval_end");
  w.String(FormatTimestamp(run.interval_end));
  w.Key("started_at");
  w.String(FormatTimestamp(run.started_at));
  TimeOrNull(w, "finished_at", run.finished_at);
  w.Key("duration_seconds");
  if (run.finished_at) {
    w.Double(Seconds(*run.finished_at - run.started_at));
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
  w.String(interrupted && run.error.empty()
               ? "cut off: its process no longer holds the repository lock"
               : run.error);
  w.Key("note");
  w.String(run.note);
  w.EndObject();
}

// The watermark's age (now - watermark) over time, as [time, age seconds] points, oldest first:
// at each succeeded run's end the age drops to that moment minus its interval's end, and grows
// by one second per second until the next; the last point is now.
void WriteAgeSeries(JsonWriter& w, std::vector<MaterializationRun> runs, Timestamp now) {
  std::sort(runs.begin(), runs.end(), [](const auto& a, const auto& b) {
    return a.finished_at.value_or(a.started_at) < b.finished_at.value_or(b.started_at);
  });
  std::optional<Timestamp> watermark;
  auto point = [&w](Timestamp at, Duration age) {
    w.StartArray();
    w.String(FormatTimestamp(at));
    w.Double(Seconds(age));
    w.EndArray();
  };
  w.StartArray();
  for (const MaterializationRun& r : runs) {
    if (r.status != RunStatus::kSucceeded || !r.finished_at) continue;
    if (watermark) point(*r.finished_at, *r.finished_at - *watermark);
    if (!watermark || r.interval_end > *watermark) watermark = r.interval_end;
    point(*r.finished_at, *r.finished_at - *watermark);
  }
  if (watermark) point(now, now - *watermark);
  w.EndArray();
}

}  // namespace

Result<std::string> ConsoleService::FreshnessJson() {
  const RepoConfig& config = options_.repository;
  GRANARY_ASSIGN_OR_RAISE(auto registry, OpenRegistry(config, OpenMode::kOpenExisting));
  GRANARY_ASSIGN_OR_RAISE(auto latest, registry->Latest());
  if (!latest) {
    return Status::FailedPrecondition(fmt::format(
        "registry {} holds no definitions yet: run 'granary apply' in the repository first",
        registry->Describe()));
  }
  const Timestamp now = options_.clock->Now();
  GRANARY_ASSIGN_OR_RAISE(auto statuses,
                          CollectOnlineViewStatus(*registry, latest->definitions, config, now,
                                                  /*recent=*/20));
  JsonWriter w;
  w.StartObject();
  w.Key("now");
  w.String(FormatTimestamp(now));
  w.Key("max_staleness");
  w.String(FormatDuration(options_.max_staleness));
  w.Key("max_staleness_seconds");
  w.Double(Seconds(options_.max_staleness));
  w.Key("registry_version");
  w.Int64(latest->info.version);
  w.Key("views");
  w.StartArray();
  for (const ViewStatus& s : statuses) {
    GRANARY_ASSIGN_OR_RAISE(auto runs, registry->Runs(s.view, options_.runs_per_view));
    const FeatureView* view = latest->definitions.FindFeatureView(s.view);
    w.StartObject();
    w.Key("view");
    w.String(s.view);
    w.Key("source");
    w.String(view != nullptr ? view->source : "");
    w.Key("stale");
    w.Bool(IsStale(s, options_.max_staleness));
    w.Key("failing");
    w.Bool(s.consecutive_failures > 0);
    TimeOrNull(w, "watermark", s.watermark);
    SecondsOrNull(w, "staleness_seconds", s.staleness);
    TimeOrNull(w, "newest_event", s.newest_event);
    SecondsOrNull(w, "data_age_seconds", s.data_age);
    w.Key("layout_changed");
    w.Bool(s.layout_changed);
    w.Key("push_view");
    w.Bool(s.push_view);
    w.Key("last_push");
    if (s.push) {
      w.StartObject();
      w.Key("at");
      w.String(FormatTimestamp(s.push->last_push_at));
      w.Key("age_seconds");
      w.Double(Seconds(now - s.push->last_push_at));
      w.Key("rows");
      w.Int64(s.push->rows);
      w.EndObject();
    } else {
      w.Null();
    }
    w.Key("running");
    w.Bool(s.running);
    w.Key("recent_runs");
    w.Int(s.recent_runs);
    w.Key("recent_succeeded");
    w.Int(s.recent_succeeded);
    w.Key("consecutive_failures");
    w.Int(s.consecutive_failures);
    TimeOrNull(w, "last_success",
               s.last_success ? s.last_success->finished_at : std::optional<Timestamp>());
    w.Key("runs");
    w.StartArray();
    for (const MaterializationRun& r : runs) {
      // The status's last run says whether a run marked running was cut off.
      const bool interrupted = r.status == RunStatus::kRunning && s.last_run &&
                               s.last_run->id == r.id && s.last_run->status == RunStatus::kFailed;
      WriteRun(w, r, interrupted);
    }
    w.EndArray();
    w.Key("age_series");
    WriteAgeSeries(w, runs, now);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return w.Release();
}

}  // namespace granary
