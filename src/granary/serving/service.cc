#include "granary/serving/service.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/post.hpp>

#include "granary/common/threads.h"
#include "granary/offline/engine_factory.h"
#include "granary/online/entity_key.h"

namespace granary {
namespace {

// A view no definitions can have (its name has a double underscore, which names may not), read by
// the health check.
Result<OnlineReadRequest> HealthProbe(Duration key_ttl) {
  Definitions defs;
  Entity entity;
  entity.name = "granary__health";
  entity.join_keys = {"granary__health_key"};
  entity.join_key_types = {ValueType::Scalar(ScalarType::kString)};
  defs.entities.push_back(entity);
  FeatureView view;
  view.name = "granary__health";
  view.entities = {entity.name};
  view.schema.push_back(Field{"probe", ValueType::Scalar(ScalarType::kInt64), "", {}});
  GRANARY_ASSIGN_OR_RAISE(auto layout, ViewLayout::Make(defs, view, key_ttl));
  auto keys = std::make_shared<EntityKeyColumn>();
  GRANARY_RETURN_NOT_OK(entity_key::AppendValue(keys->buffer(), Value("probe")));
  keys->FinishKey();
  OnlineReadRequest read;
  read.views.push_back(ViewRead{layout, {0}, keys});
  return read;
}

}  // namespace

void ServingMetrics::CountError(std::string_view path, const Status& status) const {
  std::string kind(StatusCodeName(status.code()));
  for (char& c : kind) {
    if (c == ' ') c = '_';
  }
  registry
      ->GetCounter("granary_serving_errors_total",
                   "Requests answered with an error, by endpoint and kind (invalid_argument: the "
                   "caller's mistake; unavailable: the online store is down).",
                   {{"path", std::string(path)}, {"kind", kind}})
      .Increment();
}

int DefaultSplitThreads(int workers, int cores) {
  return 1 + std::clamp(cores - workers, 0, std::max(workers, 0));
}

Result<std::unique_ptr<FeatureServer>> FeatureServer::Make(FeatureServerOptions options,
                                                           OnlineStore* store) {
  std::unique_ptr<FeatureServer> server(new FeatureServer());
  ServingContext& ctx = server->context_;
  ctx.options = std::move(options);
  ctx.store = store;
  MetricsRegistry& m = *ctx.options.metrics;
  ctx.metrics.registry = &m;
  ctx.metrics.store_read_seconds = &m.GetHistogram(
      "granary_online_store_read_seconds",
      "Online store read time of get-online-features requests (from the read's start to its "
      "completion on the worker).",
      LatencyBuckets(), {{"store", ctx.options.store_kind}});
  ctx.metrics.entities_per_request = &m.GetHistogram(
      "granary_serving_entities_per_request", "Entity rows per get-online-features request.",
      CountBuckets(static_cast<double>(std::max<size_t>(ctx.options.max_entities, 1))));
  ctx.metrics.push_rows = &m.GetCounter("granary_push_rows_total", "Rows received by /push.");

  RegistryWatcherOptions watch;
  watch.registry = ctx.options.registry;
  watch.store = store;
  watch.default_key_ttl = ctx.options.default_key_ttl;
  watch.poll_interval = ctx.options.registry_poll_interval;
  watch.metrics = &m;
  GRANARY_ASSIGN_OR_RAISE(ctx.registry, RegistryWatcher::Start(std::move(watch)));
  GRANARY_ASSIGN_OR_RAISE(ctx.health_probe, HealthProbe(ctx.options.default_key_ttl));
  ctx.blocking =
      std::make_unique<boost::asio::thread_pool>(std::max(1, ctx.options.blocking_threads));
  if (const int split = ThreadCount(ctx.options.split_threads); split > 1) {
    ctx.split = std::make_unique<ForkJoinPool>(split - 1);
  }
  ctx.push_log = std::make_unique<PushLog>(ctx.options.registry, ctx.options.clock);
  MetricsHistoryOptions history;
  history.metrics = &m;
  history.clock = ctx.options.clock;
  history.interval = ctx.options.metrics_history_interval;
  history.capacity = ctx.options.metrics_history_capacity;
  history.store_kind = ctx.options.store_kind;
  ctx.metrics_history = MetricsHistory::Start(std::move(history));
  if (ctx.options.repository) {
    GRANARY_ASSIGN_OR_RAISE(ctx.offline, OpenOfflineEngine(*ctx.options.repository));
  } else {
    ctx.offline = MakeEmbeddedEngine(ctx.options.repo_root);
  }
  ctx.options.materialize.engine = ctx.offline.get();

  RegisterOnlineEndpoints(ctx, &server->endpoints_);
  RegisterPushEndpoints(ctx, &server->endpoints_);
  RegisterAdminEndpoints(ctx, &server->endpoints_);
  RegisterMaterializeEndpoints(ctx, &server->endpoints_);
  return server;
}

void FeatureServer::CancelBackgroundWork() { CancelMaterialization(context_); }

FeatureServer::~FeatureServer() {
  CancelMaterialization(context_);
  // The pool first: a request still starting a run there is refused (cancelled above).
  if (context_.blocking) context_.blocking->join();
  JoinMaterialization(context_);
  context_.materialization.reset();
  context_.push_log.reset();  // writes the pushes not recorded yet
  context_.registry.reset();
  context_.metrics_history.reset();
}

}  // namespace granary
