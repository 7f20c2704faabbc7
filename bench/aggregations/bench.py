"""Window aggregation benchmark: Granary vs DuckDB vs pandas on the same data and the same rule.

Generates E payment events (customer_id, event_timestamp, amount, failed) over two years and N
entity rows, then computes 8 aggregations at every entity row with the sawtooth window of
docs/AGGREGATIONS.md (start = floor((t - window) / 1h) * 1h, start <= e <= t):

  granary  get-historical-features over a view with `aggregations:` (sorted sweep, out of core)
  duckdb   the same windows as a range join (key equal, start <= e <= t) with FILTERed
           aggregates, grouped by entity row: SQL that states the rule exactly
  duckdb RANGE window functions over the union of rows and events, RANGE BETWEEN INTERVAL w
           PRECEDING AND CURRENT ROW: DuckDB's fastest form, but a plain sliding window (not
           rounded to the hour), so it is timed and not compared
  pandas   merge of rows and events by key, filtered to each window, grouped by row
  granary on spark (--spark sc://...)  the same view with offline_store type spark

Each engine runs in its own process (time and peak RSS via /usr/bin/time); the exact ones are
checked to agree on every row. Run it through bench/aggregations/run.
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
HOUR = 3600 * 1_000_000
DAY = 24 * HOUR
TWO_YEARS_US = 2 * 365 * DAY
START_US = 1_640_995_200 * 1_000_000  # 2022-01-01T00:00:00Z

# name, function, column, where, window (days)
AGGS = [
    ("payments_1d", "count", None, None, 1),
    ("payments_30d", "count", None, None, 30),
    ("failures_30d", "count", None, "failed", 30),
    ("spend_30d", "sum", "amount", None, 30),
    ("mean_amount_7d", "mean", "amount", None, 7),
    ("max_amount_7d", "max", "amount", None, 7),
    ("min_amount_30d", "min", "amount", None, 30),
    ("stddev_amount_30d", "stddev", "amount", None, 30),
]


def generate(data, n, e, n_keys, seed):
    stamp = data / "params.json"
    params = {"n": n, "e": e, "keys": n_keys, "seed": seed, "version": 1}
    if stamp.exists() and json.loads(stamp.read_text()) == params:
        print(f"data: reusing {data}", flush=True)
        return
    if data.exists():
        shutil.rmtree(data)
    (data / "events").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    ts_type = pa.timestamp("us", tz="UTC")
    t0 = time.time()
    keys = rng.integers(0, n_keys, e)
    ts = np.sort(START_US + rng.integers(0, TWO_YEARS_US, e))  # appended in time order
    amount = np.round(rng.gamma(2.0, 20.0, e), 2)
    failed = rng.random(e) < 0.05
    table = pa.table({"customer_id": pa.array(keys), "event_timestamp": pa.array(ts, ts_type),
                      "amount": pa.array(amount), "failed": pa.array(failed)})
    parts = 8
    for p in range(parts):
        lo, hi = e * p // parts, e * (p + 1) // parts
        pq.write_table(table.slice(lo, hi - lo), data / "events" / f"part-{p:03}.parquet",
                       row_group_size=256 * 1024)
    del table
    rows_ts = START_US + 30 * DAY + rng.integers(0, TWO_YEARS_US - 30 * DAY, n)
    pq.write_table(pa.table({"row_id": pa.array(np.arange(n, dtype=np.int64)),
                             "customer_id": pa.array(rng.integers(0, n_keys, n)),
                             "event_timestamp": pa.array(rows_ts, ts_type)}),
                   data / "entities.parquet")
    stamp.write_text(json.dumps(params))
    print(f"data: {e:,} events, {n:,} entity rows; generated in {time.time() - t0:.0f}s",
          flush=True)


def write_repo(data, spark_remote=None):
    repo = data / ("repo-spark" if spark_remote else "repo")
    repo.mkdir(exist_ok=True)
    store = f'offline_store: {{type: spark, remote: "{spark_remote}"}}\n' if spark_remote else ""
    (repo / "granary.yaml").write_text("project: agg_bench\n" + store)
    lines = ["entities:", "  - {name: customer, join_keys: [customer_id], value_type: int64}",
             "data_sources:",
             f"  - {{name: payments, path: {data / 'events'}, timestamp_field: event_timestamp}}",
             "feature_views:", "  - name: payments_agg", "    entities: [customer]",
             "    source: payments", "    granularity: 1h", "    aggregations:"]
    for name, function, column, where, days in AGGS:
        item = f"name: {name}, function: {function}, window: {days}d"
        if column:
            item += f", column: {column}"
        if where:
            item += f", where: {where}"
        lines.append(f"      - {{{item}}}")
    (repo / "features.yaml").write_text("\n".join(lines) + "\n")
    subprocess.run([str(ROOT / "build" / "granary"), "-C", str(repo), "apply"], check=True,
                   stdout=subprocess.DEVNULL)
    return repo


def sql_aggregate(name, function, column, where, days, alias="v", start="s"):
    cond = f"{alias}.event_timestamp >= {start}{days}"
    if where:
        cond += f" AND {alias}.{where}"
    if function == "count":
        return f"count({alias}.event_timestamp) FILTER (WHERE {cond}) AS {name}"
    sql = {"sum": "sum", "mean": "avg", "max": "max", "min": "min", "stddev": "stddev_samp"}
    return f"{sql[function]}({alias}.{column}) FILTER (WHERE {cond}) AS {name}"


DUCKDB_SCRIPT = """
import duckdb, sys, json
p = json.loads(sys.argv[1])
con = duckdb.connect()
con.execute(f"SET threads = {p['threads']}")
con.execute("SET TimeZone = 'UTC'")  # hour buckets in UTC, as Granary's
if p['memory_limit']:
    con.execute(f"SET memory_limit = '{p['memory_limit']}'")
    con.execute(f"SET temp_directory = '{p['temp']}'")
longest = max(a[4] for a in p['aggs'])
starts = ", ".join(
    f"time_bucket(INTERVAL 1 HOUR, event_timestamp - INTERVAL {d} DAY) AS s{d}"
    for d in sorted({a[4] for a in p['aggs']}))
sql = f'''COPY (
  WITH e AS (SELECT row_id, customer_id, event_timestamp, {starts}
             FROM read_parquet('{p['data']}/entities.parquet'))
  SELECT e.row_id, {', '.join(p['select'])}
  FROM e LEFT JOIN read_parquet('{p['data']}/events/*.parquet') v
    ON v.customer_id = e.customer_id AND v.event_timestamp >= e.s{longest}
       AND v.event_timestamp <= e.event_timestamp
  GROUP BY e.row_id ORDER BY e.row_id) TO '{p['out']}' (FORMAT parquet)'''
con.execute(sql)
"""

DUCKDB_RANGE_SCRIPT = """
import duckdb, sys, json
p = json.loads(sys.argv[1])
con = duckdb.connect()
con.execute(f"SET threads = {p['threads']}")
fn = {"count": "count", "sum": "sum", "mean": "avg", "max": "max", "min": "min",
      "stddev": "stddev_samp"}
cols = []
for name, function, column, where, days in p['aggs']:
    value = column or "is_event"
    if function == "count":
        value = "CASE WHEN is_event" + (f" AND {where}" if where else "") + " THEN 1 END"
    cols.append(f"{fn[function]}({value}) OVER (PARTITION BY customer_id ORDER BY event_timestamp "
                f"RANGE BETWEEN INTERVAL {days} DAY PRECEDING AND CURRENT ROW) AS {name}")
sql = f'''COPY (
  SELECT row_id, {', '.join(a[0] for a in p['aggs'])} FROM (
    SELECT row_id, {', '.join(cols)} FROM (
      SELECT NULL::BIGINT AS row_id, customer_id, event_timestamp, amount, failed,
             TRUE AS is_event, 0 AS side FROM read_parquet('{p['data']}/events/*.parquet')
      UNION ALL
      SELECT row_id, customer_id, event_timestamp, NULL, NULL, FALSE, 1
      FROM read_parquet('{p['data']}/entities.parquet')))
  WHERE row_id IS NOT NULL ORDER BY row_id) TO '{p['out']}' (FORMAT parquet)'''
con.execute(sql)
"""

PANDAS_SCRIPT = """
import pandas as pd, numpy as np, sys, json
p = json.loads(sys.argv[1])
HOUR = 3600 * 10**6
rows = pd.read_parquet(f"{p['data']}/entities.parquet")
events = pd.read_parquet(f"{p['data']}/events")
rows["t"] = rows.event_timestamp.astype("int64")
events["e"] = events.event_timestamp.astype("int64")
longest = max(a[4] for a in p['aggs'])
out = pd.DataFrame({"row_id": rows.row_id})
chunk = 100_000  # rows at a time, so that the merge stays in memory
parts = []
for lo in range(0, len(rows), chunk):
    r = rows.iloc[lo:lo + chunk]
    m = r[["row_id", "customer_id", "t"]].merge(
        events[["customer_id", "e", "amount", "failed"]], on="customer_id", how="left")
    m = m[(m.e <= m.t) & (m.e >= (m.t - longest * 86400 * 10**6) // HOUR * HOUR)]
    res = pd.DataFrame(index=r.row_id)
    for name, function, column, where, days in p['aggs']:
        s = m[m.e >= (m.t - days * 86400 * 10**6) // HOUR * HOUR]
        if where:
            s = s[s[where] == True]  # noqa: E712 (an object column after the left merge)
        g = s.groupby("row_id")
        if function == "count":
            res[name] = g.size().reindex(res.index, fill_value=0)
        elif function == "mean":
            res[name] = g[column].mean()
        elif function == "stddev":
            res[name] = g[column].std(ddof=1)
        else:
            res[name] = getattr(g[column], function)()
    parts.append(res)
out = pd.concat(parts).reset_index().rename(columns={"index": "row_id"})
out.to_parquet(p['out'], index=False)
"""


def run_measured(cmd):
    """(seconds, peak RSS in MiB) of cmd's process alone, through /usr/bin/time."""
    report = Path(os.environ.get("TMPDIR", "/tmp")) / f"agg_bench_rss.{os.getpid()}"
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(report)] + cmd,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else
                           f"exit {proc.returncode}")
    rss_kib = int(report.read_text().split()[-1])
    report.unlink()
    return seconds, rss_kib / 1024


def check_agree(paths):
    names = [a[0] for a in AGGS]
    tables = {}
    for name, path in paths.items():
        t = pq.read_table(path).to_pandas()
        tables[name] = t.sort_values("row_id").reset_index(drop=True)
    first_name, first = next(iter(tables.items()))
    for name, t in tables.items():
        if len(t) != len(first):
            sys.exit(f"DISAGREE: {name} has {len(t)} rows, {first_name} {len(first)}")
        for col in names:
            a = first[col].astype("float64").to_numpy()
            b = t[col].astype("float64").to_numpy()
            same = (np.isnan(a) & np.isnan(b)) | np.isclose(a, b, rtol=1e-9, atol=1e-9)
            if not same.all():
                bad = np.flatnonzero(~same)
                sys.exit(f"DISAGREE: {name} vs {first_name}, column {col}: {len(bad)} rows, "
                         f"first row_ids {first.row_id[bad[:5]].tolist()}: "
                         f"{a[bad[:3]].tolist()} vs {b[bad[:3]].tolist()}")
    print(f"check: {', '.join(tables)} agree on all {len(first):,} rows x {len(names)} "
          "aggregations", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entities", type=int, default=1_000_000, help="N entity rows")
    ap.add_argument("--events", type=int, default=10_000_000, help="E events")
    ap.add_argument("--keys", type=int, default=200_000, help="distinct customers")
    ap.add_argument("--budget", default="2GiB", help="Granary's memory budget")
    ap.add_argument("--repeat", type=int, default=3, help="runs of Granary and DuckDB (median)")
    ap.add_argument("--no-pandas", action="store_true")
    ap.add_argument("--no-range", action="store_true",
                    help="skip DuckDB's RANGE window functions (minutes at the default size)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--data", default=str(ROOT / "build" / "bench-data" / "aggregations"))
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--quick", action="store_true", help="N=50K, E=500K: a smoke run")
    ap.add_argument("--granary-before", metavar="BINARY",
                    help="also run this granary binary (say, an older build) on the same view, "
                         "for a before/after in the same run")
    ap.add_argument("--spark", metavar="REMOTE",
                    help="also run Granary's Spark engine at this Spark Connect URL (sc://...; "
                         "the cluster must see the data folder, as a local one does)")
    args = ap.parse_args()
    if args.quick:
        args.entities, args.events, args.keys, args.repeat = 50_000, 500_000, 10_000, 1
        args.data += "-quick"
    data = Path(args.data)
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(f"machine: {os.cpu_count()} cores, {mem:.0f} GiB, {platform.platform()}")
    print(f"case: N={args.entities:,} entity rows x {len(AGGS)} aggregations (windows 1d-30d, "
          f"1h granularity) over E={args.events:,} events of {args.keys:,} customers, "
          f"threads {args.threads}", flush=True)
    generate(data, args.entities, args.events, args.keys, args.seed)
    repo = write_repo(data)
    py = str(ROOT / ".venv" / "bin" / "python")
    params = {"data": str(data), "threads": args.threads, "aggs": AGGS, "memory_limit": None,
              "temp": str(data),
              "select": [sql_aggregate(*a[:4], a[4]) for a in AGGS]}
    results = {}

    def bench(name, make_cmd, repeat):
        try:
            runs = [run_measured(make_cmd()) for _ in range(repeat)]
        except RuntimeError as e:
            print(f"{name:<32} did not finish: {str(e)[:160]}", flush=True)
            return False
        secs = statistics.median(r[0] for r in runs)
        rss = max(r[1] for r in runs)
        results[name] = (secs, rss)
        print(f"{name:<32} {secs:8.2f} s  (runs: {', '.join(f'{r[0]:.2f}' for r in runs)})"
              f"  peak RSS {rss:8.0f} MiB", flush=True)
        return True

    outs = {"granary": data / "out_granary.parquet", "duckdb": data / "out_duckdb.parquet",
            "pandas": data / "out_pandas.parquet"}
    features = ",".join(f"payments_agg:{a[0]}" for a in AGGS)
    granary = [str(ROOT / "build" / "granary"), "-C", str(repo), "get-historical-features",
               "--entities", str(data / "entities.parquet"), "--features", features,
               "--output", str(outs["granary"]), "--memory-budget", args.budget,
               "--threads", str(args.threads), "--spill-dir", str(data), "-q"]
    if not bench(f"granary (budget {args.budget})", lambda: granary, args.repeat):
        sys.exit("granary failed")
    if args.granary_before:
        outs["granary before"] = data / "out_granary_before.parquet"
        before = [args.granary_before] + granary[1:]
        before[before.index("--output") + 1] = str(outs["granary before"])
        if not bench("granary before", lambda: before, args.repeat):
            del outs["granary before"]
    if args.spark:
        # The same view through the Spark engine: the windows computed in the cluster (a range
        # join grouped per entity row, docs/SPARK.md), the result streamed back.
        outs["granary on spark"] = data / "out_granary_spark.parquet"
        spark_repo = write_repo(data, args.spark)
        spark = [str(ROOT / "build" / "granary"), "-C", str(spark_repo), "get-historical-features",
                 "--entities", str(data / "entities.parquet"), "--features", features,
                 "--output", str(outs["granary on spark"]), "-q"]
        if not bench("granary on spark", lambda: spark, args.repeat):
            del outs["granary on spark"]
    if not bench("duckdb range join", lambda: [py, "-c", DUCKDB_SCRIPT, json.dumps(
            dict(params, out=str(outs["duckdb"])))], args.repeat):
        del outs["duckdb"]
    if not args.no_range:
        bench("duckdb RANGE window (not exact)", lambda: [py, "-c", DUCKDB_RANGE_SCRIPT, json.dumps(
            dict(params, out=str(data / "out_duckdb_range.parquet")))], args.repeat)
    if args.no_pandas or not bench("pandas merge+groupby", lambda: [py, "-c", PANDAS_SCRIPT,
                                                                     json.dumps(dict(
                                                                         params,
                                                                         out=str(outs["pandas"])))],
                                   1):
        outs.pop("pandas", None)
    check_agree(outs)
    g = results[f"granary (budget {args.budget})"]
    ratios = [f"{name}: {results[name][0] / g[0]:.2f}x Granary's time, "
              f"{results[name][1] / g[1]:.2f}x its peak RSS"
              for name in results if name != f"granary (budget {args.budget})"]
    print("\nratios: " + "; ".join(ratios))


if __name__ == "__main__":
    main()
