// Status codes as Python exceptions: GranaryError and a subclass per code, each also deriving from
// the built-in exception a Python programmer would catch (InvalidArgument is a ValueError, ...).
#include <array>

#include "bindings.h"

namespace granary::python {
namespace {

struct ErrorClass {
  StatusCode code;
  const char* name;
  PyObject* builtin;  // a second base, or null
};

// Created once at import; the module keeps them alive.
std::array<PyObject*, static_cast<size_t>(StatusCode::kInternal) + 1> g_classes{};
PyObject* g_base = nullptr;

}  // namespace

void BindErrors(nb::module_& m) {
  g_base = PyErr_NewExceptionWithDoc(
      "granary.GranaryError", "Base class of the errors raised by Granary.", nullptr, nullptr);
  if (g_base == nullptr) throw nb::python_error();
  m.attr("GranaryError") = nb::borrow(g_base);
  const ErrorClass classes[] = {
      {StatusCode::kInvalidArgument, "InvalidArgument", PyExc_ValueError},
      {StatusCode::kNotFound, "NotFound", PyExc_LookupError},
      {StatusCode::kAlreadyExists, "AlreadyExists", nullptr},
      {StatusCode::kFailedPrecondition, "FailedPrecondition", PyExc_RuntimeError},
      {StatusCode::kIOError, "StorageIOError", PyExc_OSError},
      {StatusCode::kCorruption, "Corruption", nullptr},
      {StatusCode::kUnavailable, "Unavailable", PyExc_ConnectionError},
      {StatusCode::kCancelled, "Cancelled", nullptr},
      {StatusCode::kNotImplemented, "Unsupported", PyExc_NotImplementedError},
      {StatusCode::kInternal, "InternalError", nullptr},
  };
  for (const ErrorClass& c : classes) {
    nb::object bases = c.builtin
                           ? nb::object(nb::make_tuple(nb::handle(g_base), nb::handle(c.builtin)))
                           : nb::object(nb::make_tuple(nb::handle(g_base)));
    nb::dict attributes;
    attributes["code"] = std::string(StatusCodeName(c.code));
    const std::string qualified = std::string("granary.") + c.name;
    PyObject* cls = PyErr_NewException(qualified.c_str(), bases.ptr(), attributes.ptr());
    if (cls == nullptr) throw nb::python_error();
    g_classes[static_cast<size_t>(c.code)] = cls;
    m.attr(c.name) = nb::borrow(cls);
  }
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const StatusError& e) {
      PyObject* cls = g_classes[static_cast<size_t>(e.status().code())];
      PyErr_SetString(cls != nullptr ? cls : g_base, e.status().message().c_str());
    }
  });
}

}  // namespace granary::python
