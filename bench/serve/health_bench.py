"""The cost of a GET /health probe (docs/PERFORMANCE.md, "Health probes").

Builds a small repository (one view, 1,000 customers, a local RocksDB store and SQLite
registry), materializes it, starts `granary serve` on a free port of 127.0.0.1 and sends probes
one after another on one keep-alive connection: GET /health, then GET /registry as the baseline
(a prebuilt answer, no I/O) in the same run. Prints the median and p99 of each, their ratio and
the machine. Every process it starts is stopped by pid.

    .venv/bin/python bench/serve/health_bench.py [--granary build/granary] [--probes 3000]
"""
import argparse
import datetime as dt
import http.client
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

DEFINITIONS = """
entities:
  - {name: customer, join_keys: [customer_id], value_type: int64}
data_sources:
  - {name: payments, path: data/payments, timestamp_field: event_timestamp}
feature_views:
  - name: risk
    entities: [customer]
    source: payments
    ttl: 30d
    schema:
      - {name: score, type: float64}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_repo(granary, root):
    (root / "data" / "payments").mkdir(parents=True)
    (root / "granary.yaml").write_text("project: healthbench\n")
    (root / "features.yaml").write_text(DEFINITIONS)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    n = 1000
    pq.write_table(pa.table({
        "customer_id": pa.array(range(n), pa.int64()),
        "event_timestamp": pa.array([now - dt.timedelta(hours=1)] * n,
                                    pa.timestamp("us", tz="UTC")),
        "score": pa.array([i / n for i in range(n)], pa.float64())}),
        root / "data" / "payments" / "a.parquet")
    for args in (["apply"], ["materialize-incremental", "now", "-q"]):
        subprocess.run([granary, "-C", root, *args], check=True, capture_output=True)


def time_probes(port, path, probes):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    took = []
    try:
        for _ in range(probes):
            start = time.perf_counter()
            conn.request("GET", path)
            res = conn.getresponse()
            body = res.read()
            took.append(time.perf_counter() - start)
            if res.status != 200:
                raise SystemExit(f"GET {path} answered {res.status}: {body[:300]}")
    finally:
        conn.close()
    took.sort()
    return statistics.median(took), took[int(len(took) * 0.99)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--granary", default="build/granary", help="the granary binary")
    parser.add_argument("--probes", type=int, default=3000, help="probes per endpoint")
    args = parser.parse_args()
    granary = str(Path(args.granary).resolve())
    root = Path(tempfile.mkdtemp(prefix="granary-health-bench-"))
    proc = None
    try:
        make_repo(granary, root)
        port = free_port()
        log = open(root / "serve.log", "w")
        proc = subprocess.Popen([granary, "-C", root, "serve", "--port", str(port),
                                 "--threads", "1", "--max-queue-delay", "0"],
                                stdout=log, stderr=log)
        deadline = time.time() + 30
        while True:
            try:
                time_probes(port, "/health", 1)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise SystemExit("granary serve did not come up:\n" +
                                     (root / "serve.log").read_text())
                time.sleep(0.05)
        time_probes(port, "/health", 200)  # warm-up
        time_probes(port, "/registry", 200)
        health = time_probes(port, "/health", args.probes)
        static = time_probes(port, "/registry", args.probes)
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
              f"load {os.getloadavg()[0]:.1f}; {args.probes} sequential probes each, "
              f"one keep-alive connection, RocksDB store, SQLite registry")
        print(f"GET /health    median {health[0] * 1e6:7.0f} us   p99 {health[1] * 1e6:7.0f} us")
        print(f"GET /registry  median {static[0] * 1e6:7.0f} us   p99 {static[1] * 1e6:7.0f} us"
              "   (baseline: a prebuilt answer)")
        print(f"/health / /registry: {health[0] / static[0]:.2f}x (median)")
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
