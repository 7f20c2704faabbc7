# Feast's gRPC serving API (feast.serving.ServingService) as the C++ library
# granary_feast_protos, generated at build time from the descriptors the pinned feast package
# ships (.venv-feast, requirements-feast.lock; scripts/setup makes it): nothing of Feast's is
# copied into the repository. gRPC and protobuf are Debian's (libgrpc++-dev, libprotobuf-dev,
# protobuf-compiler-grpc).
#
# Kept apart from other users of gRPC/protobuf: this file only finds the packages (find_package
# is idempotent) and defines its own target. Only the `granary` binary links it, never the Python
# module, which shares a process with pyarrow (whose libarrow_flight carries its own gRPC and
# protobuf, with hidden symbols: checked with nm, no clash either way).
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
find_program(GRANARY_GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)

set(GRANARY_FEAST_PYTHON "${CMAKE_SOURCE_DIR}/.venv-feast/bin/python" CACHE FILEPATH
    "Python of the virtual environment holding the pinned feast package")
if(NOT EXISTS "${GRANARY_FEAST_PYTHON}")
  message(FATAL_ERROR "${GRANARY_FEAST_PYTHON} is missing: run scripts/setup, which makes "
                      ".venv-feast from requirements-feast.lock")
endif()

set(_feast_out "${CMAKE_BINARY_DIR}/feast_protos")
set(_feast_set "${_feast_out}/feast_serving_descriptors.pb")
set(_feast_files feast/serving/ServingService feast/types/Value)
set(_feast_sources)
foreach(f IN LISTS _feast_files)
  list(APPEND _feast_sources "${_feast_out}/${f}.pb.cc" "${_feast_out}/${f}.pb.h")
endforeach()
list(APPEND _feast_sources "${_feast_out}/feast/serving/ServingService.grpc.pb.cc"
     "${_feast_out}/feast/serving/ServingService.grpc.pb.h")

# The .lock-sha256 stamp changes when scripts/setup reinstalls the feast package.
add_custom_command(
  OUTPUT "${_feast_set}"
  COMMAND ${CMAKE_COMMAND} -E make_directory "${_feast_out}"
  COMMAND "${GRANARY_FEAST_PYTHON}" "${CMAKE_SOURCE_DIR}/cmake/feast_descriptors.py" "${_feast_set}"
  DEPENDS "${CMAKE_SOURCE_DIR}/cmake/feast_descriptors.py"
          "${CMAKE_SOURCE_DIR}/requirements-feast.lock"
  COMMENT "Reading Feast's serving descriptors from the pinned feast package"
  VERBATIM)
add_custom_command(
  OUTPUT ${_feast_sources}
  COMMAND protobuf::protoc "--descriptor_set_in=${_feast_set}" "--cpp_out=${_feast_out}"
          "--grpc_out=${_feast_out}" "--plugin=protoc-gen-grpc=${GRANARY_GRPC_CPP_PLUGIN}"
          feast/serving/ServingService.proto feast/types/Value.proto
  DEPENDS "${_feast_set}"
  COMMENT "Generating Feast's gRPC serving code (protoc, grpc_cpp_plugin)"
  VERBATIM)

add_library(granary_feast_protos STATIC ${_feast_sources})
# Generated code: no warnings of ours, no clang-format.
target_compile_options(granary_feast_protos PRIVATE -w)
target_include_directories(granary_feast_protos SYSTEM PUBLIC "${_feast_out}")
target_link_libraries(granary_feast_protos PUBLIC protobuf::libprotobuf gRPC::grpc++)
