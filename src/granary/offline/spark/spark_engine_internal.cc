#include "granary/offline/spark/spark_engine_internal.h"

#include <arrow/compute/api.h>
#include <fmt/format.h>

#include "granary/types/arrow_convert.h"

namespace granary::spark_engine {

Status FromArrow(const arrow::Status& st, std::string_view what) {
  if (st.ok()) return Status::OK();
  return Status::Internal(fmt::format("{}: {}", what, st.ToString()));
}

Result<std::shared_ptr<arrow::Array>> Combined(const std::shared_ptr<arrow::ChunkedArray>& column) {
  if (column->num_chunks() == 1) return column->chunk(0);
  auto out = arrow::Concatenate(column->chunks());
  if (!out.ok()) return FromArrow(out.status(), "combining a column");
  return *out;
}

Result<spark_sql::JoinView> MakeJoinView(const Definitions& defs, const FeatureView& view,
                                         const std::vector<std::string>& features) {
  spark_sql::JoinView out;
  out.view = &view;
  out.source = defs.FindOfflineSource(view.source);
  if (out.source == nullptr) {
    return Status::InvalidArgument(
        fmt::format("feature view '{}': its source '{}' is not defined", view.name, view.source));
  }
  for (const auto& entity_name : view.entities) {
    const Entity* entity = defs.FindEntity(entity_name);
    if (entity == nullptr) {
      return Status::InvalidArgument(
          fmt::format("feature view '{}': its entity '{}' is not defined", view.name, entity_name));
    }
    for (size_t k = 0; k < entity->join_keys.size(); ++k) {
      out.join_keys.push_back(entity->join_keys[k]);
      out.join_key_types.push_back(entity->join_key_types[k]);
    }
  }
  for (const auto& f : features) {
    // A plain feature (the point-in-time join) or a window aggregation (spark_aggregations.h).
    const Field* field = view.FindFeature(f);
    const Aggregation* aggregation = field == nullptr ? view.FindAggregation(f) : nullptr;
    if (field == nullptr && (aggregation == nullptr || !aggregation->type)) {
      return Status::InvalidArgument(
          fmt::format("feature view '{}' has no feature '{}'", view.name, f));
    }
    out.features.push_back(f);
    out.feature_types.push_back(field != nullptr ? field->type : *aggregation->type);
    out.aggregations.push_back(aggregation);
  }
  return out;
}

Result<std::shared_ptr<arrow::Array>> ToGranaryType(const std::shared_ptr<arrow::Array>& array,
                                                    ValueType type, std::string_view column) {
  if (array->type()->Equals(*ToArrowType(type))) return array;
  return CastToValueType(array, type, column);
}

Status CountSummary(const arrow::RecordBatch& batch, std::vector<OfflineReadStats>* stats) {
  for (size_t i = 0; i < stats->size(); ++i) {
    for (bool matched : {true, false}) {
      const int c = batch.schema()->GetFieldIndex(matched ? spark_sql::MatchedColumn(i)
                                                          : spark_sql::WithEventsColumn(i));
      if (c < 0) continue;
      if (batch.column(c)->type_id() != arrow::Type::BOOL) {
        return Status::Internal(fmt::format("the cluster returned {} as {}, not a boolean",
                                            batch.schema()->field(c)->name(),
                                            batch.column(c)->type()->ToString()));
      }
      const int64_t n = static_cast<const arrow::BooleanArray&>(*batch.column(c)).true_count();
      (matched ? (*stats)[i].rows_matched : (*stats)[i].rows_with_events) += n;
    }
  }
  return Status::OK();
}

}  // namespace granary::spark_engine
