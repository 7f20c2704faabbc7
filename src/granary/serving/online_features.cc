#include "granary/serving/online_features.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/post.hpp>
#include <charconv>
#include <map>

#include "granary/common/json.h"
#include "granary/common/strings.h"
#include "granary/serving/json_format.h"
#include "granary/types/feature_ref.h"

namespace granary {
namespace {

using EntityColumn = OnlineFeaturesRequest::EntityColumn;

// Numbers services for the per-thread feature list cache (ResolveFeatures).
std::atomic<uint64_t> next_service_id{1};

std::string JsonTypeName(const boost::json::value& v) { return JsonKindName(v); }

// The type of a given value, in words, for messages.
std::string GivenAs(const Value& v, bool from_text) {
  if (v.is_null()) return "null";
  if (from_text) return fmt::format("'{}'", v.get<std::string>());
  if (v.is<std::string>()) return fmt::format("the string \"{}\"", v.get<std::string>());
  if (v.is<bool>()) return v.get<bool>() ? "true" : "false";
  return v.ToString();
}

// A request entity value as a value of the join key's type.
Result<Value> ToJoinKeyValue(const Value& v, ValueType type, bool from_text) {
  const std::string type_name = type.ToString();
  auto wrong = [&](std::string_view hint) {
    return Status::InvalidArgument(
        fmt::format("{} is not {} {}{}", GivenAs(v, from_text),
                    type_name == "int32" || type_name == "int64" ? "an" : "a", type_name, hint));
  };
  if (v.is_null()) return wrong("; join key values must not be null");
  const bool text = from_text || v.is<std::string>();
  const std::string* s = v.is<std::string>() ? &v.get<std::string>() : nullptr;
  switch (type.scalar) {
    case ScalarType::kInt32:
    case ScalarType::kInt64: {
      int64_t n = 0;
      if (v.is<int64_t>()) {
        n = v.get<int64_t>();
      } else if (from_text && s) {
        auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), n);
        if (ec != std::errc() || p != s->data() + s->size()) return wrong("");
      } else {
        return wrong(s ? "; write the number without quotes" : "");
      }
      if (type.scalar == ScalarType::kInt32) {
        if (n < INT32_MIN || n > INT32_MAX) return wrong(": it is out of the int32 range");
        return Value(static_cast<int32_t>(n));
      }
      return Value(n);
    }
    case ScalarType::kFloat32:
    case ScalarType::kFloat64: {
      double d = 0;
      if (v.is<int64_t>()) {
        d = static_cast<double>(v.get<int64_t>());
      } else if (v.is<double>()) {
        d = v.get<double>();
      } else if (from_text && s) {
        auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), d);
        if (ec != std::errc() || p != s->data() + s->size()) return wrong("");
      } else {
        return wrong(s ? "; write the number without quotes" : "");
      }
      if (type.scalar == ScalarType::kFloat32) return Value(static_cast<float>(d));
      return Value(d);
    }
    case ScalarType::kString:
      if (s) return Value(*s);
      return wrong("; write it as a string, in quotes");
    case ScalarType::kBytes: {
      if (!s) return wrong("; write bytes as a base64 string");
      auto bytes = serving::DecodeBase64(*s);
      if (!bytes.ok()) return wrong(": " + bytes.status().message());
      return Value(Bytes{std::move(*bytes)});
    }
    case ScalarType::kBool:
      if (v.is<bool>()) return v;
      if (from_text && s && (*s == "true" || *s == "false")) return Value(*s == "true");
      return wrong(from_text ? "; write true or false" : "; write true or false without quotes");
    case ScalarType::kTimestamp: {
      if (!text || !s) return wrong("; write an RFC 3339 time such as \"2026-11-23T02:00:00Z\"");
      auto ts = ParseTimestamp(*s);
      if (!ts.ok()) return wrong(": " + ts.status().message());
      return Value(*ts);
    }
  }
  return wrong("");
}

}  // namespace

// ------------------------------------------------------------------------------ parsing

Result<OnlineFeaturesRequest> ParseOnlineFeaturesRequest(std::string_view json) {
  // Strict JSON (no NaN), at most 64 levels deep; strings must be valid UTF-8: they become Arrow
  // strings and JSON in the response.
  auto parsed = ParseJson(json);
  if (!parsed.ok()) {
    return Status::InvalidArgument("the request is not valid JSON: " + parsed.status().message());
  }
  const boost::json::value& doc = *parsed;
  if (!doc.is_object()) {
    return Status::InvalidArgument(
        "the request must be a JSON object such as {\"features\": [\"view:feature\"], "
        "\"entities\": {\"customer_id\": [1001]}}");
  }
  OnlineFeaturesRequest request;
  static const std::vector<std::string> kKeys = {"features",
                                                 "feature_service",
                                                 "entities",
                                                 "full_feature_names",
                                                 "include_feature_view_version_metadata",
                                                 "partial",
                                                 "include_statuses",
                                                 "include_event_timestamps"};
  for (const auto& member : doc.get_object()) {
    std::string_view key(member.key().data(), member.key().size());
    const boost::json::value& v = member.value();
    if (key == "features") {
      if (!v.is_array()) {
        return Status::InvalidArgument(
            "features: must be a list of \"view:feature\" strings, not " + JsonTypeName(v));
      }
      const boost::json::array& features = v.get_array();
      for (size_t i = 0; i < features.size(); ++i) {
        if (!features[i].is_string()) {
          return Status::InvalidArgument(
              fmt::format("features[{}]: must be a \"view:feature\" string, not {}", i,
                          JsonTypeName(features[i])));
        }
        request.features.emplace_back(JsonStringView(features[i].get_string()));
      }
    } else if (key == "feature_service") {
      if (!v.is_string()) {
        return Status::InvalidArgument("feature_service: must be a string, not " + JsonTypeName(v));
      }
      request.feature_service.assign(JsonStringView(v.get_string()));
    } else if (key == "full_feature_names") {
      if (!v.is_bool()) {
        return Status::InvalidArgument("full_feature_names: must be true or false, not " +
                                       JsonTypeName(v));
      }
      request.full_feature_names = v.get_bool();
    } else if (key == "include_feature_view_version_metadata") {
      if (!v.is_bool()) {
        return Status::InvalidArgument(
            "include_feature_view_version_metadata: must be true or false, not " + JsonTypeName(v));
      }
      request.include_view_metadata = v.get_bool();
    } else if (key == "partial") {
      if (!v.is_bool()) {
        return Status::InvalidArgument("partial: must be true or false, not " + JsonTypeName(v));
      }
      request.partial = v.get_bool();
    } else if (key == "include_statuses" || key == "include_event_timestamps") {
      if (!v.is_bool()) {
        return Status::InvalidArgument(
            fmt::format("{}: must be true or false, not {}", key, JsonTypeName(v)));
      }
      (key == "include_statuses" ? request.include_statuses : request.include_event_timestamps) =
          v.get_bool();
    } else if (key == "entities") {
      if (!v.is_object()) {
        return Status::InvalidArgument(
            "entities: must be an object of join key to a list of values, such as "
            "{\"customer_id\": [1001, 1002]}");
      }
      for (const auto& column : v.get_object()) {
        EntityColumn out;
        out.name.assign(column.key().data(), column.key().size());
        if (!column.value().is_array()) {
          return Status::InvalidArgument(
              fmt::format("entities.{}: must be a list of values, not {}", out.name,
                          JsonTypeName(column.value())));
        }
        const boost::json::array& values = column.value().get_array();
        out.values.reserve(values.size());
        for (size_t i = 0; i < values.size(); ++i) {
          const boost::json::value& x = values[i];
          if (x.is_int64()) {
            out.values.emplace_back(x.get_int64());
          } else if (x.is_uint64()) {
            return Status::InvalidArgument(fmt::format(
                "entities.{}[{}]: {} is too large for an int64", out.name, i, x.get_uint64()));
          } else if (x.is_double()) {
            out.values.emplace_back(x.get_double());
          } else if (x.is_string()) {
            out.values.emplace_back(std::string(JsonStringView(x.get_string())));
          } else if (x.is_bool()) {
            out.values.emplace_back(x.get_bool());
          } else if (x.is_null()) {
            out.values.emplace_back();
          } else {
            return Status::InvalidArgument(
                fmt::format("entities.{}[{}]: must be a number, string or boolean, not {}",
                            out.name, i, JsonTypeName(x)));
          }
        }
        request.entities.push_back(std::move(out));
      }
    } else {
      return Status::InvalidArgument(
          fmt::format("unknown request field '{}'{}; the fields are features, feature_service, "
                      "entities, full_feature_names, include_feature_view_version_metadata, "
                      "partial, include_statuses and include_event_timestamps",
                      key, DidYouMean(key, kKeys)));
    }
  }
  if (request.partial && !request.include_statuses) {
    // A value that could not be read (a store node down) is null with status INVALID; without
    // the statuses the caller would take it for a missing value.
    return Status::InvalidArgument(
        "partial: true needs the statuses (a value on a store node that is down is null with "
        "status INVALID, which only the statuses tell from a missing value); drop "
        "\"include_statuses\": false or \"partial\": true");
  }
  return request;
}

// ------------------------------------------------------------------------------ service

Result<std::unique_ptr<OnlineFeaturesService>> OnlineFeaturesService::Make(
    std::shared_ptr<const Definitions> definitions, OnlineStore* store, Duration default_key_ttl) {
  std::unique_ptr<OnlineFeaturesService> service(new OnlineFeaturesService());
  GRANARY_ASSIGN_OR_RAISE(service->layouts_, MakeViewLayouts(*definitions, default_key_ttl));
  for (const Entity& e : definitions->entities) {
    for (size_t i = 0; i < e.join_keys.size() && i < e.join_key_types.size(); ++i) {
      service->join_key_types_.emplace(e.join_keys[i], e.join_key_types[i]);
    }
  }
  service->resolver_ =
      std::make_unique<FeatureResolver>(*definitions, FeatureResolver::Scope::kOnline);
  service->slots_.resize(service->resolver_->num_features());
  std::vector<std::pair<std::string, std::shared_ptr<const ViewLayout>>> stored;
  for (const auto& [name, layout] : service->layouts_) {
    stored.emplace_back(name, layout);
    // Aggregations are read from the view's tiles, folded at read time.
    if (layout->tile_layout() != nullptr) stored.emplace_back(name, layout->tile_layout());
  }
  for (const auto& [name, layout] : stored) {
    for (size_t f = 0; f < layout->features().size(); ++f) {
      const ResolvedFeatureEntry* entry =
          service->resolver_->Find(name + ":" + layout->features()[f].name);
      if (entry == nullptr) {
        return Status::Internal(fmt::format("online feature {}:{} is not an output of its view",
                                            name, layout->features()[f].name));
      }
      service->slots_[entry->id] = OnlineSlot{layout, static_cast<int>(f)};
    }
  }
  service->definitions_ = std::move(definitions);
  service->store_ = store;
  service->service_id_ = next_service_id.fetch_add(1, std::memory_order_relaxed);
  return service;
}

Status OnlineFeaturesService::ConvertEntities(const OnlineFeaturesRequest& request,
                                              ResolvedOnlineRequest* out) const {
  if (request.entities.empty()) {
    return Status::InvalidArgument(
        "the request has no entities; give each join key's values, e.g. "
        "\"entities\": {\"customer_id\": [1001, 1002]}");
  }
  const EntityColumn& first = request.entities.front();
  out->num_rows = first.values.size();
  for (const EntityColumn& column : request.entities) {
    for (const EntityColumn& other : out->entities) {
      if (other.name == column.name) {
        return Status::InvalidArgument(
            fmt::format("entities: join key '{}' is given twice", column.name));
      }
    }
    auto type = join_key_types_.find(column.name);
    if (type == join_key_types_.end()) {
      std::vector<std::string> known;
      for (const auto& [name, t] : join_key_types_) known.push_back(name);
      std::sort(known.begin(), known.end());
      return Status::InvalidArgument(
          fmt::format("entities: '{}' is not a join key of any entity{}; the join keys are: {}",
                      column.name, DidYouMean(column.name, known), Join(known, ", ")));
    }
    if (column.values.size() != out->num_rows) {
      return Status::InvalidArgument(fmt::format(
          "entities: '{}' has {} values but '{}' has {}; give every join key one value per entity "
          "row",
          column.name, column.values.size(), first.name, out->num_rows));
    }
    if (column.values.empty()) {
      return Status::InvalidArgument(
          fmt::format("entities: '{}' has no values; give at least one entity", column.name));
    }
    EntityColumn typed;
    typed.name = column.name;
    typed.values.reserve(column.values.size());
    for (size_t i = 0; i < column.values.size(); ++i) {
      auto v = ToJoinKeyValue(column.values[i], type->second, column.from_text);
      if (!v.ok()) {
        return Status::InvalidArgument(fmt::format("entities.{}[{}]: {} (join key '{}' is {})",
                                                   column.name, i, v.status().message(),
                                                   column.name, type->second.ToString()));
      }
      typed.values.push_back(std::move(*v));
    }
    out->entities.push_back(std::move(typed));
  }
  return Status::OK();
}

namespace {

// What a request's features resolve to, by the request's feature list, per thread: most clients
// send the same few lists, and resolving 250 features (a hash lookup and a few copies each) took
// more CPU than the rest of a one-entity request (docs/PERFORMANCE.md, "Where the time goes").
// Entries are kept for one service (one registry snapshot) at a time; per thread, so no lock.
struct FeatureListCache {
  static constexpr size_t kMaxEntries = 64;
  uint64_t service_id = 0;
  std::unordered_map<std::string, std::shared_ptr<const OnlineFeaturesService::ResolvedFeatures>>
      entries;
};

thread_local FeatureListCache feature_list_cache;

// Everything the resolution of features depends on, each string length-prefixed (so that no two
// requests share a key).
void FeatureListKey(const OnlineFeaturesRequest& request, std::string* key) {
  auto put = [key](std::string_view s) {
    const uint32_t n = static_cast<uint32_t>(s.size());
    key->append(reinterpret_cast<const char*>(&n), sizeof(n));
    key->append(s);
  };
  key->push_back(request.full_feature_names ? 'F' : 'f');
  put(request.feature_service);
  key->append(std::to_string(request.entities.size())).push_back(':');
  for (const EntityColumn& column : request.entities) put(column.name);
  for (const std::string& f : request.features) put(f);
}

}  // namespace

Result<std::shared_ptr<const OnlineFeaturesService::ResolvedFeatures>>
OnlineFeaturesService::ResolveFeatures(const OnlineFeaturesRequest& request) const {
  FeatureListCache& cache = feature_list_cache;
  if (cache.service_id != service_id_) {
    cache.entries.clear();
    cache.service_id = service_id_;
  }
  std::string key;
  FeatureListKey(request, &key);
  if (auto it = cache.entries.find(key); it != cache.entries.end()) return it->second;

  FeatureRequest features;
  features.features = request.features;
  features.feature_service = request.feature_service;
  features.full_feature_names = request.full_feature_names;
  for (const EntityColumn& column : request.entities)
    features.entity_columns.push_back(column.name);
  // The same rules as training sets: registry/feature_resolver.h.
  GRANARY_ASSIGN_OR_RAISE(FeatureResolution resolution, resolver_->Resolve(features));
  auto out = std::make_shared<ResolvedFeatures>();
  out->columns.reserve(resolution.features.size());
  for (const FeatureResolution::Feature& f : resolution.features) {
    const OnlineSlot& at = slots_[f.entry->id];
    if (at.index < 0) {
      auto layout = layouts_.find(f.entry->view->name);
      return Status::InvalidArgument(fmt::format(
          "feature '{}' is a window aggregation that is not kept online: {}; read it with "
          "get-historical-features (docs/AGGREGATIONS.md)",
          f.entry->ref,
          layout != layouts_.end() ? layout->second->tile_error() : "its view is not online"));
    }
    uint32_t slot = 0;
    while (slot < out->views.size() && out->views[slot].view != at.layout) ++slot;
    if (slot == out->views.size()) out->views.push_back(ViewRead{at.layout, {}, nullptr});
    ViewRead& read = out->views[slot];
    out->columns.push_back({f.output_name, slot, static_cast<uint32_t>(read.features.size())});
    read.features.push_back(at.index);
  }
  if (cache.entries.size() >= FeatureListCache::kMaxEntries) cache.entries.clear();
  cache.entries.emplace(std::move(key), out);
  return out;
}

Result<ResolvedOnlineRequest> OnlineFeaturesService::Resolve(
    const OnlineFeaturesRequest& request) const {
  ResolvedOnlineRequest out;
  out.read.allow_partial = request.partial;
  out.include_view_metadata = request.include_view_metadata;
  out.include_statuses = request.include_statuses;
  out.include_event_timestamps = request.include_event_timestamps;
  // The features first, then the entities.
  GRANARY_ASSIGN_OR_RAISE(std::shared_ptr<const ResolvedFeatures> features,
                          ResolveFeatures(request));
  GRANARY_RETURN_NOT_OK(ConvertEntities(request, &out));
  out.columns = features->columns;
  out.read.views = features->views;

  // One key column per set of join keys, shared by the views keyed by it.
  std::map<std::string, std::shared_ptr<EntityKeyColumn>> key_columns;
  for (ViewRead& read : out.read.views) {
    std::string signature;
    std::vector<const EntityColumn*> columns;
    for (const ViewLayout::Column& k : read.view->join_keys()) {
      const EntityColumn* found = nullptr;
      for (const EntityColumn& e : out.entities) {
        if (e.name == k.name) found = &e;
      }
      if (found == nullptr) {
        return Status::InvalidArgument(
            fmt::format("feature view '{}' is keyed by '{}', which the request does not give; add "
                        "\"{}\": [...] to entities",
                        read.view->name(), k.name, k.name));
      }
      auto integer = [](ScalarType t) {
        return t == ScalarType::kInt32 || t == ScalarType::kInt64;
      };
      const ScalarType given = found->values[0].type().scalar;
      if (given != k.type.scalar && !(integer(given) && integer(k.type.scalar))) {
        return Status::InvalidArgument(fmt::format(
            "join key '{}' is {} in feature view '{}' but {} in another entity; give the join "
            "key one type in the definitions",
            k.name, k.type.ToString(), read.view->name(), found->values[0].type().ToString()));
      }
      signature += k.name + '\n';
      columns.push_back(found);
    }
    auto& keys = key_columns[signature];
    if (keys == nullptr) {
      keys = std::make_shared<EntityKeyColumn>();
      keys->Reserve(out.num_rows, out.num_rows * 12 * columns.size());
      for (size_t r = 0; r < out.num_rows; ++r) {
        for (const EntityColumn* c : columns) {
          GRANARY_RETURN_NOT_OK(entity_key::AppendValue(keys->buffer(), c->values[r]));
        }
        keys->FinishKey();
      }
    }
    read.keys = keys;
  }
  return out;
}

Status OnlineFeaturesService::GetOnlineFeatures(const OnlineFeaturesRequest& request,
                                                std::string* json) const {
  GRANARY_ASSIGN_OR_RAISE(ResolvedOnlineRequest resolved, Resolve(request));
  GRANARY_ASSIGN_OR_RAISE(OnlineFeatures features, store_->Read(resolved.read));
  WriteResponse(resolved, features, json);
  return Status::OK();
}

void OnlineFeaturesService::AsyncGetOnlineFeatures(const boost::asio::any_io_executor& executor,
                                                   const OnlineFeaturesRequest& request,
                                                   Callback done) const {
  auto resolved = Resolve(request);
  if (!resolved.ok()) {
    boost::asio::post(executor, [done = std::move(done), st = resolved.status()] { done(st); });
    return;
  }
  auto shared = std::make_shared<ResolvedOnlineRequest>(std::move(*resolved));
  OnlineReadRequest read = shared->read;
  store_->AsyncRead(executor, std::move(read),
                    [shared, done = std::move(done)](Result<OnlineFeatures> features) {
                      if (!features.ok()) return done(features.status());
                      std::string json;
                      WriteResponse(*shared, *features, &json);
                      done(std::move(json));
                    });
}

}  // namespace granary
