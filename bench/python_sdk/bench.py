"""The Python SDK's hot paths, each beside a baseline measured in the same run.

1. Training sets: FeatureStore.get_historical_features(...).to_arrow() in this process, vs the
   `granary get-historical-features` command on the same entity rows (a process per run, Parquet in
   and out). For a like-for-like figure the Python path also writes the same Parquet file.
2. The hand-over of a training set: pyarrow.table() over the native module's Arrow C stream (no
   copy) vs a copy of the same table through Arrow IPC, and vs to_pandas().
3. Online lookups (embedded store): get_online_features(...).to_dict() for 1 and 100 entities,
   beside `granary get-online-features` (process start, registry and store opening included).
4. Materialization: FeatureStore.materialize(...) of the customer views into an empty embedded
   store, beside `granary materialize` of the same interval (the same core; a process per run).
5. Push: FeatureStore.push(...) of a pandas DataFrame (1 and 10,000 rows, online), beside
   `granary serve`'s POST /push of the same rows as JSON over HTTP on 127.0.0.1 (two copies of
   the repository: the embedded store admits one process).

Data: `granary datagen` (small scale unless --quick) into build/bench-data/python_sdk, reused.
Medians of --runs runs; the machine is shared and noisy, so compare within one run.
"""
import argparse
import datetime as dt
import http.client
import json
import os
import platform
import shutil
import signal
import socket
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
    # Every row of the service's views' sources, the newest per customer winning (the payment
    # windows: their tiles).
    run(BIN, "-C", repo, "materialize", "1970-01-01T00:00:00Z", "now",
        "--views", "customer_payment_windows,customer_payments_stats,customer_profile", "-q")
    customers = pq.read_table(repo / "data" / "customers.parquet").column("customer_id")
    ids = customers.to_pylist()
    results = []
    with granary.FeatureStore(repo) as store:
        features = len(store.get_feature_service("customer_risk_v1").feature_refs)
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
        print(f"  {n} entities x {features} features: Python p50 {p50 * 1e6:.0f} us, p99 "
              f"{p99 * 1e6:.0f} us; CLI (a process) {c * 1e3:.1f} ms", flush=True)
    return results, cli


CUSTOMER_VIEWS = ["customer_payments_stats", "customer_profile"]


def bench_materialize(repo, runs):
    """A fresh online store per run (the store's folder removed between runs)."""
    online = repo / "data" / "online"
    start, end = "2000-01-01T00:00:00Z", "2026-11-01T00:00:00Z"

    def python():
        shutil.rmtree(online, ignore_errors=True)
        with granary.FeatureStore(repo) as store:
            begin = time.perf_counter()
            report = store.materialize(start, end, CUSTOMER_VIEWS)
            return time.perf_counter() - begin, report

    def cli():
        shutil.rmtree(online, ignore_errors=True)
        begin = time.perf_counter()
        run(BIN, "-C", repo, "materialize", start, end, "--views", ",".join(CUSTOMER_VIEWS), "-q")
        return time.perf_counter() - begin

    py_all, cli_all, report = [], [], None
    for _ in range(runs):
        seconds, report = python()
        py_all.append(seconds)
        cli_all.append(cli())
    entities = sum(v.entities_written for v in report.views)
    rows = sum(v.rows_scanned for v in report.views)
    py, c = statistics.median(py_all), statistics.median(cli_all)
    print(f"  {rows} rows read, {entities} entities written: Python {py:.3f}s {fmt(py_all)}, "
          f"CLI {c:.3f}s {fmt(cli_all)}", flush=True)
    shutil.rmtree(online, ignore_errors=True)
    return rows, entities, py, c


PUSH_DEFS = """
data_sources:
  - {name: customer_profile_push, type: push, batch_source: customer_profile_source}
"""


def push_repo(repo, name):
    """A copy of `repo` whose customer_profile view reads a push source."""
    copy = repo.parent / f"{repo.name}-{name}"
    shutil.copytree(repo, copy, symlinks=True, ignore=shutil.ignore_patterns("online", "*.db*"))
    defs = copy / "customer_risk.yaml"
    defs.write_text(defs.read_text().replace("    source: customer_profile_source",
                                             "    source: customer_profile_push"))
    (copy / "push.yaml").write_text(PUSH_DEFS)
    run(BIN, "-C", copy, "apply")
    return copy


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_push(repo, runs):
    import pandas as pd
    py_repo, http_repo = push_repo(repo, "push-python"), push_repo(repo, "push-http")
    port = free_port()
    # One client waits for each answer: the server's load shedding (a request that waited 25 ms
    # in its socket gets a 503) only fires here when the shared machine stalls the server, and
    # this measures latency, not shedding.
    server = subprocess.Popen([str(BIN), "-C", str(http_repo), "serve", "--port", str(port),
                               "--max-queue-delay", "0"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline or server.poll() is not None:
                sys.exit("granary serve did not come up")
            time.sleep(0.05)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        methods = ["card", "paypal", "invoice"]
        results, pushes = [], 0
        with granary.FeatureStore(py_repo) as store:
            for n, repeats in ((1, max(runs * 100, 500)), (10_000, runs)):
                py_all, http_all = [], []
                for r in range(repeats):
                    pushes += 1  # every push newer than the last: all rows are written
                    at = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc) + dt.timedelta(
                        seconds=pushes)
                    frame = pd.DataFrame({
                        "customer_id": range(1, n + 1), "event_timestamp": [at] * n,
                        "tenure_days": [r] * n, "payment_method": [methods[r % 3]] * n,
                        "is_business": [r % 2 == 0] * n})
                    begin = time.perf_counter()
                    result = store.push("customer_profile_push", frame)
                    py_all.append(time.perf_counter() - begin)
                    assert result.written == n, result
                    begin = time.perf_counter()
                    body = json.dumps({
                        "push_source_name": "customer_profile_push", "to": "online",
                        "df": {"customer_id": frame["customer_id"].tolist(),
                               "event_timestamp": [at.strftime("%Y-%m-%dT%H:%M:%SZ")] * n,
                               "tenure_days": frame["tenure_days"].tolist(),
                               "payment_method": frame["payment_method"].tolist(),
                               "is_business": frame["is_business"].tolist()}})
                    conn.request("POST", "/push", body=body,
                                 headers={"Content-Type": "application/json"})
                    answer = conn.getresponse()
                    payload = answer.read()
                    http_all.append(time.perf_counter() - begin)
                    assert answer.status == 200, payload
                py, h = statistics.median(py_all), statistics.median(http_all)
                results.append((n, py, h))
                print(f"  {n} rows: Python push {py * 1e3:.2f} ms, POST /push (JSON built "
                      f"from the same DataFrame, over HTTP) {h * 1e3:.2f} ms; medians of "
                      f"{repeats}", flush=True)
        conn.close()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return results


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
            print("== materialization: Python vs the CLI", flush=True)
            bench_materialize(repo, runs)
            print("== push online: Python vs the feature server's POST /push", flush=True)
            bench_push(repo, runs)
    finally:
        for path in (repo, *repo.parent.glob(f"{repo.name}-push-*")):
            shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
