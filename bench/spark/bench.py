"""Spark engine benchmark: Granary's training set on Spark vs the embedded engine, on the same
generated data (bench/pit_join's generator: N entity rows, K views of M rows, F features), beside
a floor measured in the same run: the same Spark Connect server scanning the same columns with a
plain aggregation (no join, no sort, one row back; bench/spark/spark_floor.cc).

With .venv-feast holding pyspark (requirements-feast.lock), the same training set also runs
through Feast's Spark offline store (the real feast package, bench/spark/feast_store.py) on the
same Spark Connect server and files, and its rows are compared with Granary's.

`--sizes 1000000,4000000` runs the whole comparison at several history sizes (M rows per view)
and ends with the client's peak RSS per size: on Spark the feature rows never reach the client,
so its memory must stay flat as the history grows, including beyond `--memory-budget`.

`--sdk` adds the Python SDK's streaming client on both engines (bench/spark/sdk_stream.py:
FeatureStore.stream_historical_features, each batch written to Parquet as it arrives), measured
the same way, in a process of its own, its output checked with the others.

Prints the median wall time of each (and the client's peak RSS: the granary process, which on
Spark holds the entity rows and one batch), checks that the training sets agree row for row,
and prints the ratios. A cluster is started for the run (scripts/spark-cluster, stopped at the
end) unless --remote or $GRANARY_SPARK_REMOTE names one. Run it through bench/spark/run.
"""
import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench" / "pit_join"))
import bench as pit  # noqa: E402  (bench/pit_join/bench.py: data, repository, checks)


def spark_repo(data, k, f, remote):
    """bench/pit_join's repository, a copy whose offline store is the Spark engine."""
    embedded = pit.write_repo(data, k, f)
    repo = data / "repo-spark"
    repo.mkdir(exist_ok=True)
    (repo / "features.yaml").write_text((embedded / "features.yaml").read_text())
    (repo / "granary.yaml").write_text(
        f'project: pit_bench\noffline_store: {{type: spark, remote: "{remote}"}}\n')
    subprocess.run([str(ROOT / "build" / "granary"), "-C", str(repo), "apply"], check=True,
                   stdout=subprocess.DEVNULL)
    return embedded, repo


def floor_sql(data, k, f):
    """One scan of every column a training set reads, aggregated to one row."""
    parts = []
    for v in range(k):
        sums = ", ".join(f"sum(f{j})" for j in range(f))
        parts.append(f"SELECT count(*) AS n, max(event_timestamp) AS t, count(created) AS c, "
                     f"sum(driver_id) AS k, {sums} FROM parquet.`{data / f'view{v}'}`")
    entities = (f"SELECT count(*), max(event_timestamp), count(*), sum(driver_id), "
                + ", ".join(["0D"] * f) + f" FROM parquet.`{data / 'entities.parquet'}`")
    return " UNION ALL ".join(parts + [entities])


FEAST_PYTHON = ROOT / ".venv-feast" / "bin" / "python"
UNITS = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "B": 1}


def parse_bytes(text):
    """'2GiB' -> bytes (the SDK takes memory_budget in bytes)."""
    for unit, factor in UNITS.items():
        if text.endswith(unit):
            return int(float(text[:-len(unit)]) * factor)
    return int(text)


def sdk_cmd(repo, data, out, k, f, budget, threads):
    """The SDK's streaming client (sdk_stream.py) in a process of its own, on build/python."""
    params = json.dumps({"repo": str(repo), "entities": str(data / "entities.parquet"), "k": k,
                         "f": f, "out": str(out), "memory_budget": parse_bytes(budget),
                         "threads": threads})
    return ["/usr/bin/env", f"PYTHONPATH={ROOT / 'build' / 'python'}", sys.executable,
            str(ROOT / "bench" / "spark" / "sdk_stream.py"), params]


def run_limited(cmd, timeout):
    """pit.run_measured with a time limit: (seconds, peak RSS MiB), or RuntimeError saying
    which limit was hit. The command runs in a session of its own, stopped as a whole (SIGTERM
    to its process group, by id) when the limit passes."""
    report = Path(tempfile.gettempdir()) / f"spark_bench_rss.{os.getpid()}"
    t0 = time.perf_counter()
    proc = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", str(report)] + cmd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate()
        report.unlink(missing_ok=True)
        raise RuntimeError(f"did not finish within {timeout:.0f} s (stopped)")
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        report.unlink(missing_ok=True)
        # The message, not the last frame of a Java or Python stack trace.
        lines = [x.strip() for x in err.splitlines()
                 if x.strip() and not x.startswith((" ", "\t")) and "Traceback" not in x]
        log = Path(tempfile.gettempdir()) / f"spark_bench_stderr.{os.getpid()}.log"
        log.write_text(err)
        raise RuntimeError(f"{lines[-1] if lines else f'exit {proc.returncode}'} "
                           f"(whole stderr: {log})")
    rss_kib = int(report.read_text().split()[-1])
    report.unlink()
    return seconds, rss_kib / 1024


def feast_ready():
    """None when .venv-feast can run Feast's Spark offline store, else why not."""
    if not FEAST_PYTHON.exists():
        return f"{FEAST_PYTHON} is missing (scripts/setup makes it from requirements-feast.lock)"
    probe = subprocess.run([str(FEAST_PYTHON), "-c",
                            "import pyspark.sql.connect.session, feast.infra.offline_stores."
                            "contrib.spark_offline_store.spark"], capture_output=True, text=True)
    if probe.returncode != 0:
        last = probe.stderr.strip().splitlines()[-1:] or ["(no message)"]
        return f"{FEAST_PYTHON} cannot import Feast's Spark store: {last[0]}"
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entities", type=int, default=100_000, help="N entity rows")
    ap.add_argument("--views", type=int, default=3, help="K feature views")
    ap.add_argument("--rows", type=int, default=1_000_000, help="M rows per view")
    ap.add_argument("--sizes", default="",
                    help="comma-separated M values (rows per view): the whole comparison at each "
                         "history size, then the client's peak RSS per size (default: --rows)")
    ap.add_argument("--memory-budget", default="2GiB",
                    help="the granary client's --memory-budget (both engines)")
    ap.add_argument("--sdk", action="store_true",
                    help="also the Python SDK's stream_historical_features on both engines")
    ap.add_argument("--no-feast", action="store_true",
                    help="leave out Feast's Spark offline store")
    ap.add_argument("--feast-sizes", default="",
                    help="comma-separated M values at which Feast runs (default: every size)")
    ap.add_argument("--feast-timeout", type=float, default=1800,
                    help="seconds after which a Feast run is stopped and reported as such")
    ap.add_argument("--features", type=int, default=10, help="F features per view")
    ap.add_argument("--keys", type=int, default=20_000, help="distinct join keys")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each (median)")
    ap.add_argument("--remote", default=os.environ.get("GRANARY_SPARK_REMOTE", ""),
                    help="a running Spark Connect server (default: start a local cluster)")
    ap.add_argument("--driver-memory", default="768m",
                    help="heap of the local cluster's Spark Connect driver (scripts/spark-cluster "
                         "--driver-memory; default 768m). Feast's plan on the main case needs "
                         "about 4g. Ignored with --remote")
    ap.add_argument("--data", default=str(ROOT / "build" / "bench-data" / "spark"))
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--quick", action="store_true", help="N=20K, M=200K: a smoke run")
    args = ap.parse_args()
    if args.quick:
        args.entities, args.rows, args.keys, args.repeat = 20_000, 200_000, 5_000, 1
        args.data += "-quick"
    sizes = [int(x) for x in args.sizes.split(",")] if args.sizes else [args.rows]
    args.feast_sizes = [int(x) for x in args.feast_sizes.split(",")] if args.feast_sizes else []
    n, k, f = args.entities, args.views, args.features
    ttls = [pit.ttl_of(v) for v in range(k)]
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(f"machine: {os.cpu_count()} cores, {mem:.0f} GiB, {platform.platform()}")
    print(f"case: N={n:,} entity rows, K={k} views x M={'/'.join(f'{m:,}' for m in sizes)} rows "
          f"x F={f} features, {args.keys:,} keys (Zipf 1.1), ttls {ttls} days; "
          f"granary --memory-budget {args.memory_budget}", flush=True)
    feast_missing = "left out (--no-feast)" if args.no_feast else feast_ready()
    if feast_missing:
        print(f"feast: {feast_missing}", flush=True)

    state = None
    remote = args.remote
    if not remote:
        state = Path(tempfile.mkdtemp(prefix="granary-bench-spark-"))
        proc = subprocess.run([str(ROOT / "scripts" / "spark-cluster"), "start", "--port", "0",
                               "--state", str(state), "--driver-memory", args.driver_memory],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            subprocess.run([str(ROOT / "scripts" / "spark-cluster"), "stop", "--state",
                            str(state)], capture_output=True)
            sys.exit(f"scripts/spark-cluster start failed:\n{proc.stderr}")
        remote = proc.stdout.strip()
    where = ("started for this run: a local standalone cluster, 2 workers of 1 core and 640 MiB "
             f"executors, a Connect driver of {args.driver_memory}, on the same cores as "
             "everything else" if state else "a running cluster, given by --remote")
    print(f"cluster: {remote} ({where})", flush=True)
    summary = []  # (M, {name: (seconds, peak RSS MiB)})
    try:
        for m in sizes:
            summary.append((m, run_size(args, Path(args.data) / f"m{m}", n, k, m, f, ttls,
                                        remote, feast_missing)))
    finally:
        if state:
            subprocess.run([str(ROOT / "scripts" / "spark-cluster"), "stop", "--state",
                            str(state)], capture_output=True)
    print(f"\n== client peak RSS (MiB) by history size (granary --memory-budget "
          f"{args.memory_budget})")
    for m, figures in summary:
        print(f"M = {m:>11,}: " + ", ".join(f"{name.split(':')[0]} {rss:.0f}"
                                            for name, (_, rss) in figures.items()))

def run_size(args, data, n, k, m, f, ttls, remote, feast_missing):
    """The whole comparison at one history size; returns {name: (median s, peak RSS MiB)}."""
    print(f"\n== M = {m:,} rows per view ({k * m:,} feature rows)", flush=True)
    pit.generate(data, n, k, m, f, args.keys, args.seed)
    embedded, spark = spark_repo(data, k, f, remote)
    results = {}

    def bench(name, make_cmd):
        runs = [pit.run_measured(make_cmd()) for _ in range(args.repeat)]
        secs = statistics.median(r[0] for r in runs)
        rss = max(r[1] for r in runs)
        results[name] = (secs, rss)
        print(f"{name:<38} {secs:8.2f} s  (runs: {', '.join(f'{r[0]:.2f}' for r in runs)})"
              f"  peak RSS {rss:6.0f} MiB", flush=True)

    outs = {"embedded": data / "out_embedded.parquet", "spark": data / "out_spark.parquet"}
    threads = os.cpu_count()
    budget = args.memory_budget
    bench("granary, embedded engine",
          lambda: pit.granary_cmd(embedded, data, outs["embedded"], k, f, budget, threads))
    bench("granary, spark engine",
          lambda: pit.granary_cmd(spark, data, outs["spark"], k, f, budget, threads))
    if args.sdk:
        # The SDK's own floor: the interpreter with pyarrow and granary imported, nothing read.
        bench("python sdk: imports only (floor)",
              lambda: ["/usr/bin/env", f"PYTHONPATH={ROOT / 'build' / 'python'}", sys.executable,
                       "-c", "import pyarrow.parquet, granary"])
        for engine, repo in (("embedded", embedded), ("spark", spark)):
            outs[f"sdk_{engine}"] = data / f"out_sdk_{engine}.parquet"
            bench(f"python sdk stream, {engine} engine",
                  lambda: sdk_cmd(repo, data, outs[f"sdk_{engine}"], k, f, budget, threads))
    bench("floor: spark scan of the same columns",
          lambda: [str(ROOT / "build" / "bench" / "spark_floor"), remote,
                   floor_sql(data, k, f)])
    if not feast_missing and (not args.feast_sizes or m in args.feast_sizes):
        # Last, so that a run cut off by --feast-timeout leaves no job beside the others.
        out = data / "out_feast.parquet"
        out.unlink(missing_ok=True)
        params = json.dumps({"data": str(data), "remote": remote, "k": k, "f": f,
                             "ttls": ttls, "out": str(out)})
        name = "feast, spark offline store"
        try:
            runs = [run_limited([str(FEAST_PYTHON), str(ROOT / "bench" / "spark" /
                                                        "feast_store.py"), params],
                                args.feast_timeout) for _ in range(args.repeat)]
            secs = statistics.median(r[0] for r in runs)
            results[name] = (secs, max(r[1] for r in runs))
            print(f"{name:<38} {secs:8.2f} s  (runs: {', '.join(f'{r[0]:.2f}' for r in runs)})"
                  f"  peak RSS {results[name][1]:6.0f} MiB", flush=True)
            outs["feast"] = out
        except RuntimeError as e:  # Feast's failure is a figure too: say it, go on with ours
            print(f"{name:<38} FAILED: {e}", flush=True)
    pit.check_agree(outs, k, f)
    floor = results["floor: spark scan of the same columns"][0]
    spark_time = results["granary, spark engine"][0]
    line = (f"ratios: spark engine / embedded engine time "
            f"{spark_time / results['granary, embedded engine'][0]:.2f}x, "
            f"spark engine / spark floor time {spark_time / floor:.2f}x")
    if "feast, spark offline store" in results:
        line += (f", feast spark store / granary spark engine time "
                 f"{results['feast, spark offline store'][0] / spark_time:.2f}x")
    print(line, flush=True)
    return results

if __name__ == "__main__":
    main()
