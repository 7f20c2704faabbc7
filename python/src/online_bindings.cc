// FeatureStoreCore.get_online_features: the same resolution and validation as the CLI and the
// feature server (OnlineFeaturesService::Resolve), OnlineStore::Read, and the answer as one Arrow
// table: entity columns, feature values, then one status and one event-time column per feature.
#include <arrow/api.h>
#include <fmt/format.h>

#include "bindings.h"
#include "feature_store_core.h"
#include "granary/serving/json_format.h"
#include "granary/types/arrow_convert.h"

namespace granary::python {
namespace {

using EntityColumn = OnlineFeaturesRequest::EntityColumn;

// A Python value as a request value; the service then checks it against the join key's type,
// as it checks JSON values (bytes travel as base64 and times as ISO 8601 text, as in JSON).
Value ToRequestValue(nb::handle v, const std::string& column, size_t index) {
  PyObject* o = v.ptr();
  if (o == Py_None) return Value();
  if (PyBool_Check(o)) return Value(o == Py_True);
  if (PyLong_Check(o)) {
    int overflow = 0;
    long long n = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow != 0) {
      ThrowIfError(Status::InvalidArgument(fmt::format(
          "entities.{}[{}]: {} is out of the int64 range", column, index, nb::str(v).c_str())));
    }
    return Value(static_cast<int64_t>(n));
  }
  if (PyFloat_Check(o)) return Value(PyFloat_AsDouble(o));
  if (PyUnicode_Check(o)) {
    Py_ssize_t size = 0;
    const char* data = PyUnicode_AsUTF8AndSize(o, &size);
    if (data == nullptr) throw nb::python_error();
    return Value(std::string(data, static_cast<size_t>(size)));
  }
  if (PyBytes_Check(o)) {
    std::string text;
    serving::AppendBase64(std::string_view(PyBytes_AsString(o), PyBytes_Size(o)), &text);
    return Value(std::move(text));
  }
  if (nb::hasattr(v, "isoformat")) {  // datetime.datetime, pandas.Timestamp
    return Value(nb::cast<std::string>(v.attr("isoformat")()));
  }
  ThrowIfError(Status::InvalidArgument(fmt::format(
      "entities.{}[{}]: a value of type {} cannot be a join key; give int, float, str, bytes, "
      "bool or datetime values",
      column, index, nb::type_name(v.type()).c_str())));
  return Value();
}

// The read's answer as one table (see the file comment); NOT_FOUND rows have a null time.
Result<std::shared_ptr<arrow::Table>> ResponseTable(const ResolvedOnlineRequest& request,
                                                    const OnlineFeatures& features) {
  arrow::FieldVector fields;
  arrow::ChunkedArrayVector columns;
  auto add = [&](const std::string& name, std::shared_ptr<arrow::Array> array) {
    fields.push_back(arrow::field(name, array->type()));
    columns.push_back(std::make_shared<arrow::ChunkedArray>(std::move(array)));
  };
  for (const EntityColumn& column : request.entities) {
    GRANARY_ASSIGN_OR_RAISE(auto array, MakeArray(column.values.front().type(), column.values));
    add(column.name, std::move(array));
  }
  for (const auto& column : request.columns) {
    GRANARY_ASSIGN_OR_RAISE(auto array, features.ToArrow(column.view, column.feature));
    add(column.name, std::move(array));
  }
  const size_t n = request.num_rows;
  arrow::StringBuilder names;
  for (int s = 0; s <= static_cast<int>(FeatureStatus::kOutsideMaxAge); ++s) {
    if (!names.Append(std::string(FeatureStatusName(static_cast<FeatureStatus>(s)))).ok()) {
      return Status::Internal("out of memory");
    }
  }
  std::shared_ptr<arrow::Array> dictionary;
  if (!names.Finish(&dictionary).ok()) return Status::Internal("out of memory");
  const auto status_type = arrow::dictionary(arrow::int8(), arrow::utf8());
  for (const auto& column : request.columns) {
    arrow::Int8Builder codes;
    if (!codes.Resize(static_cast<int64_t>(n)).ok()) return Status::Internal("out of memory");
    for (size_t r = 0; r < n; ++r) {
      codes.UnsafeAppend(static_cast<int8_t>(features.status(column.view, column.feature, r)));
    }
    std::shared_ptr<arrow::Array> indices;
    if (!codes.Finish(&indices).ok()) return Status::Internal("out of memory");
    auto statuses = arrow::DictionaryArray::FromArrays(status_type, indices, dictionary);
    if (!statuses.ok()) return Status::Internal(statuses.status().ToString());
    add(column.name, *statuses);
  }
  const auto time_type = arrow::timestamp(arrow::TimeUnit::MICRO, "UTC");
  for (const auto& column : request.columns) {
    arrow::TimestampBuilder times(time_type, arrow::default_memory_pool());
    if (!times.Resize(static_cast<int64_t>(n)).ok()) return Status::Internal("out of memory");
    for (size_t r = 0; r < n; ++r) {
      if (features.row_status(column.view, r) == FeatureStatus::kNotFound) {
        times.UnsafeAppendNull();
      } else {
        times.UnsafeAppend(features.event_timestamp(column.view, r).micros);
      }
    }
    std::shared_ptr<arrow::Array> array;
    if (!times.Finish(&array).ok()) return Status::Internal("out of memory");
    add(column.name, std::move(array));
  }
  return arrow::Table::Make(arrow::schema(fields), columns, static_cast<int64_t>(n));
}

}  // namespace

void BindOnline(nb::class_<FeatureStoreCore>& cls) {
  cls.def(
      "get_online_features",
      [](FeatureStoreCore& self, const std::vector<std::string>& features,
         const std::string& feature_service,
         const std::vector<std::pair<std::string, nb::sequence>>& entities,
         bool full_feature_names) {
        OnlineFeaturesRequest request;
        request.features = features;
        request.feature_service = feature_service;
        request.full_feature_names = full_feature_names;
        for (const auto& [name, values] : entities) {
          EntityColumn column;
          column.name = name;
          const size_t count = nb::len(values);
          column.values.reserve(count);
          for (size_t i = 0; i < count; ++i) {
            column.values.push_back(ToRequestValue(values[i], name, i));
          }
          request.entities.push_back(std::move(column));
        }
        std::shared_ptr<arrow::Table> table;
        size_t feature_columns = 0;
        {
          nb::gil_scoped_release release;
          FeatureStoreCore::Online online = ValueOrThrow(self.OnlineService());
          ResolvedOnlineRequest resolved = ValueOrThrow(online.service->Resolve(request));
          OnlineFeatures read = ValueOrThrow(online.store->Read(resolved.read));
          table = ValueOrThrow(ResponseTable(resolved, read));
          feature_columns = resolved.columns.size();
        }
        return nb::make_tuple(ExportArrowTable(std::move(table)), entities.size(), feature_columns);
      },
      nb::arg("features"), nb::arg("feature_service"), nb::arg("entities"),
      nb::arg("full_feature_names"),
      "Latest values from the online store: (table, entity columns, feature columns); the "
      "table holds entity columns, feature values, a status column per feature, then an event "
      "time column per feature.");
}

}  // namespace granary::python
