#include "granary/push/push.h"

#include <arrow/api.h>
#include <fmt/format.h>

#include <optional>
#include <set>

#include "granary/common/strings.h"
#include "granary/online/tile_events.h"
#include "granary/types/arrow_convert.h"

namespace granary {

std::string_view PushTargetName(PushTarget to) {
  switch (to) {
    case PushTarget::kOnline:
      return "online";
    case PushTarget::kOffline:
      return "offline";
    case PushTarget::kOnlineAndOffline:
      return "online_and_offline";
  }
  return "online";
}

Result<PushTarget> ParsePushTarget(std::string_view text) {
  for (PushTarget t : {PushTarget::kOnline, PushTarget::kOffline, PushTarget::kOnlineAndOffline}) {
    if (text == PushTargetName(t)) return t;
  }
  return Status::InvalidArgument(fmt::format(
      "to: '{}' is not a push target; use \"online\", \"offline\" or \"online_and_offline\"",
      text));
}

Result<std::map<std::string, ValueType>> PushColumnTypes(const Definitions& defs,
                                                         const std::string& push_source) {
  const DataSource* push = defs.FindDataSource(push_source);
  if (push == nullptr || !push->is_push()) {
    std::vector<std::string> names;
    for (const DataSource& s : defs.data_sources) {
      if (s.is_push()) names.push_back(s.name);
    }
    return Status::InvalidArgument(
        fmt::format("push_source_name: '{}' is not {}{}; the push sources are: {}", push_source,
                    push == nullptr ? "a data source" : "a push source (type: push)",
                    DidYouMean(push_source, names),
                    names.empty() ? "none (define one with type: push)" : Join(names, ", ")));
  }
  const DataSource* batch = defs.FindOfflineSource(push_source);
  if (batch == nullptr) {
    return Status::FailedPrecondition(
        fmt::format("push source '{}' names batch_source '{}', which is not defined", push_source,
                    push->batch_source));
  }
  std::map<std::string, ValueType> types;
  const ValueType timestamp = ValueType::Scalar(ScalarType::kTimestamp);
  types[batch->SourceColumnFor(batch->timestamp_field)] = timestamp;
  if (!batch->created_timestamp_column.empty()) {
    types[batch->SourceColumnFor(batch->created_timestamp_column)] = timestamp;
  }
  for (const FeatureView& v : defs.feature_views) {
    if (v.source != push_source) continue;
    for (const std::string& e : v.entities) {
      const Entity* entity = defs.FindEntity(e);
      if (entity == nullptr) continue;
      for (size_t i = 0; i < entity->join_keys.size() && i < entity->join_key_types.size(); ++i) {
        types.emplace(batch->SourceColumnFor(entity->join_keys[i]), entity->join_key_types[i]);
      }
    }
    for (const Field& f : v.schema) types.emplace(batch->SourceColumnFor(f.name), f.type);
  }
  return types;
}

namespace {

struct ViewBatch {
  const ViewLayout* layout;
  std::shared_ptr<arrow::RecordBatch> rows;
};

// The rows of one online view, as OnlineStore::WriteBatch takes them.
Result<ViewBatch> BatchForView(const DataSource& batch, const std::string& push_source,
                               const ViewLayout& layout, const arrow::Table& rows) {
  arrow::FieldVector fields;
  arrow::ArrayVector arrays;
  auto column = [&](const std::string& name,
                    const char* role) -> Result<std::shared_ptr<arrow::Array>> {
    const std::string source_column = batch.SourceColumnFor(name);
    auto c = rows.GetColumnByName(source_column);
    if (c == nullptr) {
      return Status::InvalidArgument(fmt::format(
          "df: missing column '{}' ({} of feature view '{}', which reads push source '{}'); "
          "the df has: {}",
          source_column, role, layout.name(), push_source,
          Join(rows.schema()->field_names(), ", ")));
    }
    if (c->num_chunks() == 1) return c->chunk(0);
    auto combined = arrow::Concatenate(c->chunks());
    if (!combined.ok()) return Status::Internal(combined.status().ToString());
    return *combined;
  };
  auto no_nulls = [&](const arrow::Array& a, const std::string& name) -> Status {
    if (a.null_count() == 0) return Status::OK();
    for (int64_t i = 0; i < a.length(); ++i) {
      if (a.IsNull(i)) {
        return Status::InvalidArgument(
            fmt::format("df.{}[{}]: must not be null (every pushed row needs it)",
                        batch.SourceColumnFor(name), i));
      }
    }
    return Status::OK();
  };
  for (const ViewLayout::Column& key : layout.join_keys()) {
    GRANARY_ASSIGN_OR_RAISE(auto raw, column(key.name, "a join key"));
    GRANARY_ASSIGN_OR_RAISE(
        auto typed, CastToValueType(raw, key.type, "df." + batch.SourceColumnFor(key.name)));
    GRANARY_RETURN_NOT_OK(no_nulls(*typed, key.name));
    fields.push_back(arrow::field(key.name, typed->type()));
    arrays.push_back(std::move(typed));
  }
  {
    GRANARY_ASSIGN_OR_RAISE(auto raw, column(batch.timestamp_field, "the timestamp_field"));
    GRANARY_ASSIGN_OR_RAISE(auto typed,
                            ToUtcMicros(raw, "df." + batch.SourceColumnFor(batch.timestamp_field)));
    GRANARY_RETURN_NOT_OK(no_nulls(*typed, batch.timestamp_field));
    fields.push_back(arrow::field("event_timestamp", typed->type()));
    arrays.push_back(std::move(typed));
  }
  if (!batch.created_timestamp_column.empty() &&
      rows.GetColumnByName(batch.SourceColumnFor(batch.created_timestamp_column)) != nullptr) {
    GRANARY_ASSIGN_OR_RAISE(auto raw, column(batch.created_timestamp_column, "the created time"));
    GRANARY_ASSIGN_OR_RAISE(
        auto typed,
        ToUtcMicros(raw, "df." + batch.SourceColumnFor(batch.created_timestamp_column)));
    fields.push_back(arrow::field("created_timestamp", typed->type()));
    arrays.push_back(std::move(typed));
  }
  for (const ViewLayout::Column& f : layout.features()) {
    GRANARY_ASSIGN_OR_RAISE(auto raw, column(f.name, "a feature"));
    GRANARY_ASSIGN_OR_RAISE(auto typed,
                            CastToValueType(raw, f.type, "df." + batch.SourceColumnFor(f.name)));
    fields.push_back(arrow::field(f.name, typed->type()));
    arrays.push_back(std::move(typed));
  }
  return ViewBatch{
      &layout, arrow::RecordBatch::Make(arrow::schema(fields), rows.num_rows(), std::move(arrays))};
}

// The events of one view with aggregations, as AddEventsToTiles takes them: join keys,
// event_timestamp, and each column the aggregations read, typed as the aggregation that fixes the
// column's type says (sum, min, max, first, last), as bool for a `where`, else as pushed.
Result<std::shared_ptr<arrow::RecordBatch>> EventsForView(const DataSource& batch,
                                                          const std::string& push_source,
                                                          const FeatureView& view,
                                                          const ViewLayout& tiles,
                                                          const arrow::Table& rows) {
  arrow::FieldVector fields;
  arrow::ArrayVector arrays;
  std::set<std::string> done;
  auto add = [&](const std::string& name, std::optional<ValueType> type,
                 const char* role) -> Status {
    if (name.empty() || !done.insert(name).second) return Status::OK();
    const std::string source_column = batch.SourceColumnFor(name);
    auto c = rows.GetColumnByName(source_column);
    if (c == nullptr) {
      return Status::InvalidArgument(fmt::format(
          "df: missing column '{}' ({} of feature view '{}', which reads push source '{}'); "
          "the df has: {}",
          source_column, role, view.name, push_source, Join(rows.schema()->field_names(), ", ")));
    }
    std::shared_ptr<arrow::Array> raw;
    if (c->num_chunks() == 1) {
      raw = c->chunk(0);
    } else {
      auto combined = arrow::Concatenate(c->chunks());
      if (!combined.ok()) return Status::Internal(combined.status().ToString());
      raw = *combined;
    }
    if (name == batch.timestamp_field) {
      GRANARY_ASSIGN_OR_RAISE(raw, ToUtcMicros(raw, "df." + source_column));
    } else if (type) {
      GRANARY_ASSIGN_OR_RAISE(raw, CastToValueType(raw, *type, "df." + source_column));
    }
    fields.push_back(
        arrow::field(name == batch.timestamp_field ? "event_timestamp" : name, raw->type()));
    arrays.push_back(std::move(raw));
    return Status::OK();
  };
  for (const ViewLayout::Column& key : tiles.join_keys()) {
    GRANARY_RETURN_NOT_OK(add(key.name, key.type, "a join key"));
  }
  GRANARY_RETURN_NOT_OK(add(batch.timestamp_field, std::nullopt, "the timestamp_field"));
  for (const Aggregation& a : view.aggregations) {
    GRANARY_RETURN_NOT_OK(add(a.where, ValueType::Scalar(ScalarType::kBool), "a `where`"));
  }
  for (bool typed_pass : {true, false}) {
    for (const Aggregation& a : view.aggregations) {
      const bool fixes_type =
          a.function == AggregationFunction::kSum || a.function == AggregationFunction::kMin ||
          a.function == AggregationFunction::kMax || a.function == AggregationFunction::kFirst ||
          a.function == AggregationFunction::kLast;
      if (typed_pass != fixes_type) continue;
      GRANARY_RETURN_NOT_OK(
          add(a.column, fixes_type ? a.type : std::nullopt, "a column of its aggregations"));
    }
  }
  return arrow::RecordBatch::Make(arrow::schema(fields), rows.num_rows(), std::move(arrays));
}

// Rows bound for the offline source alone must still carry what every reader of the source needs:
// the join keys of the views that read it and the event time, never null (the same messages as
// the online path).
Status CheckOfflineRows(const Definitions& defs, const DataSource& batch,
                        const std::string& push_source, const arrow::Table& rows) {
  std::vector<std::string> required;
  for (const FeatureView& v : defs.feature_views) {
    if (v.source != push_source) continue;
    for (const std::string& entity_name : v.entities) {
      const Entity* entity = defs.FindEntity(entity_name);
      if (entity == nullptr) continue;
      for (const std::string& key : entity->join_keys) required.push_back(key);
    }
  }
  required.push_back(batch.timestamp_field);
  for (const std::string& name : required) {
    const std::string column = batch.SourceColumnFor(name);
    auto c = rows.GetColumnByName(column);
    if (c == nullptr) {
      return Status::InvalidArgument(
          fmt::format("df: missing column '{}' (needed by the readers of push source '{}'); the "
                      "df has: {}",
                      column, push_source, Join(rows.schema()->field_names(), ", ")));
    }
    if (c->null_count() == 0) continue;
    int64_t row = 0;
    for (const auto& chunk : c->chunks()) {
      for (int64_t i = 0; i < chunk->length(); ++i, ++row) {
        if (chunk->IsNull(i)) {
          return Status::InvalidArgument(
              fmt::format("df.{}[{}]: must not be null (every pushed row needs it)", column, row));
        }
      }
    }
  }
  return Status::OK();
}

}  // namespace

Result<PushResult> Push(const PushContext& context, const std::string& push_source_name,
                        const arrow::Table& rows, PushTarget to) {
  const Definitions& defs = *context.definitions;
  GRANARY_RETURN_NOT_OK(PushColumnTypes(defs, push_source_name).status());
  const DataSource* batch = defs.FindOfflineSource(push_source_name);
  if (rows.num_rows() == 0) {
    return Status::InvalidArgument("the pushed rows are empty; give at least one row");
  }
  if (context.max_clock_skew.micros < 0) {
    return Status::InvalidArgument(
        fmt::format("the clock-skew tolerance of a push must not be negative, not {}",
                    FormatDuration(context.max_clock_skew)));
  }
  // Check and convert everything before writing anything.
  std::vector<std::string> times = {batch->SourceColumnFor(batch->timestamp_field)};
  if (!batch->created_timestamp_column.empty()) {
    times.push_back(batch->SourceColumnFor(batch->created_timestamp_column));
  }
  GRANARY_RETURN_NOT_OK(CheckNotInTheFuture(rows, times, *context.clock, context.max_clock_skew));
  PushResult result;
  result.rows = rows.num_rows();
  std::vector<ViewBatch> batches;
  // Views with aggregations: their tiles, built before anything is written.
  struct TileBatch {
    const ViewLayout* tiles;
    EntityKeyColumn keys;
    std::vector<std::string> records;
  };
  std::vector<TileBatch> tile_batches;
  if (to != PushTarget::kOffline) {
    for (const FeatureView& v : defs.feature_views) {
      if (v.source != push_source_name || !v.online) continue;
      auto layout = context.layouts->find(v.name);
      if (layout == context.layouts->end()) continue;
      if (!v.schema.empty() || !v.has_aggregations()) {
        GRANARY_ASSIGN_OR_RAISE(ViewBatch b,
                                BatchForView(*batch, push_source_name, *layout->second, rows));
        batches.push_back(std::move(b));
      }
      if (const auto& tiles = layout->second->tile_layout()) {
        GRANARY_ASSIGN_OR_RAISE(auto events,
                                EventsForView(*batch, push_source_name, v, *tiles, rows));
        aggregation::TileAccumulator acc(*tiles->tiles());
        GRANARY_RETURN_NOT_OK(AddEventsToTiles(*tiles, v, *events, &acc));
        TileBatch t{tiles.get(), {}, {}};
        TileWrites(*tiles->tiles(), acc, &t.keys, &t.records);
        tile_batches.push_back(std::move(t));
      }
      result.views.push_back(v.name);
    }
    if (batches.empty() && tile_batches.empty()) {
      return Status::InvalidArgument(fmt::format(
          "no online feature view reads push source '{}', so there is nothing to write online; "
          "set source: {} (and online: true) on a view, or push with \"to\": \"offline\"",
          push_source_name, push_source_name));
    }
  }
  if (to == PushTarget::kOffline) {
    GRANARY_RETURN_NOT_OK(CheckOfflineRows(defs, *batch, push_source_name, rows));
  }
  if (to != PushTarget::kOnline) {
    if (context.engine == nullptr) {
      return Status::Internal("push: no offline engine to append the rows with");
    }
    auto appended = context.engine->Append(*batch, rows, *context.clock);
    if (!appended.ok()) {
      return appended.status().WithContext(
          fmt::format("offline append to data source '{}'", batch->name));
    }
    result.offline = std::move(*appended);
  }
  for (const ViewBatch& b : batches) {
    auto stats = context.store->WriteBatch(*b.layout, *b.rows);
    if (!stats.ok()) {
      return stats.status().WithContext(fmt::format(
          "online write of feature view '{}'{}", b.layout->name(),
          to == PushTarget::kOnlineAndOffline ? " (the rows were appended offline)" : ""));
    }
    result.online += *stats;
  }
  for (TileBatch& t : tile_batches) {
    // A push adds its events to the stored tiles; tiles no read at now needs any more go.
    TileWriteOptions add;
    add.expire_before =
        Timestamp::FromMicros(t.tiles->tiles()->ExpireBefore(context.clock->Now().micros));
    auto written = context.store->WriteTiles(*t.tiles, t.keys, t.records, add);
    if (!written.ok()) {
      return written.status().WithContext(fmt::format(
          "online tiles of feature view '{}'{}", t.tiles->name(),
          to == PushTarget::kOnlineAndOffline ? " (the rows were appended offline)" : ""));
    }
    result.online.written += *written;
  }
  if (context.log != nullptr && !result.views.empty()) {
    context.log->Record(result.views, result.rows);
  }
  return result;
}

Status CheckNotInTheFuture(const arrow::Table& rows, const std::vector<std::string>& columns,
                           const Clock& clock, Duration max_clock_skew) {
  const Timestamp now = clock.Now();
  const Timestamp limit = now + max_clock_skew;
  for (const std::string& column : columns) {
    auto c = rows.GetColumnByName(column);
    if (c == nullptr) continue;  // a missing column is reported by the checks that need it
    int64_t row = 0;
    for (const auto& chunk : c->chunks()) {
      GRANARY_ASSIGN_OR_RAISE(auto micros, ToUtcMicros(chunk, "df." + column));
      const auto& times = static_cast<const arrow::TimestampArray&>(*micros);
      for (int64_t i = 0; i < times.length(); ++i, ++row) {
        if (times.IsNull(i) || times.Value(i) <= limit.micros) continue;
        return Status::InvalidArgument(fmt::format(
            "df.{}[{}]: {} is in the future (now is {}; pushed times may be at most {} ahead, "
            "the clock-skew tolerance): it would shadow every real value of the entity until "
            "then; fix the producer's clock or its time zone, or raise the tolerance (granary "
            "serve --push-max-clock-skew, push(max_clock_skew=...) in the SDK)",
            column, row, FormatTimestamp(Timestamp::FromMicros(times.Value(i))),
            FormatTimestamp(now), FormatDuration(max_clock_skew)));
      }
    }
  }
  return Status::OK();
}

}  // namespace granary
