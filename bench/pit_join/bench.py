"""Point-in-time join benchmark: Granary vs DuckDB's ASOF JOIN vs pandas merge_asof.

Generates an entity file of N rows and K feature views of M rows with F float features over two
years (join keys drawn with Zipf-like skew), then runs each engine in its own process on the same
Parquet files, checks that the three outputs agree row for row, and prints wall time and peak
memory (max RSS of the process) of each. Run it through bench/pit_join/run.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]
TWO_YEARS_US = 2 * 365 * 86_400 * 1_000_000
START_US = 1_640_995_200 * 1_000_000  # 2022-01-01T00:00:00Z
TTLS_DAYS = [90, 30, 0]  # per view, cycled; 0 = no lower bound


def ttl_of(view):
    return TTLS_DAYS[view % len(TTLS_DAYS)]


def skewed_keys(rng, count, n_keys, exponent=1.1):
    """Keys 0..n_keys-1 with probability proportional to 1/(rank+1)^exponent, ranks shuffled."""
    weights = 1.0 / np.power(np.arange(1, n_keys + 1, dtype=np.float64), exponent)
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    ranks = np.searchsorted(cdf, rng.random(count), side="right")
    perm = rng.permutation(n_keys)
    return perm[np.minimum(ranks, n_keys - 1)].astype(np.int64)


def generate(data, n, k, m, f, n_keys, seed):
    stamp = data / "params.json"
    params = {"n": n, "k": k, "m": m, "f": f, "keys": n_keys, "seed": seed, "version": 2}
    if stamp.exists() and json.loads(stamp.read_text()) == params:
        print(f"data: reusing {data}", flush=True)
        return
    if data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    t0 = time.time()
    ts_type = pa.timestamp("us", tz="UTC")
    for v in range(k):
        folder = data / f"view{v}"
        folder.mkdir()
        keys = skewed_keys(rng, m, n_keys)
        ts = START_US + rng.integers(0, TWO_YEARS_US, m)
        # One row per (key, event time): full ties would make DuckDB's and pandas' choice
        # arbitrary, so the three engines could not be compared row for row.
        order = np.lexsort((ts, keys))
        dup = np.zeros(m, dtype=bool)
        dup[order[1:]] = (keys[order[1:]] == keys[order[:-1]]) & (ts[order[1:]] == ts[order[:-1]])
        keep = ~dup
        keys, ts = keys[keep], ts[keep]
        created = ts + rng.integers(0, 86_400 * 1_000_000, len(ts))
        # Sources are written in time order, as pipelines append them, in 8 files.
        by_time = np.argsort(ts, kind="stable")
        keys, ts, created = keys[by_time], ts[by_time], created[by_time]
        columns = {"driver_id": pa.array(keys), "event_timestamp": pa.array(ts, ts_type),
                   "created": pa.array(created, ts_type)}
        for j in range(f):
            columns[f"f{j}"] = pa.array(rng.random(len(ts)))
        table = pa.table(columns)
        del columns
        parts = 8
        for p in range(parts):
            lo, hi = len(ts) * p // parts, len(ts) * (p + 1) // parts
            pq.write_table(table.slice(lo, hi - lo), folder / f"part-{p:03}.parquet",
                           row_group_size=256 * 1024)
        del table
        print(f"data: view{v}: {len(ts):,} rows ({time.time() - t0:.0f}s)", flush=True)
    keys = skewed_keys(rng, n, n_keys + n_keys // 50)  # ~2% of entity keys have no features
    ts = START_US + rng.integers(0, TWO_YEARS_US, n)
    pq.write_table(pa.table({"row_id": pa.array(np.arange(n, dtype=np.int64)),
                             "driver_id": pa.array(keys),
                             "event_timestamp": pa.array(ts, ts_type)}),
                   data / "entities.parquet")
    stamp.write_text(json.dumps(params))
    print(f"data: {n:,} entity rows; generated in {time.time() - t0:.0f}s", flush=True)


def write_repo(data, k, f):
    repo = data / "repo"
    repo.mkdir(exist_ok=True)
    (repo / "granary.yaml").write_text("project: pit_bench\n")
    lines = ["entities:", "  - {name: driver, join_keys: [driver_id], value_type: int64}",
             "data_sources:"]
    for v in range(k):
        lines.append(f"  - {{name: view{v}_source, path: {data / f'view{v}'}, "
                     "timestamp_field: event_timestamp, created_timestamp_column: created}")
    lines.append("feature_views:")
    for v in range(k):
        lines += [f"  - name: view{v}", "    entities: [driver]", f"    source: view{v}_source",
                  f"    ttl: {ttl_of(v)}d" if ttl_of(v) else "    ttl: 0", "    schema:"]
        lines += [f"      - {{name: f{j}, type: float64}}" for j in range(f)]
    (repo / "features.yaml").write_text("\n".join(lines) + "\n")
    subprocess.run([GRANARY, "-C", str(repo), "apply"], check=True,
                   stdout=subprocess.DEVNULL)
    return repo


DUCKDB_SCRIPT = """
import duckdb, sys, json
p = json.loads(sys.argv[1])
con = duckdb.connect()
con.execute(f"SET threads = {p['threads']}")
if p['memory_limit']:
    con.execute(f"SET memory_limit = '{p['memory_limit']}'")
    con.execute(f"SET temp_directory = '{p['temp']}'")
select, joins = ["e.*"], []
for v in range(p['k']):
    ttl = p['ttls'][v]
    for j in range(p['f']):
        col = f"v{v}.f{j}"
        if ttl:
            col = (f"CASE WHEN v{v}.event_timestamp >= e.event_timestamp - INTERVAL {ttl} DAY "
                   f"THEN v{v}.f{j} END")
        select.append(f"{col} AS view{v}__f{j}")
    cols = ", ".join(["driver_id", "event_timestamp"] + [f"f{j}" for j in range(p['f'])])
    joins.append(f"ASOF LEFT JOIN (SELECT {cols} FROM read_parquet('{p['data']}/view{v}/*.parquet')) v{v} "
                 f"ON e.driver_id = v{v}.driver_id AND e.event_timestamp >= v{v}.event_timestamp")
sql = (f"COPY (SELECT {', '.join(select)} FROM read_parquet('{p['data']}/entities.parquet') e "
       + " ".join(joins) + f" ORDER BY e.row_id) TO '{p['out']}' (FORMAT parquet)")
con.execute(sql)
"""

PANDAS_SCRIPT = """
import pandas as pd, sys, json
p = json.loads(sys.argv[1])
entities = pd.read_parquet(f"{p['data']}/entities.parquet")
out = entities.sort_values("event_timestamp", kind="stable")
for v in range(p['k']):
    cols = ["driver_id", "event_timestamp"] + [f"f{j}" for j in range(p['f'])]
    feats = pd.read_parquet(f"{p['data']}/view{v}", columns=cols)
    feats = feats.sort_values("event_timestamp", kind="stable")
    feats = feats.rename(columns={f"f{j}": f"view{v}__f{j}" for j in range(p['f'])})
    feats = feats.rename(columns={"event_timestamp": "ts"})
    ttl = p['ttls'][v]
    out = pd.merge_asof(out, feats, left_on="event_timestamp", right_on="ts", by="driver_id",
                        direction="backward", allow_exact_matches=True,
                        tolerance=pd.Timedelta(days=ttl) if ttl else None).drop(columns=["ts"])
    del feats
out = out.sort_values("row_id")
out.to_parquet(p['out'], index=False)
"""


# The decode floor: Arrow reading only the columns a training set needs (each view's join key,
# event and created times and features; the entity rows), from the same files, decoding every
# batch and keeping none. Two ways, the faster counts: Arrow's dataset scanner (streaming, every
# file, on Arrow's thread pool) and read_table per view (pre-buffered, whole, held).
FLOOR_SCRIPT = """
import json, sys
import pyarrow as pa, pyarrow.dataset as ds, pyarrow.parquet as pq
p = json.loads(sys.argv[1])
pa.set_cpu_count(p['threads'])
pa.set_io_thread_count(max(p['threads'], 4))
cols = {"all": ["driver_id", "event_timestamp", "created"] + [f"f{j}" for j in range(p['f'])],
        "match": ["driver_id", "event_timestamp", "created"],
        "features": [f"f{j}" for j in range(p['f'])]}[p.get('columns', 'all')]
rows = pq.read_table(f"{p['data']}/entities.parquet").num_rows
for v in range(p['k']):
    folder = f"{p['data']}/view{v}"
    if p['mode'] == 'scan':
        scanner = ds.dataset(folder, format="parquet").scanner(columns=cols, use_threads=True,
                                                               batch_size=64 * 1024)
        for batch in scanner.to_batches():
            rows += batch.num_rows
    else:
        table = pq.read_table(folder, columns=cols, use_threads=True)
        rows += table.num_rows
        del table
print(rows)
"""


def run_measured(cmd):
    """Runs cmd; returns (seconds, peak RSS in MiB, CPU seconds: user + system) of that process.

    Measured through /usr/bin/time: a child forked straight from this Python process would
    report this process's own peak (Linux carries the high-water mark across fork and exec).
    CPU time is shown beside wall time because on a shared machine a process may get a fraction
    of the cores: the CPU ratio to the floor holds where the wall ratio drifts with the load."""
    report = Path(os.environ.get("TMPDIR", "/tmp")) / f"pit_join_rss.{os.getpid()}"
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", "-o", str(report)] + cmd,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else
                           f"exit {proc.returncode}")
    rss_kib, user, system = report.read_text().split()[-3:]
    report.unlink()
    return seconds, int(rss_kib) / 1024, float(user) + float(system)


GRANARY = str(ROOT / "build" / "granary")  # --granary measures another build


def granary_cmd(repo, data, out, k, f, budget, threads):
    features = ",".join(f"view{v}:f{j}" for v in range(k) for j in range(f))
    return [GRANARY, "-C", str(repo), "get-historical-features",
            "--entities", str(data / "entities.parquet"), "--features", features,
            "--full-feature-names", "--output", str(out), "--memory-budget", budget,
            "--threads", str(threads), "--spill-dir", str(data), "-q"]


def check_agree(paths, k, f):
    """Every output has the same rows in row_id order with equal values (nulls equal)."""
    names = ["row_id"] + [f"view{v}__f{j}" for v in range(k) for j in range(f)]
    tables = {name: pq.read_table(path, columns=names) for name, path in paths.items()}
    first_name, first = next(iter(tables.items()))
    matched = sum(first.column(f"view{v}__f0").null_count for v in range(k))
    for name, table in tables.items():
        if table.num_rows != first.num_rows:
            sys.exit(f"DISAGREE: {name} has {table.num_rows} rows, {first_name} {first.num_rows}")
        for col in names:
            a = first.column(col).combine_chunks()
            b = table.column(col).combine_chunks()
            if not a.equals(b):
                bad = np.flatnonzero(~np.asarray(
                    (a.is_null().to_numpy(zero_copy_only=False) &
                     b.is_null().to_numpy(zero_copy_only=False)) |
                    np.asarray(a.fill_null(-1.0)) == np.asarray(b.fill_null(-1.0))))
                sys.exit(f"DISAGREE: {name} vs {first_name}, column {col}, "
                         f"{len(bad)} rows differ, first at row_id {bad[:5].tolist()}")
    nulls = matched / (k * first.num_rows)
    print(f"check: {', '.join(tables)} agree on all {first.num_rows:,} rows x {len(names)} "
          f"columns ({100 * (1 - nulls):.0f}% of lookups found a feature row)", flush=True)


def paired(args, py, params, repo, data):
    """The floor and Granary's main case in alternation; each pair's ratio, and the median."""
    floor_cmd = [py, "-c", FLOOR_SCRIPT, json.dumps(dict(params, mode="scan"))]
    out = data / "out_granary.parquet"
    gran_cmd = granary_cmd(repo, data, out, args.views, args.features, args.budget, args.threads)
    run_measured(floor_cmd)  # warms the page cache; not counted
    walls, cpus = [], []
    print(f"\n== paired: arrow floor (dataset scan) then granary --memory-budget {args.budget}, "
          f"{args.paired} pairs")
    for i in range(args.paired):
        f_secs, f_rss, f_cpu = run_measured(floor_cmd)
        g_secs, g_rss, g_cpu = run_measured(gran_cmd)
        walls.append(g_secs / f_secs)
        cpus.append(g_cpu / f_cpu)
        print(f"pair {i + 1}: floor {f_secs:5.2f} s CPU {f_cpu:5.2f} s | granary {g_secs:5.2f} s "
              f"CPU {g_cpu:5.2f} s peak RSS {g_rss:5.0f} MiB | ratio {walls[-1]:.2f}x "
              f"(CPU {cpus[-1]:.2f}x)", flush=True)
    print(f"median ratio to the decode floor: {statistics.median(walls):.2f}x "
          f"(CPU {statistics.median(cpus):.2f}x; pairs: "
          f"{', '.join(f'{r:.2f}' for r in sorted(walls))}); goal: at most 1.5x")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entities", type=int, default=1_000_000, help="N entity rows")
    ap.add_argument("--views", type=int, default=3, help="K feature views")
    ap.add_argument("--rows", type=int, default=10_000_000, help="M rows per view")
    ap.add_argument("--features", type=int, default=10, help="F features per view")
    ap.add_argument("--keys", type=int, default=200_000, help="distinct join keys")
    ap.add_argument("--budget", default="4GiB", help="Granary's memory budget, main case")
    ap.add_argument("--small-budget", default="512MiB",
                    help="budget of the larger-than-memory case (Granary and DuckDB)")
    ap.add_argument("--tiny-budget", default="256MiB",
                    help="a Granary-only case where the entity side does not fit either, so the "
                         "join partitions and spills")
    ap.add_argument("--repeat", type=int, default=3, help="runs of Granary and DuckDB (median)")
    ap.add_argument("--pandas-repeat", type=int, default=1, help="runs of pandas")
    ap.add_argument("--no-pandas", action="store_true")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--data", default=str(ROOT / "build" / "bench-data" / "pit_join"))
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--granary", default=str(ROOT / "build" / "granary"),
                    help="the binary to measure (e.g. an older build, for before/after)")
    ap.add_argument("--only-granary", action="store_true",
                    help="the floor and Granary only (no DuckDB or pandas)")
    ap.add_argument("--floor-parts", action="store_true",
                    help="also time the floor's dataset scan of the keys and times alone and "
                         "of the features alone (what the join's two passes read)")
    ap.add_argument("--paired", type=int, default=0, metavar="PAIRS",
                    help="only the ratio to the floor, measured in PAIRS alternating runs (the "
                         "floor's dataset scan, then Granary's main case, after one discarded "
                         "floor run that warms the page cache): each pair's ratio and their "
                         "median, so that a machine whose speed drifts between sittings moves "
                         "both sides of a ratio alike")
    ap.add_argument("--quick", action="store_true",
                    help="N=100K, M=1M: a smoke run in well under a minute")
    args = ap.parse_args()
    global GRANARY
    GRANARY = args.granary
    if args.quick:
        args.entities, args.rows, args.keys = 100_000, 1_000_000, 20_000
        args.small_budget = "256MiB"
        args.tiny_budget = "48MiB"
        args.data += "-quick"
    data = Path(args.data)
    n, k, m, f = args.entities, args.views, args.rows, args.features
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(f"machine: {os.cpu_count()} cores, {mem:.0f} GiB, {platform.platform()}")
    print(f"case: N={n:,} entity rows, K={k} views x M={m:,} rows x F={f} features, "
          f"{args.keys:,} keys (Zipf 1.1), ttls {[ttl_of(v) for v in range(k)]} days, "
          f"threads {args.threads}", flush=True)
    generate(data, n, k, m, f, args.keys, args.seed)
    on_disk = sum(p.stat().st_size for p in data.rglob("view*/*.parquet")) / 2**20
    print(f"data: {on_disk:,.0f} MiB of Parquet in {data}")
    repo = write_repo(data, k, f)
    py = str(ROOT / ".venv" / "bin" / "python")
    params = {"data": str(data), "k": k, "f": f, "threads": args.threads,
              "ttls": [ttl_of(v) for v in range(k)], "memory_limit": None, "temp": str(data)}
    results = {}

    def bench(name, make_cmd, repeat):
        try:
            runs = [run_measured(make_cmd()) for _ in range(repeat)]
        except RuntimeError as e:
            print(f"{name:<34} did not finish: {str(e)[:120]}", flush=True)
            return False
        secs = statistics.median(r[0] for r in runs)
        rss = max(r[1] for r in runs)
        cpu = statistics.median(r[2] for r in runs)
        results[name] = (secs, rss, cpu)
        print(f"{name:<34} {secs:8.2f} s  (runs: {', '.join(f'{r[0]:.2f}' for r in runs)})"
              f"  CPU {cpu:7.2f} s  peak RSS {rss:8.0f} MiB", flush=True)
        return True

    if args.paired > 0:
        paired(args, py, params, repo, data)
        return
    # The floor first: it also leaves the files in the page cache for every engine alike.
    floors = {}
    for mode, label in (("scan", "arrow floor: dataset scan"), ("table", "arrow floor: read_table")):
        if bench(label, lambda: [py, "-c", FLOOR_SCRIPT, json.dumps(dict(params, mode=mode))],
                 args.repeat):
            floors[label] = results[label]
    floor_name = min(floors, key=lambda name: floors[name][0]) if floors else None
    # The floor's parts, beside it (not counted as the floor): the columns Granary's match pass
    # reads (keys and times) and those its gather pass reads (the features), each on their own.
    if args.floor_parts:
        for columns, label in (("match", "arrow floor: keys and times only"),
                               ("features", "arrow floor: features only")):
            bench(label, lambda: [py, "-c", FLOOR_SCRIPT,
                                  json.dumps(dict(params, mode="scan", columns=columns))],
                  args.repeat)

    outs = {"granary": data / "out_granary.parquet", "duckdb": data / "out_duckdb.parquet",
            "pandas": data / "out_pandas.parquet"}
    print(f"\n== main case (Granary --memory-budget {args.budget}; DuckDB and pandas unlimited)")
    if not bench("granary", lambda: granary_cmd(repo, data, outs["granary"], k, f, args.budget,
                                                args.threads), args.repeat):
        sys.exit("granary failed")
    if args.only_granary:
        outs = {"granary": outs["granary"]}
    elif not bench("duckdb ASOF JOIN", lambda: [py, "-c", DUCKDB_SCRIPT, json.dumps(
            dict(params, out=str(outs["duckdb"])))], args.repeat):
        del outs["duckdb"]
    if args.only_granary or args.no_pandas or not bench(
            "pandas merge_asof", lambda: [py, "-c", PANDAS_SCRIPT, json.dumps(
                dict(params, out=str(outs["pandas"])))], args.pandas_repeat):
        outs.pop("pandas", None)
    check_agree(outs, k, f)

    print(f"\n== larger than the memory budget: {args.small_budget} for Granary and DuckDB")
    small = {"granary": data / "out_granary_small.parquet",
             "duckdb": data / "out_duckdb_small.parquet"}
    if not bench(f"granary --memory-budget {args.small_budget}",
                 lambda: granary_cmd(repo, data, small["granary"], k, f, args.small_budget,
                                     args.threads), args.repeat):
        sys.exit("granary failed")
    limit = args.small_budget.replace("iB", "B")
    if args.only_granary:
        small.pop("duckdb")
    elif not bench(f"duckdb memory_limit={limit}", lambda: [py, "-c", DUCKDB_SCRIPT, json.dumps(
            dict(params, out=str(small["duckdb"]), memory_limit=limit))], args.repeat):
        del small["duckdb"]
    small["granary (main)"] = outs["granary"]
    tiny = data / "out_granary_tiny.parquet"
    if bench(f"granary --memory-budget {args.tiny_budget}",
             lambda: granary_cmd(repo, data, tiny, k, f, args.tiny_budget, args.threads),
             args.repeat):
        small[f"granary {args.tiny_budget}"] = tiny
    check_agree(small, k, f)

    g = results["granary"][0]
    ratios = [f"{name}/Granary time {results[name][0] / g:.2f}x"
              for name in ("duckdb ASOF JOIN", "pandas merge_asof") if name in results]
    print("\nratios: " + ", ".join(ratios))
    if floor_name is not None:
        floor, _, floor_cpu = floors[floor_name]
        small_run = results[f"granary --memory-budget {args.small_budget}"]
        print(f"decode floor ({floor_name}, {floor:.2f} s, CPU {floor_cpu:.2f} s): "
              f"Granary {g / floor:.2f}x (CPU {results['granary'][2] / floor_cpu:.2f}x), "
              f"Granary --memory-budget {args.small_budget} {small_run[0] / floor:.2f}x "
              f"(CPU {small_run[2] / floor_cpu:.2f}x); goal: at most 1.5x")


if __name__ == "__main__":
    main()
