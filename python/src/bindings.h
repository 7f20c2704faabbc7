// Shared pieces of the granary._granary module: errors as Python exceptions, Arrow streams both
// ways, the native store, and the registration function of each area (one file per area:
// registry, offline, online, operations: materialization, push and status).
#pragma once

#include <nanobind/nanobind.h>
// Every file of the module sees the same type casters: a template such as
// accessor::operator=<std::string> instantiated in a file without the std::string caster would
// be a different function under the same name, and the linker may keep either (it kept the
// broken one once: std::bad_cast at import).
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "granary/common/cancel.h"
#include "granary/common/result.h"

namespace arrow {
class Table;
}

namespace granary::python {

namespace nb = nanobind;

class FeatureStoreCore;

// A failed Status on its way to Python; the module's translator raises the exception class of
// its code (errors.cc).
class StatusError : public std::runtime_error {
 public:
  explicit StatusError(Status status)
      : std::runtime_error(status.message()), status_(std::move(status)) {}
  const Status& status() const { return status_; }

 private:
  Status status_;
};

inline void ThrowIfError(const Status& status) {
  if (!status.ok()) throw StatusError(status);
}
template <typename T>
T ValueOrThrow(Result<T> result) {
  if (!result.ok()) throw StatusError(result.status());
  return result.MoveValueUnsafe();
}

// Creates the exception classes (GranaryError and one per status code) and their translator.
void BindErrors(nb::module_& m);

// Arrow data in and out through the Arrow C stream interface (PyCapsule protocol), no copy.
void BindArrowStream(nb::module_& m);
// Reads every batch of an object with __arrow_c_stream__ (a pyarrow Table, RecordBatchReader,
// polars DataFrame, ...) into a table that shares its buffers. Needs the GIL.
std::shared_ptr<arrow::Table> ImportArrowTable(nb::handle source, const char* what);
// An object with __arrow_c_stream__ over `table`, for pyarrow.table(...) on the Python side.
nb::object ExportArrowTable(std::shared_ptr<arrow::Table> table);

// Runs `work` on a worker thread with the GIL released, while the calling thread polls for
// signals (PyErr_CheckSignals) every 50 ms. On Ctrl-C (or any signal handler that raises) it
// calls `cancel` (which asks `work` to stop, e.g. sets its CancelFlag), waits for `work` to
// return, and raises the handler's exception (KeyboardInterrupt) with the C++ outcome added as a
// note. Otherwise returns what `work` returned. Must be called with the GIL held.
Status RunInterruptible(const std::function<Status()>& work, const std::function<void()>& cancel);
inline Status RunInterruptible(const std::function<Status()>& work, CancelFlag* cancel) {
  return RunInterruptible(work, [cancel] { cancel->Cancel(); });
}

void BindRegistry(nb::class_<FeatureStoreCore>& cls);
void BindOffline(nb::class_<FeatureStoreCore>& cls);
void BindOnline(nb::class_<FeatureStoreCore>& cls);
void BindOperations(nb::module_& m, nb::class_<FeatureStoreCore>& cls);

}  // namespace granary::python
