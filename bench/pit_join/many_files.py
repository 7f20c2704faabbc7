"""A training set over a source of many small Parquet files (what Spark and Delta writers leave):
Granary against the floor, pyarrow.dataset reading only the columns the training set needs from
the same files on its own threads, in the same run.

Where the time goes for such a source is per file (listing, opening, the footer), not decoding:
docs/PERFORMANCE.md, "Training sets over many small files". Run it through
bench/pit_join/many_files; `--help` for the shape. Data is generated once into
build/bench-data/many_files/ and reused.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]
START_US = 1_767_225_600 * 1_000_000  # 2026-01-01T00:00:00Z
SPAN_US = 300 * 86_400 * 1_000_000


def generate(data, files, rows, row_groups, features, entity_rows, keys, seed):
    stamp = data / "params.json"
    params = {"files": files, "rows": rows, "row_groups": row_groups, "features": features,
              "entity_rows": entity_rows, "keys": keys, "seed": seed, "version": 1}
    if stamp.exists() and json.loads(stamp.read_text()) == params:
        print(f"data: reusing {data}", flush=True)
        return
    if data.exists():
        shutil.rmtree(data)
    (data / "data" / "events").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    ts_type = pa.timestamp("us", tz="UTC")
    t0 = time.time()
    for i in range(files):
        columns = {"item_id": pa.array(rng.integers(0, keys, rows)),
                   "event_timestamp": pa.array(START_US + rng.integers(0, SPAN_US, rows), ts_type)}
        for f in range(features):
            columns[f"f{f}"] = pa.array(rng.random(rows))
        pq.write_table(pa.table(columns), data / "data" / "events" / f"part-{i:05d}.parquet",
                       row_group_size=max(1, rows // row_groups))
    pq.write_table(pa.table({
        "item_id": pa.array(rng.integers(0, keys, entity_rows)),
        "event_timestamp": pa.array(START_US + rng.integers(0, SPAN_US, entity_rows), ts_type)}),
        data / "entities.parquet")
    (data / "granary.yaml").write_text(
        "project: many_files\nregistry: data/registry.db\noffline_store: {type: file}\n"
        "online_store: {type: rocksdb, path: data/online}\n")
    schema = "\n".join(f"      - {{name: f{f}, type: float64}}" for f in range(features))
    (data / "features.yaml").write_text(f"""entities:
  - name: item
    join_keys: [item_id]
    value_type: int64
data_sources:
  - name: events
    type: file
    path: data/events
    timestamp_field: event_timestamp
feature_views:
  - name: item_stats
    entities: [item]
    source: events
    ttl: 0
    online: true
    schema:
{schema}
""")
    subprocess.run([str(ROOT / "build" / "granary"), "apply"], cwd=data, check=True,
                   stdout=subprocess.DEVNULL)
    stamp.write_text(json.dumps(params))
    print(f"data: {files} files of {rows} rows ({row_groups} row groups, {features} features) "
          f"written in {time.time() - t0:.1f} s", flush=True)


def floor_seconds(data, features):
    """pyarrow.dataset reading the columns a training set of `features` needs, in this process."""
    t0 = time.perf_counter()
    table = ds.dataset(data / "data" / "events", format="parquet").to_table(
        columns=["item_id", "event_timestamp"] + features)
    elapsed = time.perf_counter() - t0
    assert table.num_rows > 0
    return elapsed


def granary_seconds(binary, data, features, out):
    t0 = time.perf_counter()
    done = subprocess.run([binary, "get-historical-features", "--entities", "entities.parquet",
                    "--features", ",".join(f"item_stats:{f}" for f in features), "-o", str(out),
                    "-q"], cwd=data, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"{binary} failed ({done.returncode}): {done.stderr}")
    return elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=3000)
    ap.add_argument("--rows", type=int, default=200, help="rows per file")
    ap.add_argument("--row-groups", type=int, default=2, help="row groups per file")
    ap.add_argument("--features", type=int, default=12, help="float64 features per file")
    ap.add_argument("--read", type=int, default=2, help="features the training set asks for")
    ap.add_argument("--entity-rows", type=int, default=2000)
    ap.add_argument("--keys", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=5, help="runs of each, alternated (medians)")
    ap.add_argument("--granary", action="append",
                    help="a granary binary to time (repeatable: A/B, alternated); default "
                         "build/granary")
    ap.add_argument("--data", default=str(ROOT / "build" / "bench-data" / "many_files"))
    args = ap.parse_args()
    binaries = [str(Path(b).resolve()) for b in args.granary or [ROOT / "build" / "granary"]]
    data = Path(args.data).resolve()  # the runs work in it; -o is given relative to it
    generate(data, args.files, args.rows, args.row_groups, args.features, args.entity_rows,
             args.keys, seed=7)
    features = [f"f{f}" for f in range(args.read)]
    print(f"machine: {os.cpu_count()} cores; {args.files} files x {args.rows} rows in "
          f"{args.row_groups} row groups; training set of {args.entity_rows} entity rows x "
          f"{args.read} features; {args.repeat} runs each, alternated", flush=True)
    times = {"floor": []}
    times.update({b: [] for b in binaries})
    outputs = {}
    for run in range(args.repeat):
        times["floor"].append(floor_seconds(data, features))
        for i, b in enumerate(binaries):
            outputs[b] = data / f"out-{i}.parquet"
            times[b].append(granary_seconds(b, data, features, outputs[b]))
    first = pq.read_table(outputs[binaries[0]])
    for b in binaries[1:]:
        if not pq.read_table(outputs[b]).equals(first):
            sys.exit(f"{b}'s training set differs from {binaries[0]}'s")
    floor = statistics.median(times["floor"])
    print(f"{'':40} {'median':>8} {'min':>8} {'max':>8}  ratio to the floor")
    print(f"{'floor: pyarrow.dataset, needed columns':40} {floor:8.3f} "
          f"{min(times['floor']):8.3f} {max(times['floor']):8.3f}")
    for b in binaries:
        m = statistics.median(times[b])
        print(f"{'granary ' + b:40.40} {m:8.3f} {min(times[b]):8.3f} {max(times[b]):8.3f}  "
              f"{m / floor:.2f}x")


if __name__ == "__main__":
    main()
