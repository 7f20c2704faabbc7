// The get-online-features service, independent of any transport: Feast's request (JSON, or the
// command line's options) in, Feast's response JSON out (docs/ONLINE_LAYOUT.md, "Serving").
//
//   request:  {"features": ["customer_risk:failure_rate_90d", ...] | "feature_service": "name",
//              "entities": {"customer_id": [1001, 1002]}, "full_feature_names": false,
//              "include_feature_view_version_metadata": false,
//              "include_statuses": true, "include_event_timestamps": true}
//   response: {"metadata": {"feature_names": ["customer_id", "failure_rate_90d", ...]},
//              "results": [{"values": [...], "statuses": [...], "event_timestamps": [...]}, ...]}
//
// Granary's include_statuses / include_event_timestamps (default true: Feast's shape, byte for
// byte) leave the per-row arrays out of every result when false: with both false each result is
// {"values": [...]} (the compact form, docs/SERVING.md), about a quarter of the bytes. A value
// that is not PRESENT is null in either form.
//
// The response lists the request's entity columns first (status PRESENT, event time the epoch),
// then one column per feature in the requested order. Bytes are base64; timestamps RFC 3339 UTC;
// NaN and infinities are written as NaN, Infinity, -Infinity (as Python's json module does).
//
// Thread-safe: one service serves every thread. The HTTP server calls ParseOnlineFeaturesRequest
// and AsyncGetOnlineFeatures and only moves bytes.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "granary/common/fork_join.h"
#include "granary/common/result.h"
#include "granary/online/online_store.h"
#include "granary/registry/definitions.h"
#include "granary/registry/feature_resolver.h"

namespace granary {

struct OnlineFeaturesRequest {
  std::vector<std::string> features;  // "view:feature"
  std::string feature_service;        // instead of features
  struct EntityColumn {
    std::string name;  // a join key
    // As given: from JSON, int64 (integers), float64, string, bool or null; from text, strings.
    std::vector<Value> values;
    bool from_text = false;  // values are command-line text, parsed by the join key's type
  };
  std::vector<EntityColumn> entities;  // in request order
  bool full_feature_names = false;
  // Feast's include_feature_view_version_metadata: the response's metadata also lists the views
  // read, in order of their first feature ({"name": view}; Granary's views carry no version
  // number, which Feast leaves out when it is 0).
  bool include_view_metadata = false;
  // Granary's: answer what can be read when some store nodes are down, their values INVALID
  // (OnlineReadRequest::allow_partial), instead of failing the request.
  bool partial = false;
  // Granary's: whether each result carries its "statuses" and its "event_timestamps" arrays
  // (Feast's shape has both). Without statuses a partial answer is refused by the parser: an
  // INVALID value would look like a missing one.
  bool include_statuses = true;
  bool include_event_timestamps = true;
};

// Parses Feast's request JSON. InvalidArgument naming the line and column of bad JSON, or the
// field of a bad shape ("entities.customer_id[2]: ...").
Result<OnlineFeaturesRequest> ParseOnlineFeaturesRequest(std::string_view json);

// A request checked against the definitions, ready to read and to answer.
struct ResolvedOnlineRequest {
  OnlineReadRequest read;  // one ViewRead per view, features in first-requested order
  struct Column {
    std::string name;      // output name: "feature" or "view__feature"
    uint32_t view = 0;     // index into read.views
    uint32_t feature = 0;  // index into read.views[view].features
  };
  std::vector<Column> columns;  // the feature columns, in requested order
  // The entity columns, typed by their join keys' types, in request order.
  std::vector<OnlineFeaturesRequest::EntityColumn> entities;
  size_t num_rows = 0;
  bool include_view_metadata = false;  // as requested
  bool include_statuses = true;        // as requested
  bool include_event_timestamps = true;
};

class OnlineFeaturesService {
 public:
  // `store` is not owned and must outlive the service. `default_key_ttl` is the online store's
  // key_ttl (views' key expiry when they set none).
  static Result<std::unique_ptr<OnlineFeaturesService>> Make(
      std::shared_ptr<const Definitions> definitions, OnlineStore* store, Duration default_key_ttl);

  // Checks the request: unknown views, features or services (with suggestions), views that are
  // not online, a missing or unknown join key, a value of the wrong type, lists of unequal
  // length, no features, no entities, duplicate output names. InvalidArgument says what and
  // where, and how to fix it.
  Result<ResolvedOnlineRequest> Resolve(const OnlineFeaturesRequest& request) const;

  // What the request's feature list resolves to (its feature columns, and the views to read
  // without their keys), with Resolve's errors about features. Remembered per thread for the
  // last 64 feature lists of this service (keyed by the features, the feature service, the
  // entity column names and full_feature_names), so a repeated list costs one hash lookup.
  struct ResolvedFeatures {
    std::vector<ResolvedOnlineRequest::Column> columns;
    std::vector<ViewRead> views;  // keys unset
  };
  Result<std::shared_ptr<const ResolvedFeatures>> ResolveFeatures(
      const OnlineFeaturesRequest& request) const;

  // Reads and writes the response JSON into `json`. Blocks (CLI, Python).
  Status GetOnlineFeatures(const OnlineFeaturesRequest& request, std::string* json) const;

  // The same without blocking: `done` runs on `executor` (OnlineStore::AsyncRead's contract).
  using Callback = std::function<void(Result<std::string>)>;
  void AsyncGetOnlineFeatures(const boost::asio::any_io_executor& executor,
                              const OnlineFeaturesRequest& request, Callback done) const;

  // The definitions and the online layouts of their views, as given to Make().
  const Definitions& definitions() const { return *definitions_; }
  const std::shared_ptr<const Definitions>& shared_definitions() const { return definitions_; }
  const ViewLayouts& layouts() const { return layouts_; }

  // Writes Feast's response for a resolved request and what the store returned. The request must
  // come from this service (its column names point into it). With `split`, an answer of at least
  // kSplitAnswerValues values is written in parts on the pool's threads and joined, to the same
  // bytes.
  static void WriteResponse(const ResolvedOnlineRequest& request, const OnlineFeatures& features,
                            std::string* json, ForkJoinPool* split = nullptr);
  // Entity rows x feature columns from which WriteResponse splits an answer: below it, waking a
  // helper costs about what it saves (about 55 ns per value written; 1 x 250 is not split).
  static constexpr size_t kSplitAnswerValues = 2048;

 private:
  OnlineFeaturesService() = default;
  struct JoinKey {
    std::string name;
    ValueType type;
  };
  Status ConvertEntities(const OnlineFeaturesRequest& request, ResolvedOnlineRequest* out) const;
  // Where an online feature (a FeatureResolver entry, by id) is read: its view's layout and the
  // feature's index there; index -1 for outputs the store does not hold (aggregations).
  struct OnlineSlot {
    std::shared_ptr<const ViewLayout> layout;
    int index = -1;
  };

  std::shared_ptr<const Definitions> definitions_;
  OnlineStore* store_ = nullptr;
  uint64_t service_id_ = 0;  // unique in the process: the per-thread cache's owner
  ViewLayouts layouts_;
  std::unique_ptr<FeatureResolver> resolver_;                  // borrows *definitions_
  std::vector<OnlineSlot> slots_;                              // by ResolvedFeatureEntry::id
  std::unordered_map<std::string, ValueType> join_key_types_;  // every entity's join keys
};

}  // namespace granary
