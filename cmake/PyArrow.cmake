# Locates Apache Arrow C++ and Parquet inside the pinned pyarrow wheel of the project's .venv and
# defines the imported targets Arrow::arrow, Arrow::parquet and Arrow::compute. Binaries get an RPATH to the wheel's
# library folder, so they run without LD_LIBRARY_PATH.
# Under `pip install .` (scikit-build-core) the interpreter that runs pip.
if(DEFINED SKBUILD AND DEFINED Python_EXECUTABLE)
  set(_granary_python_default "${Python_EXECUTABLE}")
else()
  set(_granary_python_default "${CMAKE_SOURCE_DIR}/.venv/bin/python")
endif()
set(GRANARY_PYTHON "${_granary_python_default}" CACHE FILEPATH
    "Python interpreter whose pyarrow provides Arrow C++ (run scripts/setup to create it)")
if(NOT EXISTS "${GRANARY_PYTHON}")
  message(FATAL_ERROR "No Python at ${GRANARY_PYTHON}: run scripts/setup (or make setup) first.")
endif()
execute_process(
  COMMAND "${GRANARY_PYTHON}" -c
    "import pyarrow as pa; pa.create_library_symlinks(); print(pa.get_include()); print(pa.get_library_dirs()[0]); print(pa.__version__)"
  OUTPUT_VARIABLE _pa_out RESULT_VARIABLE _pa_rc ERROR_VARIABLE _pa_err OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT _pa_rc EQUAL 0)
  message(FATAL_ERROR "pyarrow is not importable from ${GRANARY_PYTHON}: ${_pa_err}\nRun scripts/setup.")
endif()
string(REPLACE "\n" ";" _pa_lines "${_pa_out}")
list(GET _pa_lines 0 PYARROW_INCLUDE_DIR)
list(GET _pa_lines 1 PYARROW_LIBRARY_DIR)
list(GET _pa_lines 2 PYARROW_VERSION)
message(STATUS "Arrow C++ from pyarrow ${PYARROW_VERSION}: ${PYARROW_LIBRARY_DIR}")

foreach(_lib arrow parquet)
  find_library(_path_${_lib} NAMES ${_lib} PATHS "${PYARROW_LIBRARY_DIR}" NO_DEFAULT_PATH REQUIRED)
  add_library(Arrow::${_lib} SHARED IMPORTED GLOBAL)
  set_target_properties(Arrow::${_lib} PROPERTIES
    IMPORTED_LOCATION "${_path_${_lib}}"
    INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${PYARROW_INCLUDE_DIR}"
    INTERFACE_INCLUDE_DIRECTORIES "${PYARROW_INCLUDE_DIR}")
endforeach()
set_property(TARGET Arrow::parquet APPEND PROPERTY INTERFACE_LINK_LIBRARIES Arrow::arrow)
# Arrow::compute: the compute kernels (cast, sort, take, filter), a library of its own since Arrow 21;
# call arrow::compute::Initialize() before the first kernel.
find_library(_path_arrow_compute NAMES arrow_compute PATHS "${PYARROW_LIBRARY_DIR}" NO_DEFAULT_PATH
             REQUIRED)
add_library(Arrow::compute SHARED IMPORTED GLOBAL)
set_target_properties(Arrow::compute PROPERTIES
  IMPORTED_LOCATION "${_path_arrow_compute}"
  INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${PYARROW_INCLUDE_DIR}"
  INTERFACE_INCLUDE_DIRECTORIES "${PYARROW_INCLUDE_DIR}"
  INTERFACE_LINK_LIBRARIES Arrow::arrow)
# Arrow::flight: Arrow Flight (`granary serve-offline`). The wheel's libarrow_flight links its own
# gRPC, protobuf and Abseil statically with hidden symbols (it exports arrow::flight and
# OpenTelemetry symbols only), so it shares a process with Debian's gRPC without a clash.
find_library(_path_arrow_flight NAMES arrow_flight PATHS "${PYARROW_LIBRARY_DIR}" NO_DEFAULT_PATH
             REQUIRED)
add_library(Arrow::flight SHARED IMPORTED GLOBAL)
set_target_properties(Arrow::flight PROPERTIES
  IMPORTED_LOCATION "${_path_arrow_flight}"
  INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${PYARROW_INCLUDE_DIR}"
  INTERFACE_INCLUDE_DIRECTORIES "${PYARROW_INCLUDE_DIR}"
  INTERFACE_LINK_LIBRARIES Arrow::arrow)
list(APPEND CMAKE_BUILD_RPATH "${PYARROW_LIBRARY_DIR}")
list(APPEND CMAKE_INSTALL_RPATH "${PYARROW_LIBRARY_DIR}")
