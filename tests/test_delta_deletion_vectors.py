"""Delta tables with deletion vectors (as Databricks writes them on DELETE, UPDATE and MERGE) end
to end through the CLI: the deleted rows are absent from training sets and from materialization,
with a vector in a file (storage type 'u') and one inline in the log ('i'); a damaged vector is a
clear error naming its file."""
import datetime as dt
import json
import struct
import zlib

import pyarrow as pa
import pyarrow.parquet as pq

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
# The UUID d2c639aa-8816-431a-aaf6-d3fe2512ff61 in Z85 (the Delta protocol's example).
DV_UUID_Z85 = "^-aqEH.-t@S}K{vb[*k^"
DV_FILE = "deletion_vector_d2c639aa-8816-431a-aaf6-d3fe2512ff61.bin"

DEFINITIONS = """
entities:
  - {name: customer, join_keys: [customer_id], value_type: int64}
data_sources:
  - {name: payments, type: delta, path: data/payments, timestamp_field: event_timestamp}
feature_views:
  - name: risk
    entities: [customer]
    source: payments
    ttl: 1d
    schema:
      - {name: score, type: float64}
"""


def z85(data):
    data = data + b"\0" * (-len(data) % 4)
    out = ""
    for i in range(0, len(data), 4):
        value = int.from_bytes(data[i:i + 4], "big")
        group = ""
        for _ in range(5):
            group = Z85[value % 85] + group
            value //= 85
        out += group
    return out


def roaring_bitmap_array(rows):
    """Rows (all below 2^16 here) as a portable RoaringBitmapArray: one bucket, one array
    container."""
    rows = sorted(rows)
    bitmap = struct.pack("<II", 12346, 1) + struct.pack("<HH", 0, len(rows) - 1)
    bitmap += struct.pack("<I", 16) + b"".join(struct.pack("<H", r) for r in rows)
    return struct.pack("<IQI", 1681511377, 1, 0) + bitmap


def write_table(table):
    """Two files. a.parquet (row groups of 2 rows) loses rows 2, 4 and 5 to a DV file; b.parquet
    loses row 1 to an inline DV. Without the vectors every customer's latest score would be the
    deleted one."""
    log = table / "_delta_log"
    log.mkdir(parents=True)
    hours = lambda h: NOW - dt.timedelta(hours=h)
    files = {
        "a.parquet": [(1, hours(5), 1.0), (2, hours(5), 2.0), (1, hours(2), 1.5),
                      (3, hours(2), 3.0), (2, hours(1), 2.5), (3, hours(1), 3.5)],
        "b.parquet": [(4, hours(1), 4.0), (4, hours(0.5), 4.5)],
    }
    for name, rows in files.items():
        pq.write_table(pa.table({
            "customer_id": pa.array([r[0] for r in rows], pa.int64()),
            "event_timestamp": pa.array([r[1] for r in rows], pa.timestamp("us", tz="UTC")),
            "score": pa.array([r[2] for r in rows], pa.float64()),
        }), table / name, row_group_size=2)
    bitmap_a = roaring_bitmap_array([2, 4, 5])
    (table / DV_FILE).write_bytes(b"\x01" + struct.pack(">I", len(bitmap_a)) + bitmap_a +
                                  struct.pack(">I", zlib.crc32(bitmap_a)))
    bitmap_b = roaring_bitmap_array([1])
    schema = {"type": "struct", "fields": [
        {"name": n, "type": t, "nullable": True, "metadata": {}}
        for n, t in [("customer_id", "long"), ("event_timestamp", "timestamp"),
                     ("score", "double")]]}

    def add(name, dv=None):
        action = {"path": name, "partitionValues": {}, "size": (table / name).stat().st_size,
                  "modificationTime": 0, "dataChange": True,
                  "stats": json.dumps({"numRecords": len(files[name])})}
        if dv:
            action["deletionVector"] = dv
        return {"add": action}

    dv_a = {"storageType": "u", "pathOrInlineDv": DV_UUID_Z85, "offset": 1,
            "sizeInBytes": len(bitmap_a), "cardinality": 3}
    dv_b = {"storageType": "i", "pathOrInlineDv": z85(bitmap_b),
            "sizeInBytes": len(bitmap_b), "cardinality": 1}
    commits = [
        [{"protocol": {"minReaderVersion": 3, "minWriterVersion": 7,
                       "readerFeatures": ["deletionVectors"],
                       "writerFeatures": ["deletionVectors", "appendOnly", "invariants"]}},
         {"metaData": {"id": "t", "format": {"provider": "parquet", "options": {}},
                       "schemaString": json.dumps(schema), "partitionColumns": [],
                       "configuration": {"delta.enableDeletionVectors": "true"},
                       "createdTime": 0}},
         add("a.parquet"), add("b.parquet")],
        # A DELETE: each file is removed without a vector and added back with one.
        [{"remove": {"path": "a.parquet", "dataChange": True}}, add("a.parquet", dv_a),
         {"remove": {"path": "b.parquet", "dataChange": True}}, add("b.parquet", dv_b)],
    ]
    for version, actions in enumerate(commits):
        (log / f"{version:020}.json").write_text("\n".join(json.dumps(a) for a in actions) + "\n")


def make_repo(cli, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "granary.yaml").write_text(
        "project: dv\nonline_store: {type: rocksdb, path: data/online}\n")
    (repo / "features.yaml").write_text(DEFINITIONS)
    write_table(repo / "data" / "payments")
    cli("-C", repo, "apply", check=True)
    (repo / "e.csv").write_text("customer_id,event_timestamp\n" + "".join(
        f"{c},{NOW.strftime('%Y-%m-%dT%H:%M:%SZ')}\n" for c in [1, 2, 3, 4]))
    return repo


def training_scores(cli, repo, out_name="out.parquet", check=True):
    result = cli("-C", repo, "get-historical-features", "--entities", repo / "e.csv",
                 "--features", "risk:score", "-o", repo / out_name, check=check)
    if not check:
        return result
    return pq.read_table(repo / out_name).column("score").to_pylist()


def test_training_sets_and_materialization_skip_deleted_rows(cli, tmp_path):
    repo = make_repo(cli, tmp_path)
    assert training_scores(cli, repo) == [1.0, 2.0, 3.0, 4.0]

    cli("-C", repo, "materialize", (NOW - dt.timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        NOW.strftime("%Y-%m-%dT%H:%M:%SZ"), "-q", check=True)
    out = cli("-C", repo, "get-online-features", "--features", "risk:score",
              "--entity", "customer_id=1,2,3,4", check=True)
    assert json.loads(out.stdout)["results"][1]["values"] == [1.0, 2.0, 3.0, 4.0]


def test_a_damaged_or_missing_vector_file_is_a_clear_error(cli, tmp_path):
    repo = make_repo(cli, tmp_path)
    dv_file = repo / "data" / "payments" / DV_FILE
    data = bytearray(dv_file.read_bytes())
    data[12] ^= 0x01
    dv_file.write_bytes(bytes(data))
    damaged = training_scores(cli, repo, check=False)
    assert damaged.returncode == 1, damaged.stdout
    assert DV_FILE in damaged.stderr and "checksum mismatch" in damaged.stderr, damaged.stderr
    assert not (repo / "out.parquet").exists()

    dv_file.unlink()  # as VACUUM would after a later rewrite
    gone = training_scores(cli, repo, check=False)
    assert gone.returncode == 1
    assert "cannot read the deletion vector file" in gone.stderr and DV_FILE in gone.stderr

