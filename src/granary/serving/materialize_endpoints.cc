// POST /materialize-incremental and POST /materialize (docs/SERVING.md): a run of incremental
// materialization, or of an interval's ("start" and "end"), on the server's open online store,
// through MaterializationJob. The body is parsed and checked against
// the served definitions on the worker thread; taking the repository lock and starting the run's
// thread happen on the blocking pool; the run itself has a thread of its own, so no HTTP worker
// waits for it. One run at a time per repository, in any process: a second request gets 409.
//
// The answer is 202 at once with what was started, or with "wait": true the run's report when it
// ends (200 when every view succeeded or was up to date; else the failure's code, with the
// report as the body). Feast's field names (start_ts, end_ts, feature_views) are accepted too;
// with them the answer waits by default, as Feast's server does. The CLI and the SDK hand their
// runs to these endpoints while the server holds the embedded store (materialize_handoff.h).
#include <fmt/format.h>

#include <boost/asio/post.hpp>

#include "granary/common/json.h"
#include "granary/common/mutex.h"
#include "granary/common/strings.h"
#include "granary/materialize/materialize_metrics.h"
#include "granary/serving/materialize_report.h"
#include "granary/serving/materialize_request.h"
#include "granary/serving/server_log.h"
#include "granary/serving/service.h"

namespace granary {

struct ServerMaterialization {
  RepoConfig config;
  MaterializeOptions options;
  std::unique_ptr<MaterializationStateMetrics> state_metrics;
  Mutex mu;
  bool stopping GUARDED_BY(mu) = false;
  std::unique_ptr<MaterializationJob> job GUARDED_BY(mu);  // the latest run
  std::string job_note GUARDED_BY(mu);                     // what the latest run was asked
};

namespace {

constexpr const char* kIncrementalPath = "/materialize-incremental";
constexpr const char* kIntervalPath = "/materialize";

const char* PathOf(MaterializeRequest::Kind kind) {
  return kind == MaterializeRequest::Kind::kIncremental ? kIncrementalPath : kIntervalPath;
}

void String(JsonWriter& w, std::string_view s) { w.String(s.data(), s.size()); }

// The 202 answer: what was started.
std::string StartedJson(const MaterializeRequest& run, const Definitions& defs) {
  JsonWriter w;
  w.StartObject();
  w.Key("status");
  String(w, "started");
  w.Key("end");
  String(w, FormatTimestamp(run.end));
  w.Key("views");
  w.StartArray();
  if (run.views.empty()) {
    for (const FeatureView& v : defs.feature_views) {
      if (v.online) String(w, v.name);
    }
  } else {
    for (const std::string& v : run.views) String(w, v);
  }
  w.EndArray();
  w.EndObject();
  return w.Release();
}

std::string Summary(const Result<MaterializeReport>& result) {
  if (!result.ok()) return fmt::format("failed: {}", result.status().message());
  std::string out = MaterializeOutcomeName(result->status);
  for (const ViewMaterialization& v : result->views) {
    out +=
        fmt::format("; {}: {}, {} entities written, {} skipped", v.view,
                    v.up_to_date && v.status.ok() ? "up to date" : MaterializeOutcomeName(v.status),
                    v.entities_written, v.entities_skipped);
  }
  if (!result->status.ok()) out += fmt::format(" ({})", result->status.message());
  return out;
}

// On the blocking pool: refuses while a run is in progress, else starts one.
void StartRun(ServingContext& ctx, MaterializeRequest run, bool wait,
              std::shared_ptr<const ServingSnapshot> snapshot, ServiceRespond respond) {
  ServerMaterialization& m = *ctx.materialization;
  const char* path = PathOf(run.kind);
  auto fail = [&ctx, &respond, path](Status st) {
    ctx.metrics.CountError(path, st);
    respond(ServiceReply::Error(std::move(st)));
  };
  MutexLock lock(&m.mu);
  if (m.stopping) {
    lock.Unlock();
    return fail(Status::Unavailable("the server is stopping; no materialization starts now"));
  }
  if (m.job != nullptr && !m.job->done()) {
    const std::string note = m.job_note;
    lock.Unlock();
    return fail(Status::AlreadyExists(fmt::format(
        "a materialization started through this server is running ({}); wait for it to finish "
        "(granary status, or the metric granary_materialize_running)",
        note)));
  }
  m.job.reset();  // the previous run has ended; this joins its thread
  MaterializationJob::OnDone on_done = [&ctx, run, wait, path,
                                        respond](const Result<MaterializeReport>& result) {
    ServerLog(fmt::format("granary serve: {} up to {} {}", path + 1, FormatTimestamp(run.end),
                          Summary(result)));
    if (!result.ok()) ctx.metrics.CountError(path, result.status());
    // The run may have reloaded lost views: /health checks again rather than say "degraded"
    // for up to health_check_max_age after the data is back.
    InvalidateOnlineDataHealth(ctx);
    if (!wait) return;
    if (!result.ok()) return respond(ServiceReply::Error(result.status()));
    ServiceReply reply = ServiceReply::Ok(MaterializeReportJson(run, *result));
    reply.status = result->status;  // the failure's code, with the report as the body
    respond(std::move(reply));
  };
  std::string note = fmt::format(
      "{}up to {}, views {}, started at {}",
      run.kind == MaterializeRequest::Kind::kInterval ? "from " + FormatTimestamp(run.start) + " "
                                                      : std::string(),
      FormatTimestamp(run.end), run.views.empty() ? "all online" : Join(run.views, ", "),
      FormatTimestamp(ctx.options.clock->Now()));
  // Logged before the start, so it comes before the line of the run's end.
  ServerLog(fmt::format("granary serve: {} starting, {}", path + 1, note));
  auto job = MaterializationJob::Start(m.config, run, m.options, ctx.store, std::move(on_done));
  if (!job.ok()) {
    lock.Unlock();
    ServerLog(fmt::format("granary serve: {} refused: {}", path + 1, job.status().message()));
    return fail(job.status());  // kAlreadyExists (409): another process holds the lock
  }
  m.job = std::move(*job);
  m.job_note = std::move(note);
  lock.Unlock();
  if (!wait) {
    ServiceReply reply = ServiceReply::Ok(StartedJson(run, snapshot->definitions()));
    reply.accepted = true;
    respond(std::move(reply));
  }
}

void HandleMaterialize(ServingContext& ctx, MaterializeRequest::Kind kind, ServiceRequest& request,
                       ServiceRespond respond) {
  const char* path = PathOf(kind);
  auto fail = [&ctx, &respond, path](Status st) {
    ctx.metrics.CountError(path, st);
    respond(ServiceReply::Error(std::move(st)));
  };
  auto body = ParseMaterializeRequest(request.body);
  if (!body.ok()) return fail(body.status());
  std::shared_ptr<const ServingSnapshot> snapshot = ctx.registry->Current();
  if (Status st = CheckMaterializeViews(snapshot->definitions(), *body); !st.ok()) return fail(st);
  const Timestamp now = ctx.options.clock->Now();
  MaterializeRequest run;
  run.kind = kind;
  if (kind == MaterializeRequest::Kind::kIncremental && body->start) {
    return fail(Status::InvalidArgument(
        "start: an incremental run starts at each view's watermark; leave start out, or POST "
        "/materialize for an interval"));
  }
  if (kind == MaterializeRequest::Kind::kInterval) {
    if (!body->start) {
      return fail(Status::InvalidArgument(
          "start: missing; POST /materialize writes the interval [start, end], as in "
          "{\"start\": \"2026-11-01T00:00:00Z\", \"end\": \"2026-11-25T10:00:00Z\"} (or POST "
          "/materialize-incremental from each view's watermark)"));
    }
    run.start = *body->start;
  }
  run.end = body->end.value_or(now);
  run.views = std::move(body->views);
  run.trigger = "server";
  if (run.end > now) {
    return fail(Status::InvalidArgument(fmt::format(
        "end: {} is in the future (now is {}): it would become the watermark, and later runs would "
        "never read rows that arrive with earlier times; use a time at or before now, or leave it "
        "out",
        FormatTimestamp(run.end), FormatTimestamp(now))));
  }
  boost::asio::post(*ctx.blocking,
                    [&ctx, run = std::move(run), wait = body->wait, snapshot = std::move(snapshot),
                     respond = std::move(respond)]() mutable {
                      StartRun(ctx, std::move(run), wait, std::move(snapshot), std::move(respond));
                    });
}

}  // namespace

void RegisterMaterializeEndpoints(ServingContext& context, std::vector<Endpoint>* endpoints) {
  if (!context.options.repository) return;
  auto m = std::make_shared<ServerMaterialization>();
  m->config = *context.options.repository;
  m->options = context.options.materialize;
  m->options.clock = context.options.clock;
  m->options.metrics = context.options.metrics;
  m->state_metrics = MaterializationStateMetrics::Register(context.options.metrics, m->config,
                                                           context.options.clock, context.store);
  context.materialization = std::move(m);
  for (MaterializeRequest::Kind kind :
       {MaterializeRequest::Kind::kIncremental, MaterializeRequest::Kind::kInterval}) {
    endpoints->push_back(
        {"POST", PathOf(kind), [&context, kind](ServiceRequest& request, ServiceRespond respond) {
           HandleMaterialize(context, kind, request, std::move(respond));
         }});
  }
}

void CancelMaterialization(ServingContext& context) {
  if (context.materialization == nullptr) return;
  MutexLock lock(&context.materialization->mu);
  context.materialization->stopping = true;
  if (context.materialization->job != nullptr) context.materialization->job->Cancel();
}

void JoinMaterialization(ServingContext& context) {
  if (context.materialization == nullptr) return;
  std::unique_ptr<MaterializationJob> job;
  {
    MutexLock lock(&context.materialization->mu);
    job = std::move(context.materialization->job);
  }
  job.reset();  // cancelled by CancelMaterialization; waits for its thread
}

}  // namespace granary
