// ReadDeltaTable: a whole Delta snapshot as one Arrow table (tests, small tables).
#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include "granary/offline/delta_log.h"
#include "granary/offline/source_fragment.h"
#include "granary/types/arrow_convert.h"

namespace granary {
namespace {

// Whether two types have the same layout, children and all, differing at most in field names
// (column mapping gives nested fields physical names).
bool SameShape(const arrow::DataType& a, const arrow::DataType& b) {
  if (a.id() != b.id() || a.num_fields() != b.num_fields()) return false;
  if (a.num_fields() == 0) return a.Equals(b);
  for (int i = 0; i < a.num_fields(); ++i) {
    if (!SameShape(*a.field(i)->type(), *b.field(i)->type())) return false;
  }
  return true;
}

// Gives `data` (and its children) the field names of `type`, which has the same shape.
std::shared_ptr<arrow::ArrayData> Relabel(const std::shared_ptr<arrow::ArrayData>& data,
                                          const std::shared_ptr<arrow::DataType>& type) {
  auto out = data->Copy();
  out->type = type;
  for (size_t i = 0; i < out->child_data.size() && static_cast<int>(i) < type->num_fields(); ++i) {
    out->child_data[i] = Relabel(out->child_data[i], type->field(static_cast<int>(i))->type());
  }
  return out;
}

// Converts `array` to `type`: timestamps through ToUtcMicros (then the schema's time zone),
// everything else with Arrow's cast.
Result<std::shared_ptr<arrow::Array>> ToSchemaType(const std::shared_ptr<arrow::Array>& array,
                                                   const std::shared_ptr<arrow::DataType>& type,
                                                   const std::string& column) {
  // Equals ignores some field names (a map's entries); ToString shows them.
  if (array->type()->Equals(*type) && array->type()->ToString() == type->ToString()) return array;
  if (type->num_fields() > 0 && SameShape(*array->type(), *type)) {
    return arrow::MakeArray(Relabel(array->data(), type));
  }
  if (type->id() == arrow::Type::TIMESTAMP) {
    GRANARY_ASSIGN_OR_RAISE(auto micros, ToUtcMicros(array, column));
    auto data = micros->data()->Copy();
    data->type = type;
    return arrow::MakeArray(data);
  }
  auto cast = arrow::compute::Cast(*array, type, arrow::compute::CastOptions::Safe());
  if (!cast.ok()) {
    return Status::InvalidArgument(fmt::format("column '{}': cannot read {} as {}: {}", column,
                                               array->type()->ToString(), type->ToString(),
                                               cast.status().message()));
  }
  return *cast;
}

}  // namespace

Result<std::shared_ptr<arrow::Table>> ReadDeltaTable(const DeltaSnapshot& snapshot) {
  FragmentRequest request;
  for (const auto& field : snapshot.schema->fields()) {
    request.columns.push_back(snapshot.PhysicalName(field->name()));
  }
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  for (const DeltaDataFile& file : snapshot.files) {
    Fragment fragment;
    fragment.path = file.path;
    fragment.deletion_vector = file.deletion_vector;
    fragment.delta_table = snapshot.table;
    int64_t total = 0, pruned = 0;
    GRANARY_RETURN_NOT_OK(PlanParquetFragment(request, &fragment, &total, &pruned));
    if (fragment.row_groups.empty()) continue;  // every row deleted by its deletion vector
    GRANARY_ASSIGN_OR_RAISE(auto reader, OpenFragment(fragment, request));
    while (true) {
      std::shared_ptr<arrow::RecordBatch> raw;
      auto st = reader->ReadNext(&raw);
      if (!st.ok()) return Status::Corruption(st.message());
      if (raw == nullptr) break;
      std::vector<std::shared_ptr<arrow::Array>> arrays;
      for (const auto& field : snapshot.schema->fields()) {
        const std::string& physical = snapshot.PhysicalName(field->name());
        std::shared_ptr<arrow::Array> source = raw->GetColumnByName(physical);
        if (source == nullptr) {
          auto part = file.partition_values.find(field->name());
          if (part != file.partition_values.end()) {
            std::shared_ptr<arrow::Scalar> scalar =
                part->second ? std::make_shared<arrow::StringScalar>(*part->second)
                             : arrow::MakeNullScalar(arrow::utf8());
            auto repeated = arrow::MakeArrayFromScalar(*scalar, raw->num_rows());
            if (!repeated.ok()) return Status::Internal(repeated.status().ToString());
            source = *repeated;
          }
        }
        if (source == nullptr) {
          auto nulls = arrow::MakeArrayOfNull(field->type(), raw->num_rows());
          if (!nulls.ok()) return Status::Internal(nulls.status().ToString());
          arrays.push_back(*nulls);
          continue;
        }
        auto typed = ToSchemaType(source, field->type(), field->name());
        if (!typed.ok()) return typed.status().WithContext(file.path.string());
        arrays.push_back(*typed);
      }
      arrow::FieldVector fields;
      for (const auto& f : snapshot.schema->fields()) fields.push_back(f->WithNullable(true));
      batches.push_back(arrow::RecordBatch::Make(arrow::schema(fields), raw->num_rows(), arrays));
    }
  }
  arrow::FieldVector fields;
  for (const auto& f : snapshot.schema->fields()) fields.push_back(f->WithNullable(true));
  auto table = arrow::Table::FromRecordBatches(arrow::schema(fields), batches);
  if (!table.ok()) return Status::Internal(table.status().ToString());
  return *table;
}

}  // namespace granary
