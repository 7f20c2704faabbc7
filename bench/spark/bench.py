"""Spark engine benchmark: Granary's training set on Spark vs the embedded engine, on the same
generated data (bench/pit_join's generator: N entity rows, K views of M rows, F features), beside
a floor measured in the same run: the same Spark Connect server scanning the same columns with a
plain aggregation (no join, no sort, one row back; bench/spark/spark_floor.cc).

Prints the median wall time of each (and the client's peak RSS: the granary process, which on
Spark holds the entity rows and one batch), checks that the two training sets agree row for row,
and prints the ratios. A cluster is started for the run (scripts/spark-cluster, stopped at the
end) unless --remote or $GRANARY_SPARK_REMOTE names one. Run it through bench/spark/run.
"""
import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entities", type=int, default=100_000, help="N entity rows")
    ap.add_argument("--views", type=int, default=3, help="K feature views")
    ap.add_argument("--rows", type=int, default=1_000_000, help="M rows per view")
    ap.add_argument("--features", type=int, default=10, help="F features per view")
    ap.add_argument("--keys", type=int, default=20_000, help="distinct join keys")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each (median)")
    ap.add_argument("--remote", default=os.environ.get("GRANARY_SPARK_REMOTE", ""),
                    help="a running Spark Connect server (default: start a local cluster)")
    ap.add_argument("--data", default=str(ROOT / "build" / "bench-data" / "spark"))
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--quick", action="store_true", help="N=20K, M=200K: a smoke run")
    args = ap.parse_args()
    if args.quick:
        args.entities, args.rows, args.keys, args.repeat = 20_000, 200_000, 5_000, 1
        args.data += "-quick"
    data = Path(args.data)
    n, k, m, f = args.entities, args.views, args.rows, args.features
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(f"machine: {os.cpu_count()} cores, {mem:.0f} GiB, {platform.platform()}")
    print(f"case: N={n:,} entity rows, K={k} views x M={m:,} rows x F={f} features, "
          f"{args.keys:,} keys (Zipf 1.1), ttls {[pit.ttl_of(v) for v in range(k)]} days",
          flush=True)
    pit.generate(data, n, k, m, f, args.keys, args.seed)

    state = None
    remote = args.remote
    if not remote:
        state = Path(tempfile.mkdtemp(prefix="granary-bench-spark-"))
        proc = subprocess.run([str(ROOT / "scripts" / "spark-cluster"), "start", "--port", "0",
                               "--state", str(state)], capture_output=True, text=True)
        if proc.returncode != 0:
            subprocess.run([str(ROOT / "scripts" / "spark-cluster"), "stop", "--state",
                            str(state)], capture_output=True)
            sys.exit(f"scripts/spark-cluster start failed:\n{proc.stderr}")
        remote = proc.stdout.strip()
    print(f"cluster: {remote} ({'started for this run: ' if state else ''}"
          "a local standalone cluster, 2 workers of 1 core and 640 MiB executors, on the same "
          "cores as everything else)", flush=True)
    try:
        embedded, spark = spark_repo(data, k, f, remote)
        results = {}

        def bench(name, make_cmd):
            runs = [pit.run_measured(make_cmd()) for _ in range(args.repeat)]
            secs = statistics.median(r[0] for r in runs)
            rss = max(r[1] for r in runs)
            results[name] = secs
            print(f"{name:<38} {secs:8.2f} s  (runs: {', '.join(f'{r[0]:.2f}' for r in runs)})"
                  f"  peak RSS {rss:6.0f} MiB", flush=True)

        outs = {"embedded": data / "out_embedded.parquet", "spark": data / "out_spark.parquet"}
        threads = os.cpu_count()
        bench("granary, embedded engine",
              lambda: pit.granary_cmd(embedded, data, outs["embedded"], k, f, "2GiB", threads))
        bench("granary, spark engine",
              lambda: pit.granary_cmd(spark, data, outs["spark"], k, f, "2GiB", threads))
        bench("floor: spark scan of the same columns",
              lambda: [str(ROOT / "build" / "bench" / "spark_floor"), remote,
                       floor_sql(data, k, f)])
        pit.check_agree(outs, k, f)
        floor = results["floor: spark scan of the same columns"]
        spark_time = results["granary, spark engine"]
        print(f"\nratios: spark engine / embedded engine time "
              f"{spark_time / results['granary, embedded engine']:.2f}x, "
              f"spark engine / spark floor time {spark_time / floor:.2f}x")
    finally:
        if state:
            subprocess.run([str(ROOT / "scripts" / "spark-cluster"), "stop", "--state",
                            str(state)], capture_output=True)


if __name__ == "__main__":
    main()
