// POST /materialize-incremental (docs/SERVING.md): a run of incremental materialization on the
// server's open online store, through MaterializationJob. The body is parsed and checked against
// the served definitions on the worker thread; taking the repository lock and starting the run's
// thread happen on the blocking pool; the run itself has a thread of its own, so no HTTP worker
// waits for it. One run at a time per repository, in any process: a second request gets 409.
//
// The answer is 202 at once with what was started, or with "wait": true the run's report when it
// ends (200 when every view succeeded or was up to date; else the failure's code, with the
// report as the body). Feast's field names (end_ts, feature_views) are accepted too; with them
// the answer waits by default, as Feast's server does.
#include <fmt/format.h>

#include <boost/asio/post.hpp>
#include <mutex>

#include "granary/common/json.h"
#include "granary/common/strings.h"
#include "granary/materialize/materialize_metrics.h"
#include "granary/serving/materialize_request.h"
#include "granary/serving/server_log.h"
#include "granary/serving/service.h"

namespace granary {

struct ServerMaterialization {
  RepoConfig config;
  MaterializeOptions options;
  std::unique_ptr<MaterializationStateMetrics> state_metrics;
  std::mutex mu;
  bool stopping = false;                    // guarded by mu
  std::unique_ptr<MaterializationJob> job;  // guarded by mu; the latest run
  std::string job_note;                     // guarded by mu; what the latest run was asked
};

namespace {

constexpr const char* kPath = "/materialize-incremental";

void String(JsonWriter& w, std::string_view s) { w.String(s.data(), s.size()); }

void Time(JsonWriter& w, const std::optional<Timestamp>& t) {
  if (t) {
    String(w, FormatTimestamp(*t));
  } else {
    w.Null();
  }
}

const char* OutcomeName(const Status& status) {
  if (status.ok()) return "succeeded";
  return status.code() == StatusCode::kCancelled ? "cancelled" : "failed";
}

void WriteView(JsonWriter& w, const ViewMaterialization& v) {
  w.StartObject();
  w.Key("view");
  String(w, v.view);
  w.Key("status");
  String(w, v.up_to_date && v.status.ok() ? "up_to_date" : OutcomeName(v.status));
  if (!v.status.ok()) {
    w.Key("error");
    String(w, v.status.message());
  }
  w.Key("start");
  Time(w, v.start);
  w.Key("end");
  Time(w, v.end);
  w.Key("run_id");
  w.Int64(v.run_id);
  w.Key("rows_scanned");
  w.Int64(v.scan.rows_scanned);
  w.Key("rows_in_range");
  w.Int64(v.rows_in_range);
  w.Key("entities");
  w.Int64(v.entities);
  w.Key("entities_written");
  w.Int64(v.entities_written);
  w.Key("entities_skipped");
  w.Int64(v.entities_skipped);
  w.Key("started_over");
  w.Bool(v.started_over);
  w.Key("watermark_before");
  Time(w, v.watermark_before);
  w.Key("watermark_after");
  Time(w, v.watermark_after);
  if (!v.watermark_note.empty()) {
    w.Key("watermark_note");
    String(w, v.watermark_note);
  }
  w.Key("seconds");
  w.Double(v.seconds);
  w.EndObject();
}

std::string ReportJson(const MaterializeRequest& run, const MaterializeReport& report) {
  JsonWriter w;
  w.StartObject();
  w.Key("status");
  String(w, OutcomeName(report.status));
  if (!report.status.ok()) {
    w.Key("error");
    String(w, report.status.message());
  }
  w.Key("end");
  String(w, FormatTimestamp(run.end));
  w.Key("views");
  w.StartArray();
  for (const ViewMaterialization& v : report.views) WriteView(w, v);
  w.EndArray();
  w.EndObject();
  return w.Release();
}

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
  std::string out = OutcomeName(result->status);
  for (const ViewMaterialization& v : result->views) {
    out += fmt::format("; {}: {}, {} entities written, {} skipped", v.view,
                       v.up_to_date && v.status.ok() ? "up to date" : OutcomeName(v.status),
                       v.entities_written, v.entities_skipped);
  }
  if (!result->status.ok()) out += fmt::format(" ({})", result->status.message());
  return out;
}

// On the blocking pool: refuses while a run is in progress, else starts one.
void StartRun(ServingContext& ctx, MaterializeRequest run, bool wait,
              std::shared_ptr<const ServingSnapshot> snapshot, ServiceRespond respond) {
  ServerMaterialization& m = *ctx.materialization;
  auto fail = [&ctx, &respond](Status st) {
    ctx.metrics.CountError(kPath, st);
    respond(ServiceReply::Error(std::move(st)));
  };
  std::unique_lock lock(m.mu);
  if (m.stopping) {
    lock.unlock();
    return fail(Status::Unavailable("the server is stopping; no materialization starts now"));
  }
  if (m.job != nullptr && !m.job->done()) {
    const std::string note = m.job_note;
    lock.unlock();
    return fail(Status::AlreadyExists(fmt::format(
        "a materialization started through this server is running ({}); wait for it to finish "
        "(granary status, or the metric granary_materialize_running)",
        note)));
  }
  m.job.reset();  // the previous run has ended; this joins its thread
  MaterializationJob::OnDone on_done = [&ctx, run, wait,
                                        respond](const Result<MaterializeReport>& result) {
    ServerLog(fmt::format("granary serve: materialize-incremental up to {} {}",
                          FormatTimestamp(run.end), Summary(result)));
    if (!result.ok()) ctx.metrics.CountError(kPath, result.status());
    if (!wait) return;
    if (!result.ok()) return respond(ServiceReply::Error(result.status()));
    ServiceReply reply = ServiceReply::Ok(ReportJson(run, *result));
    reply.status = result->status;  // the failure's code, with the report as the body
    respond(std::move(reply));
  };
  std::string note = fmt::format("up to {}, views {}, started at {}", FormatTimestamp(run.end),
                                 run.views.empty() ? "all online" : Join(run.views, ", "),
                                 FormatTimestamp(ctx.options.clock->Now()));
  // Logged before the start, so it comes before the line of the run's end.
  ServerLog(fmt::format("granary serve: materialize-incremental starting, {}", note));
  auto job = MaterializationJob::Start(m.config, run, m.options, ctx.store, std::move(on_done));
  if (!job.ok()) {
    lock.unlock();
    ServerLog(
        fmt::format("granary serve: materialize-incremental refused: {}", job.status().message()));
    return fail(job.status());  // kAlreadyExists (409): another process holds the lock
  }
  m.job = std::move(*job);
  m.job_note = std::move(note);
  lock.unlock();
  if (!wait) {
    ServiceReply reply = ServiceReply::Ok(StartedJson(run, snapshot->definitions()));
    reply.accepted = true;
    respond(std::move(reply));
  }
}

void HandleMaterialize(ServingContext& ctx, ServiceRequest& request, ServiceRespond respond) {
  auto fail = [&ctx, &respond](Status st) {
    ctx.metrics.CountError(kPath, st);
    respond(ServiceReply::Error(std::move(st)));
  };
  auto body = ParseMaterializeRequest(request.body);
  if (!body.ok()) return fail(body.status());
  std::shared_ptr<const ServingSnapshot> snapshot = ctx.registry->Current();
  if (Status st = CheckMaterializeViews(snapshot->definitions(), *body); !st.ok()) return fail(st);
  const Timestamp now = ctx.options.clock->Now();
  MaterializeRequest run;
  run.kind = MaterializeRequest::Kind::kIncremental;
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
  endpoints->push_back({"POST", kPath, [&context](ServiceRequest& request, ServiceRespond respond) {
                          HandleMaterialize(context, request, std::move(respond));
                        }});
}

void CancelMaterialization(ServingContext& context) {
  if (context.materialization == nullptr) return;
  std::lock_guard lock(context.materialization->mu);
  context.materialization->stopping = true;
  if (context.materialization->job != nullptr) context.materialization->job->Cancel();
}

void JoinMaterialization(ServingContext& context) {
  if (context.materialization == nullptr) return;
  std::unique_ptr<MaterializationJob> job;
  {
    std::lock_guard lock(context.materialization->mu);
    job = std::move(context.materialization->job);
  }
  job.reset();  // cancelled by CancelMaterialization; waits for its thread
}

}  // namespace granary
