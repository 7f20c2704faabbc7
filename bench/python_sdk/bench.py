"""The Python SDK's hot paths, each beside a baseline measured in the same run.

1. Training sets: FeatureStore.get_historical_features(...).to_arrow() in this process, vs the
   `granary get-historical-features` command on the same entity rows (a process per run, Parquet in
   and out). For a like-for-like figure the Python path also writes the same Parquet file.
2. The hand-over of a training set: pyarrow.table() over the native module's Arrow C stream (no
   copy) vs a copy of the same table through Arrow IPC, and vs to_pandas().
3. Online lookups (embedded store): get_online_features(...).to_dict() for 1 and 100 entities,
   beside `granary get-online-features` (process start, registry and store opening included).

Data: `granary datagen` (small scale unless --quick) into build/bench-data/python_sdk, reused.
Medians of --runs runs; the machine is shared and noisy, so compare within one run.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

import granary

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "build" / "granary"
LOADER = ROOT / "build" / "granary_test_online_load"


def run(*args, **kwargs):
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        sys.exit(f"{args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def timed(fn, runs):
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, result


def prepare(scale):
    data = ROOT / "build" / "bench-data" / "python_sdk" / scale
    stamp = data / "stamp.json"
    want = {"scale": scale, "end": "2026-11-01", "version": 1}
    if not (stamp.exists() and json.loads(stamp.read_text()) == want):
        if data.exists():
            shutil.rmtree(data)
        data.mkdir(parents=True)
        print(f"data: granary datagen --scale {scale} into {data}", flush=True)
        run(BIN, "datagen", "--scale", scale, "--out", data, "--end", want["end"], "-q")
        stamp.write_text(json.dumps(want))
    repo = Path(tempfile.mkdtemp(prefix="granary-bench-sdk-"))
    shutil.copytree(ROOT / "examples" / "parking", repo, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("data"))
    (repo / "data").mkdir(exist_ok=True)
    for entry in data.iterdir():
        (repo / "data" / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    run(BIN, "-C", repo, "apply")
    return repo


def bench_training(store, repo, runs, out):
    rows = []
    cases = [("customer_risk_v1", repo / "data" / "customer_risk_labels.parquet"),
             ("demand_prediction_v1", repo / "data" / "bay_demand_labels")]
    for service, labels in cases:
        entities = pq.read_table(labels)
        entity_file = out / f"{service}-entities.parquet"
        pq.write_table(entities, entity_file)
        cli_out = out / f"{service}-cli.parquet"
        py_out = out / f"{service}-py.parquet"
        cli, cli_all, _ = timed(lambda: run(BIN, "-C", repo, "get-historical-features", "-q",
                                            "--entities", entity_file, "--feature-service",
                                            service, "--output", cli_out), runs)
        py, py_all, table = timed(lambda: store.get_historical_features(
            entities, feature_service=service).to_arrow(), runs)

        def python_with_files():
            t = store.get_historical_features(pq.read_table(entity_file),
                                              feature_service=service).to_arrow()
            pq.write_table(t, py_out)
            return t
        py_files, files_all, _ = timed(python_with_files, runs)
        assert pq.read_table(cli_out).equals(pq.read_table(py_out)), service
        rows.append((service, entities.num_rows, table.num_columns, cli, py, py_files))
        print(f"  {service}: {entities.num_rows} rows x {table.num_columns} columns; "
              f"CLI {cli:.3f}s {fmt(cli_all)}, Python {py:.3f}s {fmt(py_all)}, "
              f"Python + Parquet in/out {py_files:.3f}s {fmt(files_all)}", flush=True)
    return rows


def bench_handover(store, repo, runs):
    entities = pq.read_table(repo / "data" / "bay_demand_labels")
    big = pa.concat_tables([entities] * 10)  # ~1M rows at the small scale
    core = store._core
    export, _ = core.get_historical_features(
        big, [], "demand_prediction_v1", False, False, core.DEFAULT_MEMORY_BUDGET_BYTES, 0, "",
        False)
    table = pa.table(export)
    size = table.nbytes

    def ipc_copy():
        sink = pa.BufferOutputStream()
        with ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return ipc.open_stream(sink.getvalue()).read_all()
    zero, zero_all, _ = timed(lambda: pa.table(export), runs * 20)
    copy, copy_all, _ = timed(ipc_copy, runs)
    pandas, pandas_all, _ = timed(lambda: table.to_pandas(), runs)
    print(f"  {table.num_rows} rows x {table.num_columns} columns, {size / 2**20:.0f} MiB: "
          f"pyarrow.table(export) {zero * 1e6:.0f} us, IPC copy {copy * 1e3:.1f} ms, "
          f"to_pandas {pandas * 1e3:.1f} ms", flush=True)
    return table.num_rows, table.num_columns, size, zero, copy, pandas


def bench_online(repo, runs):
    for view, file in (("customer_payments_stats", "customer_payments.parquet"),
                       ("customer_profile", "customer_profiles.parquet")):
        run(LOADER, repo, view, repo / "data" / file)
    customers = pq.read_table(repo / "data" / "customers.parquet").column("customer_id")
    ids = customers.to_pylist()
    results = []
    with granary.FeatureStore(repo) as store:
        for n in (1, 100):
            samples = []
            for i in range(max(runs * 200, 1000)):
                batch = [ids[(i * 7919 + j * 104729) % len(ids)] for j in range(n)]
                start = time.perf_counter()
                store.get_online_features(feature_service="customer_risk_v1",
                                          entities={"customer_id": batch}).to_dict()
                samples.append(time.perf_counter() - start)
            samples.sort()
            results.append((n, samples[len(samples) // 2], samples[int(len(samples) * 0.99)]))
    cli = []
    args = ",".join(str(x) for x in ids[:100])
    for n, entity_arg in ((1, str(ids[0])), (100, args)):
        median, _, _ = timed(lambda: run(BIN, "-C", repo, "get-online-features", "--feature-service",
                                         "customer_risk_v1", "--entity",
                                         f"customer_id={entity_arg}"), runs)
        cli.append((n, median))
    for (n, p50, p99), (_, c) in zip(results, cli):
        print(f"  {n} entities x 13 features: Python p50 {p50 * 1e6:.0f} us, p99 "
              f"{p99 * 1e6:.0f} us; CLI (a process) {c * 1e3:.1f} ms", flush=True)
    return results, cli


def fmt(times):
    return "(" + ", ".join(f"{t:.2f}" for t in times) + ")"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny scale, 3 runs")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    scale, runs = ("tiny", 3) if args.quick else ("small", args.runs)
    print(f"machine: {os.cpu_count()} cores, {platform.platform()}; scale {scale}, "
          f"median of {runs}", flush=True)
    repo = prepare(scale)
    try:
        with tempfile.TemporaryDirectory(prefix="granary-bench-out-") as out:
            print("== training sets: Python in-process vs the CLI", flush=True)
            with granary.FeatureStore(repo) as store:
                bench_training(store, repo, runs, Path(out))
                print("== hand-over of a training set to Python", flush=True)
                bench_handover(store, repo, runs)
            print("== online lookups, embedded store", flush=True)
            bench_online(repo, runs)
    finally:
        shutil.rmtree(repo)


if __name__ == "__main__":
    main()
