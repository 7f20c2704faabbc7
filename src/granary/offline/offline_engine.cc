#include "granary/offline/offline_engine.h"

#include <arrow/api.h>
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "granary/common/strings.h"
#include "granary/offline/feature_stats.h"
#include "granary/registry/feature_resolver.h"

namespace granary {

Result<std::shared_ptr<arrow::Table>> ReadAll(OfflineBatchStream& stream) {
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  while (true) {
    GRANARY_ASSIGN_OR_RAISE(auto batch, stream.Next());
    if (batch == nullptr) break;
    batches.push_back(std::move(batch));
  }
  // No batch: columns of one empty chunk each, as readers of a whole table expect.
  auto table = batches.empty()
                   ? arrow::Table::MakeEmpty(stream.schema())
                   : arrow::Table::FromRecordBatches(stream.schema(), std::move(batches));
  if (!table.ok()) return Status::Internal(table.status().ToString());
  return *table;
}

Result<ResolvedFeatures> ResolveFeatures(const Definitions& defs,
                                         const HistoricalRequest& request) {
  // The one resolver of training sets and online reads (registry/feature_resolver.h).
  FeatureRequest features;
  for (const FeatureRef& ref : request.features) features.features.push_back(ref.ToString());
  features.feature_service = request.feature_service;
  features.full_feature_names = request.full_feature_names;
  if (request.entities != nullptr) {
    features.entity_columns = request.entities->schema()->field_names();
  }
  const FeatureResolver resolver(defs, FeatureResolver::Scope::kOffline);
  GRANARY_ASSIGN_OR_RAISE(FeatureResolution resolution, resolver.Resolve(features));
  ResolvedFeatures out;
  for (const auto& group : resolution.views) {
    ResolvedFeatures::ViewFeatures view{group.view, {}, {}};
    for (uint32_t i : group.features) {
      view.features.push_back(resolution.features[i].entry->output.name);
      view.output_names.push_back(resolution.features[i].output_name);
    }
    out.views.push_back(std::move(view));
  }
  return out;
}

Status CheckEngineSupports(const OfflineEngine& engine, const ResolvedFeatures& resolved) {
  if (engine.capabilities().window_aggregations) return Status::OK();
  for (const auto& group : resolved.views) {
    for (const std::string& feature : group.features) {
      if (group.view->FindAggregation(feature) != nullptr) {
        return Status::NotImplemented(fmt::format(
            "feature '{}:{}' is a window aggregation, which the {} does not compute; use "
            "offline_store type file (the embedded engine) for it",
            group.view->name, feature, engine.Describe()));
      }
    }
  }
  return Status::OK();
}

Result<std::vector<OfflineReadStats>> OfflineEngine::WriteHistoricalFeatures(
    const Definitions&, const HistoricalRequest&, const HistoricalOutput& output) {
  return Status::NotImplemented(fmt::format(
      "{}: writing a training set into {} without passing through this process needs an engine "
      "that runs elsewhere (offline_store type spark); write it to a local file instead (-o)",
      Describe(), !output.table.empty() ? "table " + output.table : output.path));
}

Result<std::unique_ptr<OfflineBatchStream>> OfflineEngine::ReadEvents(
    const Definitions&, const EventsRequest& request) {
  return Status::NotImplemented(fmt::format(
      "{}: reading the raw events of feature view '{}' for its online tiles is not supported by "
      "this engine; materialize aggregation views with offline_store type file",
      Describe(), request.view != nullptr ? request.view->name : ""));
}

Result<OfflineAppendResult> OfflineEngine::Append(const DataSource& source, const arrow::Table&,
                                                  const Clock&) {
  return Status::NotImplemented(
      fmt::format("{}: appending rows to data source '{}' is not supported by this engine",
                  Describe(), source.name));
}

Result<FeatureStatsReport> OfflineEngine::FeatureStatistics(const Definitions&,
                                                            const FeatureView& view,
                                                            const FeatureStatsOptions&) {
  return Status::NotImplemented(
      fmt::format("{}: feature statistics (of feature view '{}') are not computed by this engine",
                  Describe(), view.name));
}

namespace {
bool IsTimeType(const arrow::DataType& type) {
  return type.id() == arrow::Type::TIMESTAMP || type.id() == arrow::Type::DATE32 ||
         type.id() == arrow::Type::DATE64;
}
}  // namespace

// The entity time column: `event_timestamp`, or the only timestamp/date column.
Result<int> EntityTimeColumn(const arrow::Schema& schema) {
  int index = schema.GetFieldIndex(kEventTimestampColumn);
  if (index >= 0) return index;
  std::vector<int> candidates;
  for (int i = 0; i < schema.num_fields(); ++i) {
    if (IsTimeType(*schema.field(i)->type())) candidates.push_back(i);
  }
  if (candidates.size() == 1) return candidates[0];
  if (candidates.empty()) {
    return Status::InvalidArgument(fmt::format(
        "the entity rows have no 'event_timestamp' column and no timestamp column (columns: {}); "
        "add the time of each row as 'event_timestamp'",
        Join(schema.field_names(), ", ")));
  }
  std::vector<std::string> names;
  for (int i : candidates) names.push_back(schema.field(i)->name());
  return Status::InvalidArgument(fmt::format(
      "the entity rows have several timestamp columns ({}) and none is named 'event_timestamp'; "
      "rename the one that is the time of each row to 'event_timestamp'",
      Join(names, ", ")));
}

}  // namespace granary
