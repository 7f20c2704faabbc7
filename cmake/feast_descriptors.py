"""Writes the descriptors of Feast's serving API, as the pinned feast package ships them, into a
FileDescriptorSet that protoc reads (--descriptor_set_in) to generate Granary's gRPC server code.

Run by the build (cmake/FeastProtos.cmake) with .venv-feast's Python:
    feast_descriptors.py OUT.pb
The set holds feast/serving/ServingService.proto and every file it imports, dependencies first.
"""
import sys

from google.protobuf import descriptor_pb2

from feast.protos.feast.serving import ServingService_pb2


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: feast_descriptors.py OUT.pb", file=sys.stderr)
        return 2
    ordered = []
    seen = set()

    def visit(file_descriptor):
        if file_descriptor.name in seen:
            return
        seen.add(file_descriptor.name)
        for dependency in file_descriptor.dependencies:
            visit(dependency)
        ordered.append(file_descriptor)

    visit(ServingService_pb2.DESCRIPTOR)
    out = descriptor_pb2.FileDescriptorSet()
    for file_descriptor in ordered:
        file_descriptor.CopyToProto(out.file.add())
    with open(sys.argv[1], "wb") as f:
        f.write(out.SerializeToString())
    return 0


if __name__ == "__main__":
    sys.exit(main())
