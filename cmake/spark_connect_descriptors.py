"""Writes the Spark Connect protocol's descriptors, taken from the pinned pyspark package, as a
FileDescriptorSet for protoc --descriptor_set_in (the build generates the C++ client code from it).

Each pyspark/sql/connect/proto/*_pb2.py embeds its .proto file as a serialized FileDescriptorProto
(the bytes literal passed to AddSerializedFile). They are read with Python's own parser, without
importing the modules (which would need the protobuf runtime), and written out in dependency order,
as repeated field 1 of a FileDescriptorSet. Imports of protobuf's well-known types
(google/protobuf/*.proto) come from WELL_KNOWN_SET, a FileDescriptorSet that protoc writes from
the protobuf headers installed with it (protoc --include_imports --descriptor_set_out), put first.

Each Spark file gets `option optimize_for = CODE_SIZE` (a FileOptions appended to the descriptor,
which protobuf merges into the file's own options): the generated code is a third of the size and
compiles in a fraction of the time; (de)serializing by reflection costs little next to the Arrow
batches the messages carry as bytes.

usage: spark_connect_descriptors.py PYSPARK_DIR WELL_KNOWN_SET OUTPUT_FILE
"""
import ast
import pathlib
import sys


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_varint(data, pos):
    shift = result = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def fields(data):
    """(field number, wire type, value) of a serialized message; values of wire type 2 as bytes."""
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(data, pos)
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = read_varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unexpected wire type {wire}")
        yield number, wire, value


def serialized_file(path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "AddSerializedFile" and node.args
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, bytes)):
            return node.args[0].value
    raise SystemExit(f"{path}: no AddSerializedFile(b'...') call; the pyspark package's layout changed")


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    pyspark, well_known, output = (pathlib.Path(a) for a in sys.argv[1:])
    proto_dir = pyspark / "sql" / "connect" / "proto"
    files = {}
    for path in sorted(proto_dir.glob("*_pb2.py")):
        data = serialized_file(path)
        name = deps = None
        deps = []
        for number, _, value in fields(data):
            if number == 1:
                name = value.decode()
            elif number == 3:
                deps.append(value.decode())
        # FileDescriptorProto.options (8) = FileOptions{optimize_for (9) = CODE_SIZE (2)}.
        files[name] = (data + b"\x42\x02\x48\x02", deps)
    if "spark/connect/base.proto" not in files:
        raise SystemExit(f"{proto_dir}: spark/connect/base.proto not found")
    ordered, seen = [], set()

    def visit(name):
        if name in seen or name not in files:
            return
        seen.add(name)
        for dep in files[name][1]:
            visit(dep)
        ordered.append(name)

    for name in sorted(files):
        visit(name)
    out = well_known.read_bytes() + b"".join(b"\x0a" + varint(len(files[n][0])) + files[n][0] for n in ordered)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(out)


if __name__ == "__main__":
    main()
