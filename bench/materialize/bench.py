"""Materialization benchmark: `granary materialize` of a wide view (default 500K entities x 50
features, 2 rows of history each, Parquet) into RocksDB, Redis and Redis Cluster, with the
entities/s and the peak memory (RSS) of the granary process; beside it, in the same run,
redis-benchmark's pipelined SETs of the same number of values of the same size into the same
servers (the raw rate a client can reach). See docs/PERFORMANCE.md.
"""
import argparse
import os
import pathlib
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = pathlib.Path(__file__).resolve().parents[2]
GRANARY = ROOT / "build" / "granary"
T0 = np.datetime64("2026-11-01T00:00:00", "us")
END = "2026-11-20T00:00:00Z"


def log(*args):
    print(*args, flush=True)


def generate(folder, entities, features, history, files):
    """Writes `files` Parquet files, time-ordered, `history` rows per entity."""
    marker = folder / f"done-{entities}-{features}-{history}-{files}"
    if marker.exists():
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    rows = entities * history
    per_file = (rows + files - 1) // files
    # Row r belongs to entity r % entities, version r // entities (later versions, later times).
    for f in range(files):
        lo, hi = f * per_file, min(rows, (f + 1) * per_file)
        r = np.arange(lo, hi, dtype=np.int64)
        version = r // entities
        seconds = version * 86400 + (r % entities) * 86400 // entities
        ts = T0 + seconds.astype("timedelta64[s]")
        columns = {
            "customer_id": pa.array(r % entities + 1_000_000),
            "event_timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "created": pa.array(ts + np.timedelta64(5, "m"), pa.timestamp("us", tz="UTC")),
        }
        n = hi - lo
        for k in range(features):
            if k % 5 == 4:
                columns[f"f{k}"] = pa.array(rng.integers(0, 1000, n))
            else:
                columns[f"f{k}"] = pa.array(rng.random(n))
        pq.write_table(pa.table(columns), folder / f"part-{f:03d}.parquet",
                       row_group_size=64 * 1024, compression="snappy")
    marker.write_text("ok\n")


def definitions(features):
    schema = "\n".join(
        f"      - {{name: f{k}, type: {'int64' if k % 5 == 4 else 'float64'}}}"
        for k in range(features))
    return f"""entities:
  - {{name: customer, join_keys: [customer_id], value_type: int64}}
data_sources:
  - {{name: wide, path: data/wide, timestamp_field: event_timestamp,
     created_timestamp_column: created}}
feature_views:
  - name: customer_wide
    entities: [customer]
    source: wide
    ttl: 90d
    schema:
{schema}
"""


def free_port(cluster_bus=False):
    """A free port of 127.0.0.1; with cluster_bus, one whose port + 10000 (Redis Cluster's bus
    port) is a valid port and free too."""
    rng = np.random.default_rng()
    while True:
        port = int(rng.integers(20000, 55000)) if cluster_bus else 0
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                if cluster_bus:
                    b.bind(("127.0.0.1", port + 10000))
                return a.getsockname()[1]
        except OSError:
            continue


def redis_cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *map(str, args)], capture_output=True,
                          text=True, timeout=60).stdout.strip()


class Redis:
    """redis-server processes on free ports (standalone, or a cluster of masters)."""

    def __init__(self, workdir, masters=0):
        self.procs, self.ports = [], []
        count = max(1, masters)
        for i in range(count):
            port = free_port(cluster_bus=bool(masters))
            d = workdir / f"redis-{port}"
            d.mkdir()
            args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", str(d), "--protected-mode", "no"]
            if masters:
                args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
            self.procs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL))
            self.ports.append(port)
        for port in self.ports:
            for _ in range(1000):
                if redis_cli(port, "ping") == "PONG":
                    break
                time.sleep(0.01)
        if masters:
            created = subprocess.run(["redis-cli", "--cluster", "create",
                                      *[f"127.0.0.1:{p}" for p in self.ports], "--cluster-yes"],
                                     capture_output=True, text=True, timeout=60)
            if created.returncode != 0:
                self.stop()  # no server outlives a failed set-up
                sys.exit(f"redis-cli --cluster create failed: {created.stdout}{created.stderr}")
            for _ in range(1000):
                if all("cluster_state:ok" in redis_cli(p, "cluster", "info") for p in self.ports):
                    break
                time.sleep(0.05)

    def flush(self):
        for p in self.ports:
            redis_cli(p, "flushall")

    def keys(self):
        return sum(int(redis_cli(p, "dbsize") or 0) for p in self.ports)

    def used_memory(self):
        total = 0
        for p in self.ports:
            m = re.search(r"used_memory:(\d+)", redis_cli(p, "info", "memory"))
            total += int(m.group(1))
        return total

    def average_value_size(self):
        """The mean size of the stored values (strings), from redis-cli --bigkeys."""
        total_bytes = total_keys = 0
        for p in self.ports:
            out = redis_cli(p, "--bigkeys")
            m = re.search(r"(\d+) strings with (\d+) bytes", out)
            if m:
                total_keys += int(m.group(1))
                total_bytes += int(m.group(2))
        return round(total_bytes / total_keys) if total_keys else 0

    def cpu_seconds(self):
        """CPU time (user + system) the servers used so far."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for proc in self.procs:
            fields = pathlib.Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / tick

    def stop(self):
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(timeout=30)


def timed(cmd):
    """Runs cmd under /usr/bin/time; returns (seconds, peak RSS MiB, CPU seconds, stdout)."""
    full = ["/usr/bin/time", "-f", "__rss_kb=%M __cpu=%U+%S", *cmd]
    start = time.monotonic()
    proc = subprocess.run(full, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    rss = int(re.search(r"__rss_kb=(\d+)", proc.stderr).group(1)) / 1024
    user, system = re.search(r"__cpu=([\d.]+)\+([\d.]+)", proc.stderr).groups()
    return seconds, rss, float(user) + float(system), proc.stdout


def redis_benchmark(ports, cluster, n, size, pipeline, clients, nx_px_ms=0):
    """redis-benchmark SETs: values per second. With nx_px_ms, the command a first load sends
    instead of a plain SET: SET key value NX PX nx_px_ms (write-if-newer needs NX, the key ttl
    PX), on keys of the same random range."""
    cmd = ["redis-benchmark", "-p", str(ports[0]), "-n", str(n), "-r", str(n),
           "-P", str(pipeline), "-c", str(clients), "--csv"]
    if cluster:
        cmd.append("--cluster")
    if nx_px_ms:
        cmd += ["SET", "key:__rand_int__", "x" * size, "NX", "PX", str(nx_px_ms)]
    else:
        cmd += ["-t", "set", "-d", str(size)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600).stdout
    for line in out.splitlines():
        if line.startswith('"SET'):
            return float(line.split(",")[1].strip('"'))
    sys.exit(f"cannot read redis-benchmark's output:\n{out}")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entities", type=int, default=500_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--history", type=int, default=2, help="rows per entity")
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3, help="runs per store (median)")
    parser.add_argument("--stores", default="rocksdb,redis,redis_cluster")
    parser.add_argument("--budgets", default="1GiB,32MiB",
                        help="--memory-budget values to run on each store")
    parser.add_argument("--pipeline", type=int, default=64, help="redis-benchmark -P")
    parser.add_argument("--clients", type=int, default=4, help="redis-benchmark -c")
    parser.add_argument("--quick", action="store_true", help="50K entities, 1 run, 1 budget")
    parser.add_argument("--granary", action="append", default=[],
                        help="a granary binary to measure (repeat to compare builds in one run, "
                             "their runs interleaved); default build/granary")
    args = parser.parse_args()
    if args.quick:
        args.entities, args.runs, args.budgets = 50_000, 1, "1GiB"
    binaries = [pathlib.Path(g).resolve() for g in args.granary] or [GRANARY]
    for binary in binaries:
        if not binary.exists():
            sys.exit(f"{binary} is missing: run 'make build' first")

    data = ROOT / "build" / "bench-data" / "materialize" / f"e{args.entities}-f{args.features}"
    t = time.monotonic()
    generate(data, args.entities, args.features, args.history, args.files)
    size = sum(p.stat().st_size for p in data.glob("*.parquet"))
    log(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; data: {args.entities:,} entities x {args.features} "
        f"features, {args.entities * args.history:,} rows in {args.files} Parquet files "
        f"({size / 2**20:.0f} MiB; ready in {time.monotonic() - t:.1f}s)")

    work = pathlib.Path(tempfile.mkdtemp(prefix="granary-bench-mat-"))
    servers = []
    try:
        results = []
        for store in args.stores.split(","):
            server = None
            if store == "redis":
                server = Redis(work)
                online = f'{{type: redis, connection_string: "127.0.0.1:{server.ports[0]}"}}'
            elif store == "redis_cluster":
                server = Redis(work, masters=3)
                nodes = ", ".join(f'"127.0.0.1:{p}"' for p in server.ports)
                online = f"{{type: redis_cluster, nodes: [{nodes}]}}"
            else:
                online = "{type: rocksdb, path: data/online}"
            if server:
                servers.append(server)
            repo = work / store
            (repo / "data").mkdir(parents=True)
            (repo / "data" / "wide").symlink_to(data)
            (repo / "granary.yaml").write_text(f"project: bench\nonline_store: {online}\n")
            (repo / "features.yaml").write_text(definitions(args.features))
            subprocess.run([str(GRANARY), "-C", str(repo), "apply"], check=True,
                           capture_output=True)
            for budget in args.budgets.split(","):
                measured = {b: ([], [], [], [], "") for b in binaries}
                for _ in range(args.runs):
                    for binary in binaries:
                        times, rss, cpu, server_cpu, line = measured[binary]
                        if server:
                            server.flush()
                            before = server.cpu_seconds()
                        shutil.rmtree(repo / "data" / "online", ignore_errors=True)
                        seconds, peak, used, out = timed([str(binary), "-C", str(repo),
                                                          "materialize", "2026-10-01", END, "-q",
                                                          "--memory-budget", budget])
                        times.append(seconds)
                        rss.append(peak)
                        cpu.append(used)
                        if server:
                            server_cpu.append(server.cpu_seconds() - before)
                        measured[binary] = (times, rss, cpu, server_cpu, out.strip())
                        if server:
                            # Every entity, and the view's marker on each master (issue 16).
                            assert server.keys() == args.entities + len(server.ports), (
                                server.keys(), out)
                for binary in binaries:
                    times, rss, cpu, server_cpu, line = measured[binary]
                    median = statistics.median(times)
                    rate = args.entities / median
                    label = "" if len(binaries) == 1 else f" [{binary}]"
                    log(f"{store:14s} budget {budget:7s} granary materialize{label}: median "
                        f"{median:6.2f}s ({', '.join(f'{x:.2f}' for x in times)}), "
                        f"{rate / 1000:7.1f}K entities/s, peak RSS {max(rss):6.0f} MiB, "
                        f"granary CPU {statistics.median(cpu):.2f}s"
                        + (f", Redis CPU {statistics.median(server_cpu) * 1e6 / args.entities:.1f} "
                           f"us/entity" if server else ""))
                    log(f"    {line}")
                    if binary == binaries[0]:
                        results.append((store, budget, rate, max(rss)))
            if store == "rocksdb":
                baseline = ROOT / "build" / "bench" / "materialize_rocksdb_baseline"
                # Granary's record: version and expiry (9 bytes), then the body: fingerprint,
                # event time, created (a 5-byte varint here), null bitmap, 8 bytes per feature.
                record = 9 + 4 + 8 + 5 + (args.features + 7) // 8 + 8 * args.features
                rates = []
                for _ in range(args.runs):
                    target = work / "raw-rocksdb"
                    shutil.rmtree(target, ignore_errors=True)
                    out = subprocess.run([str(baseline), str(target), str(args.entities),
                                          str(record), "2"], capture_output=True, text=True,
                                         check=True).stdout
                    rates.append(float(out.strip()))
                base = statistics.median(rates)
                mine = max(r for s, b, r, _ in results if s == store)
                log(f"{store:14s} baseline raw RocksDB batched Puts of {record}-byte values, "
                    f"2 threads: median {base / 1000:.1f}K values/s "
                    f"({', '.join(f'{r / 1000:.0f}K' for r in rates)}); granary / raw = "
                    f"{mine / base:.2f}")
            if server:
                value = server.average_value_size()
                key_len = len("bench:") + 4
                mem = server.used_memory() / args.entities
                rates, bench_cpu = [], []
                for _ in range(args.runs):
                    server.flush()
                    before = server.cpu_seconds()
                    rates.append(redis_benchmark(server.ports, store == "redis_cluster",
                                                 args.entities, value, args.pipeline,
                                                 args.clients))
                    bench_cpu.append(server.cpu_seconds() - before)
                base = statistics.median(rates)
                log(f"{store:14s} baseline redis-benchmark SET -P {args.pipeline} -c "
                    f"{args.clients} -d {value} (the stored value size; keys ~{key_len} B): "
                    f"median {base / 1000:.1f}K values/s ({', '.join(f'{r / 1000:.0f}K' for r in rates)}), "
                    f"Redis CPU {statistics.median(bench_cpu) * 1e6 / args.entities:.1f} us/value")
                # The floor of the command write-if-newer sends for absent keys (90 days: the
                # view's ttl), measured the same way; standalone only (redis-benchmark's cluster
                # mode does not route a custom command).
                nx_rates, nx_cpu = [], []
                for _ in range(args.runs if store == "redis" else 0):
                    server.flush()
                    before = server.cpu_seconds()
                    nx_rates.append(redis_benchmark(server.ports, store == "redis_cluster",
                                                    args.entities, value, args.pipeline,
                                                    args.clients, nx_px_ms=90 * 86400 * 1000))
                    nx_cpu.append(server.cpu_seconds() - before)
                mine = max(r for s, b, r, _ in results if s == store)
                nx_ratio = ""
                if nx_rates:
                    nx_base = statistics.median(nx_rates)
                    log(f"{store:14s} baseline redis-benchmark SET NX PX (the command of a first "
                        f"load, same sizes): median {nx_base / 1000:.1f}K values/s "
                        f"({', '.join(f'{r / 1000:.0f}K' for r in nx_rates)}), Redis CPU "
                        f"{statistics.median(nx_cpu) * 1e6 / args.entities:.1f} us/value")
                    nx_ratio = f", granary / SET NX PX = {mine / nx_base:.2f}"
                log(f"{store:14s} granary / raw Redis = {mine / base:.2f} "
                    f"(goal >= 0.8){nx_ratio}; Redis memory after granary: {mem:.0f} B per entity")
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
