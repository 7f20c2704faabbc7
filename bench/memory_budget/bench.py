"""Memory budget benchmark: does a run keep to --memory-budget plus the stated fixed overhead?

Writes one Parquet file of R rows (customer_id from E entities, event and created times, F
float64 features; row groups of G rows), then runs `granary materialize` (into RocksDB) and
`granary get-historical-features` (N entity rows, every feature) with each budget, each in its own
process under /usr/bin/time, and prints peak RSS, the peak Arrow memory the command reports and
RSS minus the budget (the overhead), against the promise: peak RSS <= budget + 300 MiB. The floor
beside it: the RSS of a process that only loads the registry (`granary plan`). Run it through
bench/memory_budget/run.
"""
import argparse
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = pathlib.Path(__file__).resolve().parents[2]
OVERHEAD_MIB = 300  # the fixed overhead docs/PERFORMANCE.md states
T0 = np.datetime64("2025-01-01T00:00:00", "us")


def generate(folder, rows, group, entities, features, entity_rows):
    marker = folder / f"done-v2-{rows}-{group}-{entities}-{features}-{entity_rows}"
    if marker.exists():
        return
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "data" / "wide").mkdir(parents=True)
    rng = np.random.default_rng(3)
    writer = None
    for lo in range(0, rows, group):
        n = min(group, rows - lo)
        r = np.arange(lo, lo + n, dtype=np.int64)
        ts = T0 + (r * 3).astype("timedelta64[s]")
        cols = {"customer_id": pa.array(rng.integers(0, entities, n) + 1_000_000),
                "event_timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
                "created": pa.array(ts + np.timedelta64(5, "m"), pa.timestamp("us", tz="UTC"))}
        for k in range(features):
            cols[f"f{k}"] = pa.array(rng.random(n))
        table = pa.table(cols)
        if writer is None:
            writer = pq.ParquetWriter(folder / "data" / "wide" / "part-000.parquet", table.schema,
                                      compression="snappy")
        writer.write_table(table, row_group_size=group)
    writer.close()
    end = rows * 3
    ts = T0 + rng.integers(0, end, entity_rows).astype("timedelta64[s]")
    pq.write_table(pa.table({
        "customer_id": pa.array(rng.integers(0, entities, entity_rows) + 1_000_000),
        "event_timestamp": pa.array(ts, pa.timestamp("us", tz="UTC"))}),
        folder / "entities.parquet")
    schema = "\n".join(f"      - {{name: f{k}, type: float64}}" for k in range(features))
    (folder / "granary.yaml").write_text(
        "project: membudget\nonline_store: {type: rocksdb, path: data/online}\n")
    (folder / "features.yaml").write_text(f"""entities:
  - {{name: customer, join_keys: [customer_id], value_type: int64}}
data_sources:
  - {{name: wide, path: data/wide, timestamp_field: event_timestamp,
     created_timestamp_column: created}}
feature_views:
  - name: customer_wide
    entities: [customer]
    source: wide
    ttl: 3650d
    schema:
{schema}
""")
    marker.write_text("ok\n")


def timed(cmd):
    """(seconds, peak RSS MiB, stdout + stderr) of cmd under /usr/bin/time."""
    start = time.monotonic()
    proc = subprocess.run(["/usr/bin/time", "-f", "__rss_kb=%M", *cmd], capture_output=True,
                          text=True)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{proc.stdout}\n{proc.stderr}")
    rss = int(re.search(r"__rss_kb=(\d+)", proc.stderr).group(1)) / 1024
    return seconds, rss, proc.stdout + proc.stderr


def mib(budget):
    m = re.fullmatch(r"(\d+)(MiB|GiB)", budget)
    return int(m.group(1)) * (1024 if m.group(2) == "GiB" else 1)


def parking(args):
    """The parking example at a datagen scale: materialize every online view over the whole
    period and build both services' training sets from the generated labels, per budget."""
    repo = pathlib.Path(args.data).parent / f"parking-{args.parking}"
    granary = args.granary
    t = time.monotonic()
    if not (repo / "data" / "done").exists():
        shutil.rmtree(repo, ignore_errors=True)
        shutil.copytree(ROOT / "examples" / "parking", repo)
        subprocess.run([granary, "datagen", "--scale", args.parking, "--out", repo / "data",
                        "--end", "2026-11-01", "-q"], check=True)
        # The bay labels come as a folder of files; entity rows are one file.
        pq.write_table(pq.read_table(repo / "data" / "bay_demand_labels"),
                       repo / "data" / "bay_demand_labels.parquet")
        (repo / "data" / "done").write_text("ok\n")
    size = sum(f.stat().st_size for f in (repo / "data").rglob("*") if f.is_file())
    print(f"data: granary datagen --scale {args.parking}, {size / 2**30:.1f} GiB "
          f"({time.monotonic() - t:.0f}s)", flush=True)
    subprocess.run([granary, "-C", repo, "apply"], check=True, capture_output=True)
    _, floor, _ = timed([granary, "-C", repo, "plan"])
    print(f"floor: `granary plan` (libraries, registry) peak RSS {floor:.0f} MiB", flush=True)
    days = {"tiny": 60, "small": 182, "seed": 730}[args.parking]
    start = (np.datetime64("2026-11-01") - np.timedelta64(days, "D")).astype(str)
    cases = {
        "materialize": lambda b: [granary, "-C", repo, "materialize", start, "2026-11-01",
                                  "--memory-budget", b, "--spill-dir", repo],
    }
    for service, labels in (("customer_risk_v1", "customer_risk_labels.parquet"),
                            ("demand_prediction_v1", "bay_demand_labels.parquet")):
        cases[service] = (lambda service, labels: lambda b: [
            granary, "-C", repo, "get-historical-features", "--entities",
            repo / "data" / labels, "--feature-service", service, "-o",
            repo / f"out-{service}.parquet", "--memory-budget", b, "--spill-dir", repo])(
                service, labels)
    kept = True
    for name, command in cases.items():
        for budget in args.budgets.split(","):
            shutil.rmtree(repo / "data" / "online", ignore_errors=True)
            seconds, rss, out = timed(command(budget))
            m = re.search(r"peak Arrow memory (\d+) MiB", out)
            spills = [int(x) for x in re.findall(r"(\d+) MiB spilled", out)]
            within = rss <= mib(budget) + OVERHEAD_MIB
            kept = kept and within
            print(f"{name:20s} budget {budget:>6s}: {seconds:7.1f}s, peak RSS {rss:5.0f} MiB "
                  f"(budget + {rss - mib(budget):.0f}), peak Arrow memory "
                  f"{m.group(1) if m else '?'} MiB, {sum(spills)} MiB spilled: "
                  f"{'within' if within else 'OVER'} budget + {OVERHEAD_MIB} MiB", flush=True)
            for line in out.splitlines():
                if ": matched " in line or "streaming " in line or "warning" in line:
                    print(f"    {line.strip()}", flush=True)
    print("all runs within budget + overhead" if kept else "some runs went over", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--row-group", type=int, default=1_000_000)
    ap.add_argument("--entities", type=int, default=1_000_000, help="distinct customer ids")
    ap.add_argument("--features", type=int, default=8)
    ap.add_argument("--entity-rows", type=int, default=100_000, help="training set rows")
    ap.add_argument("--budgets", default="64MiB,1GiB")
    ap.add_argument("--runs", type=int, default=3, help="runs per case (median time)")
    ap.add_argument("--granary", default=str(ROOT / "build" / "granary"),
                    help="the binary to measure (e.g. an older build, for before/after)")
    ap.add_argument("--data", default=str(ROOT / "build" / "bench-data" / "memory_budget"))
    ap.add_argument("--quick", action="store_true", help="1M rows in 4 row groups, 1 run")
    ap.add_argument("--parking", choices=["tiny", "small", "seed"],
                    help="instead: the parking example at this `granary datagen` scale "
                         "(materialize, and the training sets of both feature services; one run "
                         "per budget)")
    args = ap.parse_args()
    if args.parking:
        parking(args)
        return
    if args.quick:
        args.rows, args.row_group, args.entities, args.entity_rows, args.runs = (
            1_000_000, 250_000, 100_000, 10_000, 1)
    repo = pathlib.Path(args.data)
    t = time.monotonic()
    generate(repo, args.rows, args.row_group, args.entities, args.features, args.entity_rows)
    size = (repo / "data" / "wide" / "part-000.parquet").stat().st_size
    print(f"data: {args.rows:,} rows in row groups of {args.row_group:,}, {args.features} "
          f"features, {size / 2**20:.0f} MiB of Parquet ({time.monotonic() - t:.0f}s)", flush=True)
    granary = args.granary
    subprocess.run([granary, "-C", repo, "apply"], check=True, capture_output=True)
    _, floor, _ = timed([granary, "-C", repo, "plan"])
    print(f"floor: `granary plan` (libraries, registry) peak RSS {floor:.0f} MiB", flush=True)
    features = ",".join(f"customer_wide:f{k}" for k in range(args.features))
    cases = {
        "materialize": lambda b: [granary, "-C", repo, "materialize", "2024-12-01", "2026-12-01",
                                  "-q", "--memory-budget", b],
        "training set": lambda b: [granary, "-C", repo, "get-historical-features", "-q",
                                   "--entities", repo / "entities.parquet", "--features",
                                   features, "-o", repo / "out.parquet", "--memory-budget", b],
    }
    kept = True
    for name, command in cases.items():
        for budget in args.budgets.split(","):
            times, peaks, arrow = [], [], []
            for _ in range(args.runs):
                shutil.rmtree(repo / "data" / "online", ignore_errors=True)
                seconds, rss, out = timed(command(budget))
                times.append(seconds)
                peaks.append(rss)
                m = re.search(r"peak Arrow memory (\d+) MiB", out)
                arrow.append(int(m.group(1)) if m else -1)
            spill = re.search(r"(\d+) partitions \((\d+) MiB spilled", out)
            peak = max(peaks)
            within = peak <= mib(budget) + OVERHEAD_MIB
            kept = kept and within
            print(f"{name:12s} budget {budget:>6s}: median {statistics.median(times):6.2f}s "
                  f"({', '.join(f'{x:.2f}' for x in times)}), peak RSS {peak:5.0f} MiB "
                  f"(budget + {peak - mib(budget):.0f}), peak Arrow memory "
                  f"{max(arrow) if max(arrow) >= 0 else '?'} MiB"
                  + (f", {spill.group(1)} partitions, {spill.group(2)} MiB spilled" if spill
                     else "")
                  + f": {'within' if within else 'OVER'} budget + {OVERHEAD_MIB} MiB", flush=True)
    print("all runs within budget + overhead" if kept else "some runs went over", flush=True)


if __name__ == "__main__":
    main()
