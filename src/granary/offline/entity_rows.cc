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
  GRANARY_ASSIGN_OR_RAISE(std::shared_ptr<arrow::Array> raw,
                          CombinedChunks(*entities.column(out.time_index)));
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

Result<std::shared_ptr<arrow::Array>> CombinedChunks(const arrow::ChunkedArray& column) {
  if (column.num_chunks() == 1) return column.chunk(0);
  if (column.num_chunks() == 0) {
    auto empty = arrow::MakeArrayOfNull(column.type(), 0);
    if (!empty.ok()) return Status::Internal(empty.status().ToString());
    return *empty;
  }
  // Consecutive slices of one array: chunk c's data differs from chunk 0's only in offset,
  // length and null count, and starts where chunk c - 1 ended.
  const arrow::ArrayData& first = *column.chunk(0)->data();
  bool contiguous = true;
  int64_t length = 0, null_count = 0;
  for (int c = 0; c < column.num_chunks() && contiguous; ++c) {
    const arrow::ArrayData& data = *column.chunk(c)->data();
    contiguous = data.offset == first.offset + length && data.buffers == first.buffers &&
                 data.child_data == first.child_data && data.dictionary == first.dictionary &&
                 data.type->Equals(*first.type);
    length += data.length;
    const int64_t nulls = data.GetNullCount();
    null_count += nulls;
  }
  if (contiguous) {
    auto data = first.Copy();
    data->length = length;
    data->null_count = null_count;
    return arrow::MakeArray(std::move(data));
  }
  auto combined = arrow::Concatenate(column.chunks());
  if (!combined.ok()) return Status::Internal(combined.status().ToString());
  return *combined;
}

Result<std::shared_ptr<arrow::Table>> CompactChunks(std::shared_ptr<arrow::Table> table) {
  std::shared_ptr<arrow::Schema> schema = table->schema();
  const int64_t rows = table->num_rows();
  arrow::ChunkedArrayVector columns = table->columns();
  table.reset();
  for (auto& column : columns) {
    if (column->num_chunks() <= 1) continue;
    GRANARY_ASSIGN_OR_RAISE(std::shared_ptr<arrow::Array> whole, CombinedChunks(*column));
    arrow::ArrayVector chunks;
    int64_t at = 0;
    for (const auto& chunk : column->chunks()) {
      chunks.push_back(whole->Slice(at, chunk->length()));
      at += chunk->length();
    }
    column = std::make_shared<arrow::ChunkedArray>(std::move(chunks), whole->type());
  }
  return arrow::Table::Make(std::move(schema), std::move(columns), rows);
}

}  // namespace granary
