// Arrow data across the language boundary without copying: the Arrow C stream interface, wrapped
// in PyCapsules as the Arrow PyCapsule protocol says (capsule name "arrow_array_stream"; the
// capsule's destructor releases a stream that nobody consumed).
#include <arrow/api.h>
#include <arrow/c/bridge.h>
#include <fmt/format.h>

#include "bindings.h"

namespace granary::python {
namespace {

constexpr const char* kStreamCapsule = "arrow_array_stream";

// A finished table, handed to Python. pyarrow.table(obj) imports it through __arrow_c_stream__.
struct ArrowTableExport {
  std::shared_ptr<arrow::Table> table;
};

void ReleaseStreamCapsule(PyObject* capsule) {
  auto* stream = static_cast<ArrowArrayStream*>(PyCapsule_GetPointer(capsule, kStreamCapsule));
  if (stream == nullptr) {
    PyErr_Clear();
    return;
  }
  if (stream->release != nullptr) stream->release(stream);
  delete stream;
}

nb::object StreamCapsule(const std::shared_ptr<arrow::Table>& table) {
  auto stream = std::make_unique<ArrowArrayStream>();
  auto reader = std::make_shared<arrow::TableBatchReader>(table);
  arrow::Status st = arrow::ExportRecordBatchReader(reader, stream.get());
  if (!st.ok()) ThrowIfError(Status::Internal("cannot export an Arrow stream: " + st.ToString()));
  PyObject* capsule = PyCapsule_New(stream.get(), kStreamCapsule, ReleaseStreamCapsule);
  if (capsule == nullptr) {
    stream->release(stream.get());
    throw nb::python_error();
  }
  stream.release();  // owned by the capsule now
  return nb::steal(capsule);
}

}  // namespace

std::shared_ptr<arrow::Table> ImportArrowTable(nb::handle source, const char* what) {
  if (!nb::hasattr(source, "__arrow_c_stream__")) {
    ThrowIfError(Status::InvalidArgument(fmt::format(
        "{} must be a pandas DataFrame or an Arrow table (an object with __arrow_c_stream__), "
        "not {}",
        what, nb::type_name(source.type()).c_str())));
  }
  nb::object capsule = source.attr("__arrow_c_stream__")();
  auto* stream =
      static_cast<ArrowArrayStream*>(PyCapsule_GetPointer(capsule.ptr(), kStreamCapsule));
  if (stream == nullptr) throw nb::python_error();
  // Moves the stream out of the capsule (the capsule then holds a released stream).
  auto reader = arrow::ImportRecordBatchReader(stream);
  if (!reader.ok()) {
    ThrowIfError(Status::InvalidArgument(
        fmt::format("{}: cannot read its Arrow stream: {}", what, reader.status().ToString())));
  }
  auto table = (*reader)->ToTable();
  if (!table.ok()) {
    ThrowIfError(Status::InvalidArgument(
        fmt::format("{}: cannot read its Arrow stream: {}", what, table.status().ToString())));
  }
  return *table;
}

nb::object ExportArrowTable(std::shared_ptr<arrow::Table> table) {
  return nb::cast(ArrowTableExport{std::move(table)});
}

void BindArrowStream(nb::module_& m) {
  nb::class_<ArrowTableExport>(m, "ArrowTableExport",
                               "A table computed in C++; pyarrow.table(obj) takes it without a "
                               "copy (Arrow PyCapsule protocol).")
      .def(
          "__arrow_c_stream__",
          [](const ArrowTableExport& self, nb::handle requested_schema) {
            (void)requested_schema;  // the producer may ignore it (the protocol allows it)
            return StreamCapsule(self.table);
          },
          nb::arg("requested_schema") = nb::none())
      .def_prop_ro("num_rows", [](const ArrowTableExport& self) { return self.table->num_rows(); })
      .def_prop_ro("num_columns",
                   [](const ArrowTableExport& self) { return self.table->num_columns(); });
}

}  // namespace granary::python
