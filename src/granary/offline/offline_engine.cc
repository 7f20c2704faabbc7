#include "granary/offline/offline_engine.h"

#include <arrow/api.h>
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "granary/common/strings.h"

namespace granary {
namespace {

std::vector<std::string> ViewNames(const Definitions& defs) {
  std::vector<std::string> names;
  for (const auto& v : defs.feature_views) names.push_back(v.name);
  return names;
}

}  // namespace

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
  std::vector<FeatureRef> refs = request.features;
  if (!request.feature_service.empty()) {
    if (!refs.empty()) {
      return Status::InvalidArgument("give either features or a feature service, not both");
    }
    const FeatureService* service = defs.FindFeatureService(request.feature_service);
    if (service == nullptr) {
      std::vector<std::string> names;
      for (const auto& s : defs.feature_services) names.push_back(s.name);
      return Status::InvalidArgument(fmt::format(
          "unknown feature service '{}'{} (feature services: {})", request.feature_service,
          DidYouMean(request.feature_service, names), names.empty() ? "none" : Join(names, ", ")));
    }
    for (const FeatureProjection& p : service->projections) {
      const FeatureView* view = defs.FindFeatureView(p.view);
      if (view == nullptr) {
        return Status::InvalidArgument(fmt::format(
            "feature service '{}' names unknown feature view '{}'", service->name, p.view));
      }
      if (p.features.empty()) {
        for (const Field& f : view->schema) refs.push_back({p.view, f.name});
      } else {
        for (const auto& f : p.features) refs.push_back({p.view, f});
      }
    }
  }
  if (refs.empty()) return Status::InvalidArgument("no features requested");
  ResolvedFeatures out;
  std::map<std::string, std::string> output_owner;  // output name -> "view:feature"
  for (const FeatureRef& ref : refs) {
    const FeatureView* view = defs.FindFeatureView(ref.view);
    if (view == nullptr) {
      auto names = ViewNames(defs);
      return Status::InvalidArgument(
          fmt::format("unknown feature view '{}' in '{}'{} (feature "
                      "views: {})",
                      ref.view, ref.ToString(), DidYouMean(ref.view, names),
                      names.empty() ? "none" : Join(names, ", ")));
    }
    if (view->FindFeature(ref.feature) == nullptr) {
      std::vector<std::string> names;
      for (const Field& f : view->schema) names.push_back(f.name);
      return Status::InvalidArgument(
          fmt::format("feature view '{}' has no feature '{}'{} "
                      "(features: {})",
                      view->name, ref.feature, DidYouMean(ref.feature, names), Join(names, ", ")));
    }
    const std::string output = ref.OutputName(request.full_feature_names);
    auto [it, inserted] = output_owner.emplace(output, ref.ToString());
    if (!inserted) {
      if (it->second == ref.ToString()) continue;  // the same feature twice: once is enough
      return Status::InvalidArgument(
          fmt::format("features '{}' and '{}' would both be named '{}'; use --full-feature-names "
                      "(view__feature) or request only one of them",
                      it->second, ref.ToString(), output));
    }
    auto group = std::find_if(out.views.begin(), out.views.end(),
                              [&](const auto& v) { return v.view == view; });
    if (group == out.views.end()) {
      out.views.push_back({view, {}, {}});
      group = out.views.end() - 1;
    }
    group->features.push_back(ref.feature);
    group->output_names.push_back(output);
  }
  return out;
}

Result<std::vector<OfflineReadStats>> OfflineEngine::WriteHistoricalFeatures(
    const Definitions&, const HistoricalRequest&, const HistoricalOutput& output) {
  return Status::NotImplemented(fmt::format(
      "{}: writing a training set into {} without passing through this process needs an engine "
      "that runs elsewhere (offline_store type spark); write it to a local file instead (-o)",
      Describe(), !output.table.empty() ? "table " + output.table : output.path));
}

Result<OfflineAppendResult> OfflineEngine::Append(const DataSource& source, const arrow::Table&,
                                                  const Clock&) {
  return Status::NotImplemented(
      fmt::format("{}: appending rows to data source '{}' is not supported by this engine",
                  Describe(), source.name));
}

}  // namespace granary
