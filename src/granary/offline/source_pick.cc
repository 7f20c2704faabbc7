#include "granary/offline/source_pick.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>
#include <parquet/arrow/reader.h>
#include <parquet/arrow/schema.h>
#include <parquet/file_reader.h>
#include <parquet/metadata.h>

#include <algorithm>
#include <set>
#include <string>

#include "granary/offline/chosen_values.h"

namespace granary {
namespace {

// Whether the values of `field` (a top-level column of the file) can be copied from its pages as
// `declared`: a flat leaf the picker supports whose Arrow type in the file is the declared type,
// one of those whose physical values are the Arrow values unchanged.
bool PickableAs(const parquet::arrow::SchemaField& field, const parquet::SchemaDescriptor& schema,
                const arrow::DataType& declared) {
  if (!field.children.empty() || field.column_index < 0) return false;
  switch (declared.id()) {
    case arrow::Type::DOUBLE:
    case arrow::Type::FLOAT:
    case arrow::Type::INT64:
    case arrow::Type::INT32:
      break;
    default:
      return false;
  }
  const parquet::ColumnDescriptor& column = *schema.Column(field.column_index);
  return field.field->type()->Equals(declared) && PickSupports(column) &&
         PickValueWidth(column) == declared.byte_width();
}

// Copies the chosen rows of leaf `leaf` of `row_group` into an array of `type`. NotImplemented
// when a page of the chunk is not supported.
Result<std::shared_ptr<arrow::Array>> PickColumn(parquet::RowGroupReader& row_group, int leaf,
                                                 const std::shared_ptr<arrow::DataType>& type,
                                                 const std::vector<int64_t>& rows,
                                                 arrow::MemoryPool* pool) {
  const auto count = static_cast<int64_t>(rows.size());
  const int width = type->byte_width();
  auto values = arrow::AllocateBuffer(count * width, pool);
  if (!values.ok()) return Status::Internal("out of memory for the chosen values of a column");
  std::vector<uint8_t> valid(rows.size());
  GRANARY_RETURN_NOT_OK(PickChosenValues(row_group, leaf, rows.data(), count,
                                         PickedValues{(*values)->mutable_data(), valid.data()}));
  int64_t nulls = 0;
  for (uint8_t v : valid) nulls += v == 0;
  std::shared_ptr<arrow::Buffer> bitmap;
  if (nulls > 0) {
    auto bits = arrow::AllocateEmptyBitmap(count, pool);
    if (!bits.ok()) return Status::Internal("out of memory for the chosen values of a column");
    uint8_t* out = (*bits)->mutable_data();
    for (int64_t i = 0; i < count; ++i) {
      if (valid[static_cast<size_t>(i)] != 0) arrow::bit_util::SetBit(out, i);
    }
    bitmap = std::move(*bits);
  }
  return arrow::MakeArray(
      arrow::ArrayData::Make(type, count, {std::move(bitmap), std::move(*values)}, nulls));
}

// Reads `leaves` of `row_group` with Arrow's reader, batch by batch, and keeps the rows `rows`:
// one batch of rows.size() rows.
Result<std::shared_ptr<arrow::RecordBatch>> TakeFromRowGroup(parquet::arrow::FileReader& reader,
                                                             int row_group,
                                                             const std::vector<int>& leaves,
                                                             const std::vector<int64_t>& rows,
                                                             arrow::MemoryPool* pool) {
  auto batches = reader.GetRecordBatchReader({row_group}, leaves);
  if (!batches.ok()) return Status::Corruption(batches.status().message());
  arrow::compute::ExecContext context(pool);
  arrow::RecordBatchVector kept;
  int64_t first = 0;  // the row group's row of the batch's first row
  size_t next = 0;    // the first of `rows` not yet kept
  std::vector<int64_t> local;
  while (next < rows.size()) {
    std::shared_ptr<arrow::RecordBatch> batch;
    auto st = (*batches)->ReadNext(&batch);
    if (!st.ok()) return Status::Corruption(st.message());
    if (batch == nullptr) {
      return Status::Corruption(
          fmt::format("row group {} ends before its row {}", row_group, rows[next]));
    }
    const int64_t end = first + batch->num_rows();
    local.clear();
    for (; next < rows.size() && rows[next] < end; ++next) local.push_back(rows[next] - first);
    first = end;
    if (local.empty()) continue;
    arrow::Int64Builder indices(pool);
    if (!indices.AppendValues(local).ok()) return Status::Internal("out of memory");
    std::shared_ptr<arrow::Array> index_array;
    if (!indices.Finish(&index_array).ok()) return Status::Internal("out of memory");
    auto taken = arrow::compute::Take(batch, index_array,
                                      arrow::compute::TakeOptions::NoBoundsCheck(), &context);
    if (!taken.ok()) return Status::Internal(taken.status().ToString());
    kept.push_back(taken->record_batch());
  }
  auto schema = (*batches)->schema();
  if (kept.size() == 1) return kept[0];
  auto table = arrow::Table::FromRecordBatches(schema, kept);
  if (!table.ok()) return Status::Internal(table.status().ToString());
  auto combined = (*table)->CombineChunksToBatch(pool);
  if (!combined.ok()) return Status::Internal(combined.status().ToString());
  return *combined;
}

}  // namespace

Result<std::shared_ptr<arrow::RecordBatch>> ReadChosenRows(
    const OpenedParquet& opened, const Fragment& fragment, const FragmentRequest& request,
    int row_group, const std::vector<int64_t>& rows, int* columns_picked) {
  int picked_count = 0;
  const std::string path = fragment.path.string();
  arrow::MemoryPool* pool = request.pool != nullptr ? request.pool : arrow::default_memory_pool();
  try {
    parquet::arrow::FileReader& reader = *opened.reader;
    const parquet::arrow::SchemaManifest& manifest = reader.manifest();
    const parquet::SchemaDescriptor& schema = *opened.metadata->schema();
    std::shared_ptr<parquet::RowGroupReader> pages = reader.parquet_reader()->RowGroup(row_group);
    const std::set<std::string> wanted(request.columns.begin(), request.columns.end());
    // The file's requested columns in file order (as Arrow's reader returns them).
    arrow::FieldVector fields;
    arrow::ArrayVector arrays;
    std::vector<int> fallback_leaves;
    for (const parquet::arrow::SchemaField& field : manifest.schema_fields) {
      const std::string& name = field.field->name();
      if (wanted.count(name) == 0) continue;
      fields.push_back(field.field);
      arrays.push_back(nullptr);
      auto declared = request.pick_types.find(name);
      if (declared != request.pick_types.end() && PickableAs(field, schema, *declared->second)) {
        auto picked = PickColumn(*pages, field.column_index, field.field->type(), rows, pool);
        if (picked.ok()) {
          arrays.back() = std::move(*picked);
          ++picked_count;
          continue;
        }
        if (picked.status().code() != StatusCode::kNotImplemented) {
          return Status::Corruption(
              fmt::format("{}: row group {}: {}", path, row_group, picked.status().message()));
        }
      }
      CollectLeaves(field, &fallback_leaves);
    }
    if (!fallback_leaves.empty()) {
      std::sort(fallback_leaves.begin(), fallback_leaves.end());
      fallback_leaves.erase(std::unique(fallback_leaves.begin(), fallback_leaves.end()),
                            fallback_leaves.end());
      auto taken = TakeFromRowGroup(reader, row_group, fallback_leaves, rows, pool);
      if (!taken.ok()) {
        return Status::Corruption(
            fmt::format("{}: row group {}: {}", path, row_group, taken.status().message()));
      }
      for (size_t c = 0; c < fields.size(); ++c) {
        if (arrays[c] != nullptr) continue;
        arrays[c] = (*taken)->GetColumnByName(fields[c]->name());
        if (arrays[c] == nullptr) {
          return Status::Internal(fmt::format("{}: Arrow's reader did not return column '{}'", path,
                                              fields[c]->name()));
        }
        fields[c] = (*taken)->schema()->GetFieldByName(fields[c]->name());
      }
    }
    if (columns_picked != nullptr) *columns_picked = picked_count;
    return arrow::RecordBatch::Make(arrow::schema(std::move(fields)),
                                    static_cast<int64_t>(rows.size()), std::move(arrays));
  } catch (...) {
    return ParquetReadFailure(fragment);
  }
}

}  // namespace granary
