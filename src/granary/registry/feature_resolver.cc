#include "granary/registry/feature_resolver.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "granary/common/strings.h"

namespace granary {
namespace {

bool InScope(const FeatureView& view, FeatureResolver::Scope scope) {
  return scope == FeatureResolver::Scope::kOffline || view.online;
}

}  // namespace

FeatureResolver::FeatureResolver(const Definitions& definitions, Scope scope)
    : definitions_(&definitions), scope_(scope) {
  size_t count = 0;
  for (const FeatureView& v : definitions.feature_views) {
    if (InScope(v, scope)) count += v.schema.size() + v.aggregations.size();
  }
  // Entries are stored by value: reserve so that the pointers handed out stay valid.
  entries_.reserve(count);
  for (const FeatureView& v : definitions.feature_views) {
    if (!InScope(v, scope)) continue;
    const std::vector<Field> outputs = v.Outputs();
    for (size_t i = 0; i < outputs.size(); ++i) {
      ResolvedFeatureEntry e;
      e.view = &v;
      e.output = outputs[i];
      e.aggregation = v.FindAggregation(outputs[i].name);
      e.ref = v.name + ":" + outputs[i].name;
      e.full_name = v.name + "__" + outputs[i].name;
      e.id = static_cast<uint32_t>(entries_.size());
      e.output_index = static_cast<uint32_t>(i);
      by_ref_.emplace(e.ref, e.id);
      entries_.push_back(std::move(e));
    }
  }
}

const ResolvedFeatureEntry* FeatureResolver::Find(std::string_view ref) const {
  auto it = by_ref_.find(ref);
  return it == by_ref_.end() ? nullptr : &entries_[it->second];
}

Status FeatureResolver::UnknownFeature(std::string_view text) const {
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
    return Status::InvalidArgument(fmt::format(
        "'{}' is not a feature reference; write it as view:feature, e.g. customer_risk:score",
        text));
  }
  const std::string view_name(text.substr(0, colon));
  const std::string feature(text.substr(colon + 1));
  const FeatureView* view = definitions_->FindFeatureView(view_name);
  if (view != nullptr && !InScope(*view, scope_)) {
    return Status::InvalidArgument(fmt::format(
        "feature view '{}' is not online (online: false); set online: true and materialize it, "
        "or read it offline",
        view_name));
  }
  if (view == nullptr) {
    std::vector<std::string> names;
    for (const FeatureView& v : definitions_->feature_views) {
      if (InScope(v, scope_)) names.push_back(v.name);
    }
    return Status::InvalidArgument(fmt::format(
        "unknown feature view '{}' in '{}'{} (feature "
        "views: {})",
        view_name, text, DidYouMean(view_name, names), names.empty() ? "none" : Join(names, ", ")));
  }
  std::vector<std::string> names;
  for (const Field& f : view->Outputs()) names.push_back(f.name);
  return Status::InvalidArgument(
      fmt::format("feature view '{}' has no feature '{}'{} (features: "
                  "{})",
                  view_name, feature, DidYouMean(feature, names), Join(names, ", ")));
}

Status FeatureResolver::ExpandService(const FeatureRequest& request,
                                      std::vector<std::string>* refs) const {
  const FeatureService* service = definitions_->FindFeatureService(request.feature_service);
  if (service == nullptr) {
    std::vector<std::string> names;
    for (const auto& s : definitions_->feature_services) names.push_back(s.name);
    return Status::InvalidArgument(fmt::format(
        "unknown feature service '{}'{} (feature services: {})", request.feature_service,
        DidYouMean(request.feature_service, names), names.empty() ? "none" : Join(names, ", ")));
  }
  for (const FeatureProjection& p : service->projections) {
    const FeatureView* view = definitions_->FindFeatureView(p.view);
    if (view == nullptr) {
      return Status::InvalidArgument(fmt::format(
          "feature service '{}' names unknown feature view '{}'", service->name, p.view));
    }
    if (p.features.empty()) {
      for (const Field& f : view->Outputs()) refs->push_back(p.view + ":" + f.name);
    } else {
      for (const std::string& f : p.features) refs->push_back(p.view + ":" + f);
    }
  }
  return Status::OK();
}

Result<FeatureResolution> FeatureResolver::Resolve(const FeatureRequest& request) const {
  if (!request.features.empty() && !request.feature_service.empty()) {
    return Status::InvalidArgument(
        "the request gives both features and a feature service; give one of them, not both");
  }
  std::vector<std::string> service_refs;
  if (!request.feature_service.empty())
    GRANARY_RETURN_NOT_OK(ExpandService(request, &service_refs));
  const std::vector<std::string>& refs =
      request.feature_service.empty() ? request.features : service_refs;
  if (refs.empty()) {
    return Status::InvalidArgument(
        "the request names no features; give features (view:feature) or a feature service");
  }
  FeatureResolution out;
  out.features.reserve(refs.size());
  std::vector<uint8_t> seen(entries_.size(), 0);
  for (const std::string& ref : refs) {
    const ResolvedFeatureEntry* e = Find(ref);
    if (e == nullptr) return UnknownFeature(ref);
    if (seen[e->id]++) {
      return Status::InvalidArgument(
          fmt::format("feature '{}' is requested twice; request each feature once", ref));
    }
    const std::string& name = request.full_feature_names ? e->full_name : e->output.name;
    for (const std::string& column : request.entity_columns) {
      if (column == name) {
        return Status::InvalidArgument(fmt::format(
            "feature '{}' has the name of the entity column '{}'; set full_feature_names to true "
            "(view__feature names) or rename the column",
            ref, column));
      }
    }
    auto view = std::find_if(out.views.begin(), out.views.end(),
                             [&](const auto& v) { return v.view == e->view; });
    if (view == out.views.end()) {
      out.views.push_back({e->view, {}});
      view = out.views.end() - 1;
    }
    view->features.push_back(static_cast<uint32_t>(out.features.size()));
    out.features.push_back({e, name});
  }
  if (!request.full_feature_names) {
    // Short names can collide only between views; requests are small, so a map is cheap.
    std::map<std::string_view, const ResolvedFeatureEntry*> names;
    for (const auto& f : out.features) {
      auto [it, inserted] = names.emplace(f.output_name, f.entry);
      if (!inserted) {
        return Status::InvalidArgument(fmt::format(
            "features '{}' and '{}' would both be named '{}'; set full_feature_names to true "
            "(view__feature names) or request only one of them",
            it->second->ref, f.entry->ref, f.output_name));
      }
    }
  }
  return out;
}

}  // namespace granary
