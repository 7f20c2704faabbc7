"""Window aggregations with a Spark offline store (docs/AGGREGATIONS.md, docs/SPARK.md), against a
real cluster (spark_helpers.py): training sets computed in the cluster equal the embedded
engine's and the pandas oracle of test_aggregations.py, also when written into the cluster
(--output-path), with the source's date partitions outside the windows never read; and
materialization of online tiles reads the events through the cluster, leaves the online store as
the embedded engine leaves it, and `granary verify` (offline values computed by Spark) passes."""
import math
import re
import time

import deltalake
import pyarrow as pa
import pyarrow.parquet as pq

from spark_helpers import spark_remote  # noqa: F401  (the session's cluster)
from test_aggregations import (AGGS, BASE, DAY, DEFS, HOUR, ONLINE_DEFS, customer1_payments_2h,
                               make_entity_rows, make_events, online_values, oracle, same)

# The events by day in hive partition folders, pruned by `day`.
PARTITIONED_DEFS = DEFS.replace(
    "  - {name: payment_events, path: data/payments.parquet, timestamp_field: event_timestamp}\n",
    "  - {name: payment_events, path: data/payments, timestamp_field: event_timestamp,\n"
    "     date_partition_column: day}\n")
FEATURES = ",".join(f"payments_agg:{a[0]}" for a in AGGS)


def events_table(events):
    return pa.table({
        "customer_id": pa.array(events.customer_id, pa.int64()),
        "event_timestamp": pa.array(events.ts, pa.timestamp("us", tz="UTC")),
        "amount": pa.array(events.amount.astype(object).where(events.amount.notna(), None),
                           pa.float64()),
        "failed": pa.array(events.failed.astype(object).where(events.failed.notna(), None),
                           pa.bool_()),
        "items": pa.array(events["items"].astype(object).where(events["items"].notna(), None),
                          pa.int32()),
        "merchant": pa.array(events.merchant, pa.string()),
    })


def write_partitioned(folder, events):
    """One folder per day (day=YYYY-MM-DD), each file in the events' order."""
    days = (events.ts // DAY).to_numpy()
    for day in sorted(set(days)):
        name = time.strftime("%Y-%m-%d", time.gmtime(int(day) * DAY // 1_000_000))
        (folder / f"day={name}").mkdir(parents=True)
        pq.write_table(events_table(events[days == day]), folder / f"day={name}" / "part-0.parquet")


def make_repo(cli, root, offline_store, events, defs):
    repo = root / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "granary.yaml").write_text(f"project: sparkagg\noffline_store: {offline_store}\n")
    (repo / "features.yaml").write_text(defs)
    write_partitioned(repo / "data" / "payments", events)
    cli("-C", repo, "apply", check=True)
    return repo


def assert_tables_agree(actual, expected):
    """Row by row, in order; floating values within 1e-9 relative (docs/AGGREGATIONS.md: the
    engines add in another order), everything else exactly, nulls included."""
    assert actual.column_names == expected.column_names
    assert actual.num_rows == expected.num_rows
    mismatches = []
    for i, (a, e) in enumerate(zip(actual.to_pylist(), expected.to_pylist())):
        for name in expected.column_names:
            x, y = a[name], e[name]
            if isinstance(y, float) and isinstance(x, float):
                if math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12):
                    continue
            elif x == y:
                continue
            mismatches.append((i, name, x, y))
    assert not mismatches, mismatches[:10]


def test_training_sets_on_spark_equal_the_embedded_engine_and_the_oracle(cli, tmp_path,
                                                                         spark_remote):  # noqa: F811
    events = make_events()
    entity_rows = make_entity_rows(events)
    embedded = make_repo(cli, tmp_path / "embedded", "{type: file}", events, PARTITIONED_DEFS)
    spark = make_repo(cli, tmp_path / "spark", f'{{type: spark, remote: "{spark_remote}"}}',
                      events, PARTITIONED_DEFS)
    # A day far outside every window that cannot be read at all: reading it would fail the run.
    (spark / "data" / "payments" / "day=2099-01-01").mkdir()
    (spark / "data" / "payments" / "day=2099-01-01" / "part-0.parquet").write_text("not parquet")
    entities = pa.table({
        "customer_id": pa.array(entity_rows.customer_id, pa.int64()),
        "event_timestamp": pa.array(entity_rows.ts, pa.timestamp("us", tz="UTC")),
    })
    logs = []
    for repo in (embedded, spark):
        pq.write_table(entities, repo / "entities.parquet")
        logs.append(cli("-C", repo, "get-historical-features", "--entities",
                        repo / "entities.parquet", "--features", FEATURES, "--output",
                        repo / "train.parquet", check=True).stderr)
    # The summary counts the rows with events in the longest window, on Spark as embedded.
    said = re.search(r"payments_agg: .*, (\S+ of \S+ entity rows with events in their 7d window)",
                     logs[0])
    assert said, logs[0]
    assert said.group(1) in logs[1] and "matched" not in logs[1], logs[1]
    local = pq.read_table(embedded / "train.parquet")
    remote = pq.read_table(spark / "train.parquet")
    assert remote.schema.equals(local.schema), (remote.schema, local.schema)
    assert_tables_agree(remote, local)

    # ... and both equal the oracle (the same check as test_aggregations.py's).
    mismatches = []
    for i, row in enumerate(remote.to_pylist()):
        customer = entity_rows.customer_id[i]
        for name, function, column, where, window in AGGS:
            want = oracle(events, customer, entity_rows.ts[i], function, column, where, window)
            if hasattr(want, "item"):
                want = want.item()
            if not same(row[name], want):
                mismatches.append((i, name, row[name], want))
    assert not mismatches, mismatches[:10]
    assert remote.column("payments_2h")[0].as_py() == 5  # the hand-placed edges of customer 1

    # Written in the cluster (a Delta table at a path), without passing through this process.
    target = spark / "training_set"
    out = cli("-C", spark, "get-historical-features", "--entities", spark / "entities.parquet",
              "--features", FEATURES, "--output-path", target, check=True)
    assert f"wrote {entities.num_rows} training rows to" in out.stderr
    written = deltalake.DeltaTable(str(target)).to_pyarrow_table()
    assert_tables_agree(written.select(local.column_names), local)

    # Entity rows that live in the cluster (a query), in the query's order.
    query = (f"SELECT customer_id, event_timestamp FROM parquet.`{spark / 'entities.parquet'}` "
             "ORDER BY customer_id, event_timestamp")
    out = cli("-C", spark, "get-historical-features", "--entities-sql", query, "--features",
              FEATURES, "--output", spark / "train_sql.parquet", check=True)
    assert said.group(1) in out.stderr, out.stderr  # the same rows, in another order
    by_key = [("customer_id", "ascending"), ("event_timestamp", "ascending")]
    assert_tables_agree(pq.read_table(spark / "train_sql.parquet"), local.sort_by(by_key))


def test_materialized_tiles_on_spark_equal_the_embedded_engines_and_verify_passes(
        cli, tmp_path, spark_remote):  # noqa: F811
    # The edge cases of make_events moved so that customer 1's t0 is the last hour boundary:
    # online reads happen at the real time, just after it.
    now = int(time.time() * 1_000_000)
    t0 = now // HOUR * HOUR
    events = make_events()
    events["ts"] = events.ts - (BASE + 10 * DAY) + t0
    events = events[events.ts <= now].reset_index(drop=True)
    defs = ONLINE_DEFS.replace("path: data/payments,", "path: data/payments, "
                               "date_partition_column: day,")
    assert "date_partition_column: day" in defs
    embedded = make_repo(cli, tmp_path / "embedded", "{type: file}", events, defs)
    spark = make_repo(cli, tmp_path / "spark", f'{{type: spark, remote: "{spark_remote}"}}',
                      events, defs)
    # A day after the interval that cannot be read: the events' scan prunes it.
    (spark / "data" / "payments" / "day=2099-01-01").mkdir()
    (spark / "data" / "payments" / "day=2099-01-01" / "part-0.parquet").write_text("not parquet")
    for repo in (embedded, spark):
        out = cli("-C", repo, "materialize", "2000-01-01T00:00:00Z", "now", check=True)
    assert "spark at sc://127.0.0.1:" in out.stdout + out.stderr  # the run names the cluster
    customers = list(range(1, 45))
    for attempt in range(3):  # an hour boundary between the reads: read both again
        before = int(time.time() * 1_000_000)
        local = online_values(cli, embedded, customers)
        remote = online_values(cli, spark, customers)
        after = int(time.time() * 1_000_000)
        if before // HOUR == after // HOUR:
            break
    assert remote == local
    assert remote[1]["payments_2h"] == customer1_payments_2h(t0, after)
    for c in customers:  # and the oracle, at the time of the read
        for name, function, column, where, window in AGGS:
            want = oracle(events, c, after, function, column, where, window)
            assert same(remote[c][name], want.item() if hasattr(want, "item") else want), \
                (c, name, remote[c][name], want)

    # verify compares the tiles with offline values that Spark computes at the same instant.
    out = cli("-C", spark, "verify", "--sample", "50")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "spark at sc://127.0.0.1:" in out.stdout
    assert "payments_agg: at " in out.stdout and ", 0 differ" in out.stdout
    assert "verify: OK" in out.stdout
