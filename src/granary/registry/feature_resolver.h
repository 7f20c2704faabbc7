// FeatureResolver: the one place where requested features become features of views. Training-set
// retrieval (offline/historical.h), online reads (serving/online_features.h), the CLI and the
// Python SDK all resolve through it, so they accept and refuse the same requests with the same
// messages. The rules (docs/CONCEPTS.md, "Requesting features"):
//   - give features ("view:feature") or a feature service, not both, and at least one feature;
//   - a view's features are its outputs (FeatureView::Outputs: the schema's fields, then its
//     aggregations); a service's projection without features takes every output of its view;
//   - a feature requested twice (directly, or by two projections of a service) is an error, as in
//     Feast (FeatureNameCollisionError), offline and online alike;
//   - two features whose output names are equal (the same name in two views, without full names)
//     are an error that suggests full feature names ("view__feature");
//   - an output name equal to a column of the request's entity rows (a join key, or any other
//     column of a training set's entity rows) is an error, offline and online alike;
//   - scope kOnline also refuses views with online: false, saying how to fix it.
// Built once per Definitions (the feature server keeps one per registry snapshot); Resolve is
// const and thread-safe; the resolver borrows the definitions, which must outlive it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "granary/common/result.h"
#include "granary/registry/definitions.h"

namespace granary {

struct FeatureRequest {
  std::vector<std::string> features;  // "view:feature"
  std::string feature_service;        // instead of features
  bool full_feature_names = false;    // output names "view__feature" instead of "feature"
  // The columns of the request's entity rows, which no output may be named as.
  std::vector<std::string> entity_columns;
};

// One output feature of one view.
struct ResolvedFeatureEntry {
  const FeatureView* view = nullptr;
  Field output;                              // name and type
  const Aggregation* aggregation = nullptr;  // null for a plain (schema) feature
  std::string ref;                           // "view:feature"
  std::string full_name;                     // "view__feature"
  uint32_t id = 0;            // dense over the resolver's features, for per-request bookkeeping
  uint32_t output_index = 0;  // in view->Outputs()
};

struct FeatureResolution {
  struct Feature {
    const ResolvedFeatureEntry* entry;
    std::string output_name;
  };
  std::vector<Feature> features;  // in requested order
  struct View {
    const FeatureView* view;
    std::vector<uint32_t> features;  // indices into `features`, in requested order
  };
  std::vector<View> views;  // in the order each view is first requested
};

class FeatureResolver {
 public:
  enum class Scope { kOffline, kOnline };
  FeatureResolver(const Definitions& definitions, Scope scope);

  // InvalidArgument naming what is wrong and how to fix it (with "did you mean").
  Result<FeatureResolution> Resolve(const FeatureRequest& request) const;

  // The entry of "view:feature" in scope, or null.
  const ResolvedFeatureEntry* Find(std::string_view ref) const;
  size_t num_features() const { return entries_.size(); }
  const Definitions& definitions() const { return *definitions_; }

 private:
  Status UnknownFeature(std::string_view text) const;
  Status ExpandService(const FeatureRequest& request, std::vector<std::string>* refs) const;

  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  const Definitions* definitions_;
  Scope scope_;
  std::vector<ResolvedFeatureEntry> entries_;
  std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>> by_ref_;
};

}  // namespace granary
