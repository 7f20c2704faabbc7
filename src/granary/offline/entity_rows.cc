#include "granary/offline/entity_rows.h"

#include <arrow/api.h>

#include <algorithm>

#include "granary/offline/offline_engine.h"
#include "granary/types/arrow_convert.h"

namespace granary {

Result<EntityRows> NormalizeEntityRows(const arrow::Table& entities,
                                       const std::string& entities_name) {
  const arrow::Schema& schema = *entities.schema();
  EntityRows out;
  GRANARY_ASSIGN_OR_RAISE(out.time_index, EntityTimeColumn(schema));
  const std::string& time_name = schema.field(out.time_index)->name();
  const auto& column = entities.column(out.time_index);
  std::shared_ptr<arrow::Array> raw;
  if (column->num_chunks() == 1) {
    raw = column->chunk(0);
  } else {
    auto combined = column->num_chunks() == 0 ? arrow::MakeArrayOfNull(column->type(), 0)
                                              : arrow::Concatenate(column->chunks());
    if (!combined.ok()) return Status::Internal(combined.status().ToString());
    raw = *combined;
  }
  auto time = ToUtcMicros(raw, time_name);
  if (!time.ok()) return time.status().WithContext(entities_name);
  out.time = std::move(*time);
  const int64_t* t = out.time->data()->GetValues<int64_t>(1);
  for (int64_t i = 0; i < out.time->length(); ++i) {
    if (out.time->IsNull(i)) continue;
    const Timestamp at = Timestamp::FromMicros(t[i]);
    out.min_time = std::min(out.min_time.value_or(at), at);
    out.max_time = std::max(out.max_time.value_or(at), at);
  }
  for (int i = 0; i < schema.num_fields(); ++i) {
    if (i == out.time_index) {
      out.fields.push_back(arrow::field(time_name, out.time->type()));
      out.columns.push_back(std::make_shared<arrow::ChunkedArray>(out.time));
    } else {
      out.fields.push_back(schema.field(i));
      out.columns.push_back(entities.column(i));
    }
  }
  return out;
}

}  // namespace granary
