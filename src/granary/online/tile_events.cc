#include "granary/online/tile_events.h"

#include <arrow/api.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "granary/types/arrow_convert.h"

namespace granary {

Status AddEventsToTiles(const ViewLayout& tiles_view, const FeatureView& view,
                        const arrow::RecordBatch& batch, aggregation::TileAccumulator* acc) {
  GRANARY_ASSIGN_OR_RAISE(EntityKeyColumn key_column, EncodeEntityKeys(tiles_view, batch));
  std::vector<std::string> keys;
  keys.reserve(key_column.size());
  for (size_t i = 0; i < key_column.size(); ++i) keys.emplace_back(key_column.key(i));
  auto times_column = batch.GetColumnByName("event_timestamp");
  if (times_column == nullptr) {
    return Status::InvalidArgument(
        fmt::format("feature view '{}': the events have no column 'event_timestamp'", view.name));
  }
  GRANARY_ASSIGN_OR_RAISE(auto times, ToUtcMicros(times_column, "event_timestamp"));
  if (times->null_count() > 0) {
    for (int64_t i = 0; i < times->length(); ++i) {
      if (times->IsNull(i)) {
        return Status::InvalidArgument(
            fmt::format("feature view '{}': event row {} has no event_timestamp; every event of an "
                        "aggregation view needs its time",
                        view.name, i));
      }
    }
  }
  auto column = [&](const std::string& name,
                    bool is_where) -> Result<std::shared_ptr<arrow::Array>> {
    if (name.empty()) return std::shared_ptr<arrow::Array>();
    auto array = batch.GetColumnByName(name);
    if (array == nullptr) {
      return Status::InvalidArgument(
          fmt::format("feature view '{}': the events have no column '{}', which its "
                      "aggregations read; the columns are: {}",
                      view.name, name, fmt::join(batch.schema()->field_names(), ", ")));
    }
    if (is_where && array->type_id() != arrow::Type::BOOL) {
      return Status::InvalidArgument(
          fmt::format("feature view '{}': the events' column '{}' is a `where` of its "
                      "aggregations and must be bool, not {}",
                      view.name, name, array->type()->ToString()));
    }
    return array;
  };
  std::vector<std::shared_ptr<arrow::Array>> values, wheres;
  for (const Aggregation& a : view.aggregations) {
    GRANARY_ASSIGN_OR_RAISE(auto v, column(a.column, false));
    GRANARY_ASSIGN_OR_RAISE(auto w, column(a.where, true));
    values.push_back(std::move(v));
    wheres.push_back(std::move(w));
  }
  const int64_t* micros = times->data()->GetValues<int64_t>(1);
  return acc->Add(keys, micros, values, wheres);
}

void TileWrites(const aggregation::TileSpec& spec, const aggregation::TileAccumulator& acc,
                EntityKeyColumn* keys, std::vector<std::string>* records,
                std::optional<aggregation::RollupRange> rollups) {
  for (const auto& [key, tiles] : acc.entities()) {
    keys->buffer()->append(key);
    keys->FinishKey();
    records->emplace_back();
    aggregation::EncodeTileRecords(spec, tiles, &records->back(), rollups);
  }
}

}  // namespace granary
