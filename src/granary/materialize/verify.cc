#include "granary/materialize/verify.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "granary/common/strings.h"
#include "granary/online/view_layout.h"
#include "granary/types/arrow_convert.h"

namespace granary {
namespace {

Status ArrowError(const arrow::Status& st) { return Status::Internal(st.ToString()); }

bool Matches(const Value& online, const Value& offline, const VerifyOptions& options) {
  if (online.is_null() || offline.is_null()) return online.is_null() && offline.is_null();
  auto close = [](double a, double b, double tolerance) {
    if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
    return std::fabs(a - b) <= tolerance * std::max(1.0, std::fabs(b));
  };
  if (online.is<double>() && offline.is<double>()) {
    return close(online.get<double>(), offline.get<double>(), options.float64_tolerance);
  }
  if (online.is<float>() && offline.is<float>()) {
    return close(online.get<float>(), offline.get<float>(), options.float32_tolerance);
  }
  return online == offline;
}

// The sampled entities of `view` with data in [start, end]: the join key columns, in a random
// order cut to `sample` rows, as one batch.
Result<std::shared_ptr<arrow::RecordBatch>> SampleEntities(
    const Definitions& defs, OfflineEngine& engine, const FeatureView& view,
    const ViewLayout& layout, std::optional<Timestamp> start, Timestamp end,
    const VerifyOptions& options) {
  LatestRowsRequest request;
  request.view = &view;
  request.start = start;
  request.end = end;
  if (!view.schema.empty()) request.features = {view.schema.front().name};
  GRANARY_ASSIGN_OR_RAISE(auto stream, engine.LatestRows(defs, request));
  GRANARY_ASSIGN_OR_RAISE(auto table, ReadAll(*stream));
  std::vector<int64_t> rows(table->num_rows());
  std::iota(rows.begin(), rows.end(), 0);
  std::mt19937_64 rng(options.seed);
  std::shuffle(rows.begin(), rows.end(), rng);
  if (static_cast<int64_t>(rows.size()) > options.sample) rows.resize(options.sample);
  std::sort(rows.begin(), rows.end());
  arrow::Int64Builder take;
  if (auto st = take.AppendValues(rows); !st.ok()) return ArrowError(st);
  std::shared_ptr<arrow::Array> indices;
  if (auto st = take.Finish(&indices); !st.ok()) return ArrowError(st);
  arrow::FieldVector fields;
  arrow::ArrayVector arrays;
  for (const ViewLayout::Column& key : layout.join_keys()) {
    auto column = table->GetColumnByName(key.name);
    if (column == nullptr) {
      return Status::Internal(
          fmt::format("latest rows of '{}' have no column '{}'", view.name, key.name));
    }
    auto taken = arrow::compute::Take(column, indices);
    if (!taken.ok()) return ArrowError(taken.status());
    auto combined = arrow::Concatenate(taken->chunked_array()->chunks());
    if (!combined.ok()) return ArrowError(combined.status());
    fields.push_back(arrow::field(key.name, (*combined)->type()));
    arrays.push_back(*combined);
  }
  return arrow::RecordBatch::Make(arrow::schema(fields), static_cast<int64_t>(rows.size()),
                                  std::move(arrays));
}

Status VerifyView(const Definitions& defs, OfflineEngine& engine, OnlineStore& store,
                  ManualClock& clock, const FeatureView& view,
                  const std::shared_ptr<const ViewLayout>& layout_ptr, const VerifyOptions& options,
                  ViewVerification* out) {
  const ViewLayout& layout = *layout_ptr;
  const ViewLayout* tiles = layout.tile_layout().get();
  std::optional<Timestamp> start;
  if (tiles != nullptr) {
    start = Timestamp::FromMicros(tiles->tiles()->ExpireBefore(out->at.micros));
  } else if (view.ttl.micros > 0) {
    start = out->at - view.ttl;
  }
  GRANARY_ASSIGN_OR_RAISE(auto keys,
                          SampleEntities(defs, engine, view, layout, start, out->at, options));
  const int64_t n = keys->num_rows();
  out->entities = n;
  if (n == 0) return Status::OK();

  // The layouts read and their features, in order: the plain features, then the aggregations.
  std::vector<const ViewLayout*> parts;
  if (!layout.features().empty()) parts.push_back(&layout);
  if (tiles != nullptr) parts.push_back(tiles);

  // Offline: the point-in-time values at T.
  HistoricalRequest historical;
  {
    arrow::FieldVector fields = keys->schema()->fields();
    arrow::ArrayVector arrays = keys->columns();
    arrow::TimestampBuilder times(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                                  arrow::default_memory_pool());
    for (int64_t i = 0; i < n; ++i) (void)times.Append(out->at.micros);
    std::shared_ptr<arrow::Array> time_array;
    if (auto st = times.Finish(&time_array); !st.ok()) return ArrowError(st);
    fields.push_back(arrow::field("event_timestamp", time_array->type()));
    arrays.push_back(time_array);
    historical.entities = arrow::Table::Make(arrow::schema(fields), arrays, n);
  }
  for (const ViewLayout* part : parts) {
    for (const ViewLayout::Column& f : part->features()) {
      historical.features.push_back(FeatureRef{view.name, f.name});
    }
  }
  historical.entities_name = "the sampled entities";
  GRANARY_ASSIGN_OR_RAISE(auto stream, engine.GetHistoricalFeatures(defs, historical));
  GRANARY_ASSIGN_OR_RAISE(auto offline, ReadAll(*stream));
  if (offline->num_rows() != n) {
    return Status::Internal(fmt::format("{} offline rows for {} entities", offline->num_rows(), n));
  }

  // Online: a read at T.
  GRANARY_ASSIGN_OR_RAISE(EntityKeyColumn key_column, EncodeEntityKeys(layout, *keys));
  auto shared_keys = std::make_shared<const EntityKeyColumn>(std::move(key_column));
  OnlineReadRequest request;
  for (const ViewLayout* part : parts) {
    std::vector<int> all(part->features().size());
    std::iota(all.begin(), all.end(), 0);
    request.views.push_back(
        ViewRead{part == tiles ? layout.tile_layout() : layout_ptr, std::move(all), shared_keys});
  }
  clock.Set(out->at);
  GRANARY_ASSIGN_OR_RAISE(OnlineFeatures online, store.Read(request));

  for (size_t v = 0; v < parts.size(); ++v) {
    const ViewLayout& part = *parts[v];
    for (size_t f = 0; f < part.features().size(); ++f) {
      const ViewLayout::Column& feature = part.features()[f];
      auto column = offline->GetColumnByName(feature.name);
      if (column == nullptr) {
        return Status::Internal("the offline values have no column " + feature.name);
      }
      auto combined = arrow::Concatenate(column->chunks());
      if (!combined.ok()) return ArrowError(combined.status());
      for (int64_t r = 0; r < n; ++r) {
        Value on;
        if (online.status(v, f, r) == FeatureStatus::kPresent) {
          on = online.value(v, f, r).ToValue();
        }
        GRANARY_ASSIGN_OR_RAISE(Value off, ValueAt(**combined, r, feature.type));
        ++out->values;
        if (Matches(on, off, options)) continue;
        ++out->mismatches;
        if (out->examples.size() < 5) {
          std::string key;
          for (int k = 0; k < keys->num_columns(); ++k) {
            GRANARY_ASSIGN_OR_RAISE(Value kv,
                                    ValueAt(*keys->column(k), r, layout.join_keys()[k].type));
            key += fmt::format("{}{}={}", k == 0 ? "" : ",", keys->schema()->field(k)->name(),
                               kv.ToString());
          }
          out->examples.push_back(
              fmt::format("{} {}: online {} ({}), offline {}", key, feature.name, on.ToString(),
                          FeatureStatusName(online.status(v, f, r)), off.ToString()));
        }
      }
    }
  }
  return Status::OK();
}

}  // namespace

Result<VerifyReport> VerifyOnline(const Definitions& defs, OfflineEngine& engine,
                                  OnlineStore& store, ManualClock& clock, RegistryStore& registry,
                                  Duration default_key_ttl, const VerifyOptions& options,
                                  Timestamp now) {
  GRANARY_ASSIGN_OR_RAISE(ViewLayouts layouts, MakeViewLayouts(defs, default_key_ttl));
  for (const std::string& name : options.views) {
    if (layouts.find(name) == layouts.end()) {
      std::vector<std::string> known;
      for (const auto& [n, l] : layouts) known.push_back(n);
      return Status::InvalidArgument(
          fmt::format("--views: '{}' is not an online feature view; the online views are: {}", name,
                      Join(known, ", ")));
    }
  }
  GRANARY_ASSIGN_OR_RAISE(auto states, registry.WatermarkStates());
  VerifyReport report;
  for (const FeatureView& view : defs.feature_views) {
    auto layout = layouts.find(view.name);
    if (layout == layouts.end()) continue;
    if (!options.views.empty() &&
        std::find(options.views.begin(), options.views.end(), view.name) == options.views.end()) {
      continue;
    }
    ViewVerification vv;
    vv.view = view.name;
    auto state = states.find(view.name);
    if (state == states.end()) {
      vv.skipped = "never materialized (run granary materialize first)";
      report.views.push_back(std::move(vv));
      continue;
    }
    if (options.at) {
      vv.at = *options.at;
      vv.at_reason = "--at";
    } else if (layout->second->tile_layout() != nullptr) {
      vv.at = now;
      vv.at_reason = "now";
    } else {
      vv.at = state->second.watermark;
      vv.at_reason = "watermark";
    }
    if (view.has_aggregations() && layout->second->tile_layout() == nullptr) {
      vv.skipped = "its aggregations are not kept online: " + layout->second->tile_error();
      report.views.push_back(std::move(vv));
      continue;
    }
    GRANARY_RETURN_NOT_OK(VerifyView(defs, engine, store, clock, view, layout->second, options, &vv)
                              .WithContext(fmt::format("verifying feature view '{}'", view.name)));
    report.views.push_back(std::move(vv));
  }
  return report;
}

}  // namespace granary
