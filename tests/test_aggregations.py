"""Window aggregations end to end (docs/AGGREGATIONS.md): definitions through `granary apply`,
values through `granary get-historical-features`, checked row by row against an independent
oracle written with pandas (a rescan of each row's window, nothing shared with the engine)."""
import json
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from redis_helpers import free_port, start_redis, stop_redis

HOUR = 3600 * 1_000_000
DAY = 24 * HOUR
BASE = 1_700_000_000 * 1_000_000 // DAY * DAY  # a midnight, in UTC microseconds

DEFS = """
entities:
  - {name: customer, join_keys: [customer_id], value_type: int64}
data_sources:
  - {name: payment_events, path: data/payments.parquet, timestamp_field: event_timestamp}
feature_views:
  - name: payments_agg
    entities: [customer]
    source: payment_events
    granularity: 1h
    aggregations:
      - {name: payments_2h, function: count, window: 2h}
      - {name: failures_1d, function: count, where: failed, window: 1d}
      - {name: amounts_1d, function: count, column: amount, window: 1d}
      - {name: spend_2h, function: sum, column: amount, window: 2h}
      - {name: failed_spend_1d, function: sum, column: amount, where: failed, window: 1d}
      - {name: items_3h, function: sum, column: items, window: 3h}
      - {name: mean_amount_1d, function: mean, column: amount, window: 1d}
      - {name: failure_rate_1d, function: mean, column: failed, window: 1d}
      - {name: min_amount_1d, function: min, column: amount, window: 1d}
      - {name: max_items_7d, function: max, column: items, window: 7d}
      - {name: last_amount_3h, function: last, column: amount, window: 3h}
      - {name: first_merchant_1d, function: first, column: merchant, window: 1d}
      - {name: stddev_amount_1d, function: stddev, column: amount, window: 1d}
      - {name: merchants_1d, function: count_distinct, column: merchant, window: 1d}
"""

AGGS = [  # name, function, column, where, window in microseconds
    ("payments_2h", "count", None, None, 2 * HOUR),
    ("failures_1d", "count", None, "failed", DAY),
    ("amounts_1d", "count", "amount", None, DAY),
    ("spend_2h", "sum", "amount", None, 2 * HOUR),
    ("failed_spend_1d", "sum", "amount", "failed", DAY),
    ("items_3h", "sum", "items", None, 3 * HOUR),
    ("mean_amount_1d", "mean", "amount", None, DAY),
    ("failure_rate_1d", "mean", "failed", None, DAY),
    ("min_amount_1d", "min", "amount", None, DAY),
    ("max_items_7d", "max", "items", None, 7 * DAY),
    ("last_amount_3h", "last", "amount", None, 3 * HOUR),
    ("first_merchant_1d", "first", "merchant", None, DAY),
    ("stddev_amount_1d", "stddev", "amount", None, DAY),
    ("merchants_1d", "count_distinct", "merchant", None, DAY),
]


def make_events():
    """Hand-placed edge cases for customer 1, random events for customers 2..40."""
    rows = []

    def add(customer, t, amount, failed, items, merchant):
        rows.append((customer, t, amount, failed, items, merchant))

    t0 = BASE + 10 * DAY
    # Customer 1: an event exactly at a row's time, one a microsecond later, one exactly at the
    # window's (tile-aligned) start and one a microsecond before it, duplicate timestamps, nulls
    # in the column, failed true/false/null.
    add(1, t0 - 2 * HOUR - 1, 1.0, True, 1, "a")
    add(1, t0 - 2 * HOUR, 2.0, False, 2, "b")
    add(1, t0 - HOUR, None, True, 3, "b")
    add(1, t0 - HOUR, 4.0, None, None, None)
    add(1, t0 - HOUR, 8.0, True, 5, "c")
    add(1, t0, 16.0, False, 6, "a")
    add(1, t0 + 1, 32.0, True, 7, "d")
    rng = np.random.default_rng(13)
    for customer in range(2, 41):
        t = BASE + int(rng.integers(0, 3 * DAY))
        for _ in range(int(rng.integers(0, 60))):
            t += int(rng.choice([0, HOUR // 2, HOUR, 5 * HOUR, 30 * 60 * 1_000_000 + 7]))
            add(customer, t,
                None if rng.random() < 0.1 else float(rng.integers(-500, 500)) / 4,
                None if rng.random() < 0.1 else bool(rng.random() < 0.3),
                None if rng.random() < 0.1 else int(rng.integers(0, 9)),
                None if rng.random() < 0.1 else str(rng.choice(["a", "b", "c", "d", "e"])))
    return pd.DataFrame(rows, columns=["customer_id", "ts", "amount", "failed", "items",
                                       "merchant"])


def make_entity_rows(events):
    t0 = BASE + 10 * DAY
    rows = [(1, t0), (1, t0 + 1), (1, t0 + 30 * 60 * 1_000_000), (1, t0 - HOUR),
            (1, t0 + 2 * HOUR), (1, t0 + 2 * DAY), (1, BASE), (999, t0), (1, t0)]
    rng = np.random.default_rng(7)
    for _ in range(400):
        customer = int(rng.integers(2, 45))  # 41..44 have no events
        mine = events.ts[events.customer_id == customer]
        if len(mine) and rng.random() < 0.5:
            t = int(rng.choice(mine.to_numpy())) + int(rng.choice([0, 1, -1, HOUR]))
        else:
            t = BASE + int(rng.integers(0, 6 * DAY))
        rows.append((customer, t))
    return pd.DataFrame(rows, columns=["customer_id", "ts"])


def window_start(t, window):
    return (t - window) // HOUR * HOUR  # floor division, as the sawtooth rule says


def customer1_payments_2h(t0, at):
    """payments_2h of customer 1 (make_events' hand-placed events, moved so that its t0 is an
    hour boundary) read at `at`, the window start included: in t0's hour the start is t0 - 2h
    (6 events: t0 - 2h, three at t0 - 1h, t0, t0 + 1us; not t0 - 2h - 1us); a read that ran past
    the next hour boundary starts at t0 - 1h (5). Whatever the time of day the test runs at."""
    start = window_start(at, 2 * HOUR)
    assert start in (t0 - 2 * HOUR, t0 - HOUR), (t0, at)  # read within the hour after t0's
    return 6 if start == t0 - 2 * HOUR else 5


def oracle(events, customer, t, function, column, where, window):
    """The value for one entity row, by rescanning its window with pandas."""
    start = window_start(t, window)
    w = events[(events.customer_id == customer) & (events.ts >= start) & (events.ts <= t)]
    w = w.sort_values("ts", kind="stable")
    if where is not None:
        w = w[w[where].fillna(False).astype(bool)]
    if function == "count":
        return len(w) if column is None else int(w[column].notna().sum())
    values = w[column].dropna()
    if function == "count_distinct":
        return int(values.nunique())
    if len(values) == 0:
        return None
    if column == "failed":
        values = values.astype(float)
    if function == "sum":
        return values.sum()
    if function == "mean":
        return values.astype(float).mean()
    if function == "min":
        return values.min()
    if function == "max":
        return values.max()
    if function == "first":
        return values.iloc[0]
    if function == "last":
        return values.iloc[-1]
    if function == "stddev":
        return None if len(values) < 2 else values.astype(float).std(ddof=1)
    raise AssertionError(function)


def write_repo(tmp_path, cli, events):
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "granary.yaml").write_text("project: agg\n")
    (repo / "features.yaml").write_text(DEFS)
    table = pa.table({
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
    # Two row groups, so that an event's position in the read order crosses a boundary.
    pq.write_table(table, repo / "data" / "payments.parquet", row_group_size=len(events) // 2 + 1)
    cli("-C", repo, "apply", check=True)
    return repo


def same(a, b):
    if a is None or b is None or (isinstance(a, float) and np.isnan(a)):
        return (a is None or (isinstance(a, float) and np.isnan(a))) and \
            (b is None or (isinstance(b, float) and np.isnan(b)))
    if isinstance(a, float) or isinstance(b, float):
        return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(b)))
    return a == b


@pytest.mark.parametrize("threads,budget", [("0", "1GiB"), ("2", "8MiB")])
def test_every_function_equals_the_pandas_oracle(cli, tmp_path, threads, budget):
    events = make_events()
    repo = write_repo(tmp_path, cli, events)
    entity_rows = make_entity_rows(events)
    pq.write_table(pa.table({
        "customer_id": pa.array(entity_rows.customer_id, pa.int64()),
        "event_timestamp": pa.array(entity_rows.ts, pa.timestamp("us", tz="UTC")),
    }), repo / "entities.parquet")
    features = ",".join(f"payments_agg:{a[0]}" for a in AGGS)
    out = cli("-C", repo, "get-historical-features", "--entities", repo / "entities.parquet",
              "--features", features, "--output", repo / "train.parquet", "--threads", threads,
              "--memory-budget", budget, check=True)
    # The summary counts the rows with an event of their key in the longest window (7d): the
    # others have values too (count 0, nulls), so "matched" would say nothing.
    with_events = sum(
        bool(((events.customer_id == r.customer_id) & (events.ts >= window_start(r.ts, 7 * DAY))
              & (events.ts <= r.ts)).any()) for r in entity_rows.itertuples())
    assert 0 < with_events < len(entity_rows)
    assert (f" row groups pruned, {with_events} of {len(entity_rows)} entity rows with events "
            f"in their 7d window") in out.stderr, out.stderr
    table = pq.read_table(repo / "train.parquet")
    assert table.column_names == ["customer_id", "event_timestamp"] + [a[0] for a in AGGS]
    types = {f.name: str(f.type) for f in table.schema}
    assert types["payments_2h"] == "int64" and types["spend_2h"] == "double"
    assert types["items_3h"] == "int64" and types["max_items_7d"] == "int32"
    assert types["first_merchant_1d"] == "string" and types["failure_rate_1d"] == "double"
    got = table.to_pylist()
    assert len(got) == len(entity_rows)
    mismatches = []
    for i, row in enumerate(entity_rows.itertuples()):
        assert got[i]["customer_id"] == row.customer_id
        for name, function, column, where, window in AGGS:
            want = oracle(events, row.customer_id, row.ts, function, column, where, window)
            if hasattr(want, "item"):
                want = want.item()
            if not same(got[i][name], want):
                mismatches.append((i, row.customer_id, row.ts, name, got[i][name], want))
    assert not mismatches, mismatches[:10]
    # The hand-placed rows: customer 1 at t0 sees 2 events in its 2h window at 10:00 (start
    # 8:00 holds b; 7:59:59.999999 is out; the event 1us after t0 is out) ... spelled out:
    t0_row = got[0]
    assert t0_row["payments_2h"] == 5  # start t0-2h (in), three at t0-1h, one at t0
    assert got[1]["payments_2h"] == 6  # t0+1us: the event at t0+1us counts at its own time
    assert got[7]["payments_2h"] == 0 and got[7]["spend_2h"] is None  # no events: 0 and null
    assert got[0] == got[8]  # a duplicate entity row gets the same values


def test_definition_errors_name_file_and_line(cli, tmp_path):
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "granary.yaml").write_text("project: agg\n")
    events = make_events()
    write_repo(tmp_path / "ok", cli, events)  # a valid repository first, for the data file
    (repo / "data" / "payments.parquet").write_bytes(
        (tmp_path / "ok" / "repo" / "data" / "payments.parquet").read_bytes())
    (repo / "features.yaml").write_text("""
entities:
  - {name: customer, join_keys: [customer_id], value_type: int64}
data_sources:
  - {name: payment_events, path: data/payments.parquet, timestamp_field: event_timestamp}
feature_views:
  - name: bad
    entities: [customer]
    source: payment_events
    granularity: 2h
    aggregations:
      - {name: a, function: median, column: amount, window: 1d}
      - {name: b, function: sum, column: amout, window: 1d}
      - {name: c, function: count, where: amount, window: 1d}
      - {name: d, function: count, window: 1h}
      - {name: e, function: sum, column: merchant, window: 1d}
      - {name: customer_id, function: count, window: 1d}
      - {name: f, function: max, window: 1d}
""")
    out = cli("-C", repo, "apply")
    assert out.returncode != 0
    err = out.stderr
    assert "features.yaml:12:" in err and "is not an aggregation function ('median')" in err
    assert "features.yaml:13:" in err and "column 'amout' is not a column of data source" in err
    assert "did you mean 'amount'" in err
    assert "features.yaml:14:" in err and "where 'amount' is double, not bool" in err
    assert "features.yaml:15:" in err and "window 1h is shorter than the view's granularity 2h" \
        in err
    assert "features.yaml:16:" in err and "sum does not apply to a string column" in err
    assert "features.yaml:17:" in err and "the name of a join key" in err
    assert "features.yaml:18:" in err and "max needs a column" in err


def test_describe_shows_the_inferred_types(cli, tmp_path):
    repo = write_repo(tmp_path, cli, make_events())
    out = cli("-C", repo, "describe", "feature-view", "payments_agg", check=True).stdout
    assert "{name: spend_2h, function: sum, column: amount, window: 2h, type: float64}" in out
    assert "{name: max_items_7d, function: max, column: items, window: 7d, type: int32}" in out
    assert "granularity: 1h" in out


def test_the_python_sdk_lists_and_computes_aggregations(cli, tmp_path):
    from sdk_fixtures import granary  # the SDK as the other SDK tests import it
    events = make_events()
    repo = write_repo(tmp_path, cli, events)
    store = granary.FeatureStore(repo_path=str(repo))
    view = store.get_feature_view("payments_agg")
    assert [f.name for f in view.features] == [a[0] for a in AGGS]
    types = {f.name: f.dtype for f in view.features}
    assert types["spend_2h"] == "float64" and types["payments_2h"] == "int64"
    assert types["first_merchant_1d"] == "string"
    assert view.granularity.total_seconds() == 3600
    assert view.aggregations[1]["where"] == "failed"
    t0 = BASE + 10 * DAY
    entity_df = pd.DataFrame({"customer_id": [1, 999],
                              "event_timestamp": pd.to_datetime([t0, t0], unit="us", utc=True)})
    df = store.get_historical_features(
        entity_df=entity_df, features=["payments_agg:payments_2h", "payments_agg:spend_2h"]).to_df()
    assert df["payments_2h"].tolist() == [5, 0]
    assert df["spend_2h"].iloc[0] == oracle(events, 1, t0, "sum", "amount", None, 2 * HOUR)
    assert pd.isna(df["spend_2h"].iloc[1])


ONLINE_DEFS = DEFS.replace(
    "  - {name: payment_events, path: data/payments.parquet, timestamp_field: event_timestamp}\n",
    "  - {name: payment_events, path: data/payments, timestamp_field: event_timestamp}\n"
    "  - {name: payments_push, type: push, batch_source: payment_events}\n").replace(
    "    source: payment_events\n", "    source: payments_push\n")


@pytest.fixture(params=["rocksdb", "redis"])
def online_store(request, tmp_path):
    """The granary.yaml line of the online store: the embedded one or a real redis-server."""
    if request.param == "rocksdb":
        yield ""
        return
    port = free_port()
    (tmp_path / "redis").mkdir()
    proc = start_redis(port, tmp_path / "redis")
    try:
        yield f'online_store: {{type: redis, connection_string: "127.0.0.1:{port}"}}\n'
    finally:
        stop_redis(proc)


def online_values(cli, repo, customers):
    features = ",".join(f"payments_agg:{a[0]}" for a in AGGS)
    out = cli("-C", repo, "get-online-features", "--features", features, "--entity",
              "customer_id=" + ",".join(map(str, customers)), check=True).stdout
    body = json.loads(out)
    names = body["metadata"]["feature_names"][1:]
    return {c: {n: body["results"][1 + j]["values"][i] for j, n in enumerate(names)}
            for i, c in enumerate(customers)}


def test_online_tiles_equal_the_oracle_age_at_read_time_and_take_pushes(cli, tmp_path,
                                                                          online_store):
    # The edge cases of make_events, moved so that customer 1's t0 is the last hour boundary:
    # online reads happen at the real time, just after it.
    now = int(time.time() * 1_000_000)
    t0 = now // HOUR * HOUR
    events = make_events()
    events["ts"] = events.ts - (BASE + 10 * DAY) + t0
    events = events[events.ts <= now].reset_index(drop=True)  # no events from the future
    repo = write_repo(tmp_path, cli, events)  # the data, applied with the offline defs first
    # Pushes append to the source: a folder of files.
    (repo / "data" / "payments").mkdir()
    (repo / "data" / "payments.parquet").rename(repo / "data" / "payments" / "part-0.parquet")
    (repo / "granary.yaml").write_text("project: aggon\n" + online_store)
    (repo / "features.yaml").write_text(ONLINE_DEFS)
    cli("-C", repo, "apply", check=True)
    cli("-C", repo, "materialize", "-q", "2000-01-01T00:00:00Z", "now", check=True)

    customers = list(range(1, 45))
    for attempt in range(3):  # an hour boundary between the two clocks: read again
        before = int(time.time() * 1_000_000)
        got = online_values(cli, repo, customers)
        after = int(time.time() * 1_000_000)
        if before // HOUR == after // HOUR:
            break
    mismatches = []
    for c in customers:
        for name, function, column, where, window in AGGS:
            want = oracle(events, c, after, function, column, where, window)
            if hasattr(want, "item"):
                want = want.item()
            if not same(got[c][name], want):
                mismatches.append((c, name, got[c][name], want))
    assert not mismatches, mismatches[:10]
    assert got[1]["payments_2h"] == customer1_payments_2h(t0, after)

    out = cli("-C", repo, "verify", "--sample", "50")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "payments_agg: at " in out.stdout and ", 0 differ" in out.stdout
    assert "verify: OK" in out.stdout

    # A failed payment pushed online and offline counts at once, and verify still passes.
    from sdk_fixtures import granary
    store = granary.FeatureStore(repo_path=str(repo))
    failures = got[1]["failures_1d"]
    push = pd.DataFrame({
        "customer_id": [1], "event_timestamp": pd.to_datetime([now], unit="us", utc=True),
        "amount": [64.0], "failed": [True], "items": pd.array([1], dtype="Int32"),
        "merchant": ["z"]})
    store.push("payments_push", push, to="online_and_offline")
    after_push = online_values(cli, repo, [1])[1]
    assert after_push["failures_1d"] == failures + 1
    assert after_push["last_amount_3h"] == 64.0
    out = cli("-C", repo, "verify", "--views", "payments_agg")
    assert out.returncode == 0, out.stdout + out.stderr
    # Later instants agree too (tiles age at read time): the last microsecond of this hour and
    # of the day after. (Earlier instants than the last write need tiles it may have expired:
    # the hour is the one after the writes, which may be past t0's.)
    hour = int(time.time() * 1_000_000) // HOUR * HOUR
    for later in (hour + HOUR - 1, hour + 25 * HOUR - 1):
        at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(later // 1_000_000)) + ".999999Z"
        out = cli("-C", repo, "verify", "--at", at)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "(--at)" in out.stdout

    # A push to the online store only is a difference verify reports, with an example.
    push["customer_id"] = [2]
    store.push("payments_push", push, to="online")
    out = cli("-C", repo, "verify", "--sample", "100")
    assert out.returncode != 0
    assert "customer_id=2 " in out.stdout and "differ" in out.stdout
    assert "online values differ from their offline values" in out.stderr


def write_events(path, events):
    pq.write_table(pa.table({
        "customer_id": pa.array(events.customer_id, pa.int64()),
        "event_timestamp": pa.array(events.ts, pa.timestamp("us", tz="UTC")),
        "amount": pa.array(events.amount.astype(object).where(events.amount.notna(), None),
                           pa.float64()),
        "failed": pa.array(events.failed.astype(object).where(events.failed.notna(), None),
                           pa.bool_()),
        "items": pa.array(events["items"].astype(object).where(events["items"].notna(), None),
                          pa.int32()),
        "merchant": pa.array(events.merchant, pa.string()),
    }), path)


def test_incremental_materialization_of_tiles_equals_a_full_one(cli, tmp_path, online_store):
    """materialize-incremental reads the events from the roll-up tile holding the watermark
    (docs/ONLINE_LAYOUT.md, "Incremental runs"), not the whole retention: with late events
    inside that tile, a push in between and rolled-up days, the online values equal the oracle
    over every event, verify passes, and a full run afterwards gives the same values."""
    now = int(time.time() * 1_000_000)
    events = make_events()
    events = events[events.customer_id != 1]  # the hand-placed edge cases are for t0
    events["ts"] = events.ts - BASE + (now // HOUR * HOUR - 2 * DAY)
    events = events[events.ts <= now - 60_000_000].reset_index(drop=True)
    six_hours = 6 * HOUR  # the roll-up span of a 7 d window at 1 h (aggregation::RollupSpan)
    # END below: 3 h into the roll-up tile that began 12 to 18 h ago, whatever the time of day,
    # so that tile always holds late events before the watermark (9 to 15 h ago).
    watermark = (now - 12 * HOUR) // six_hours * six_hours + 3 * HOUR
    reread_from = (watermark + 1) // six_hours * six_hours
    late = (events.ts >= reread_from) & (events.ts <= watermark) & (events.index % 4 == 0)
    first = events[(events.ts <= watermark) & ~late]
    assert late.sum() > 0 and (events.ts > watermark).sum() > 0
    repo = write_repo(tmp_path, cli, first)
    (repo / "data" / "payments").mkdir()
    (repo / "data" / "payments.parquet").rename(repo / "data" / "payments" / "part-0.parquet")
    (repo / "granary.yaml").write_text("project: aggincr\n" + online_store)
    (repo / "features.yaml").write_text(ONLINE_DEFS)
    cli("-C", repo, "apply", check=True)
    at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(watermark // 1_000_000))
    cli("-C", repo, "materialize", "-q", "2000-01-01T00:00:00Z", at + "Z", check=True)

    # The late events and the newer ones reach the source; a failed payment is pushed online
    # and offline between the runs.
    write_events(repo / "data" / "payments" / "part-1.parquet",
                 events[late | (events.ts > watermark)])
    from sdk_fixtures import granary
    pushed_at = now - 30 * 60_000_000
    push = pd.DataFrame({
        "customer_id": [2], "event_timestamp": pd.to_datetime([pushed_at], unit="us", utc=True),
        "amount": [64.0], "failed": [True], "items": pd.array([1], dtype="Int32"),
        "merchant": ["z"]})
    with granary.FeatureStore(repo_path=str(repo)) as store:  # closed: the run needs the store
        store.push("payments_push", push, to="online_and_offline")
    everything = pd.concat([events, pd.DataFrame({
        "customer_id": [2], "ts": [pushed_at], "amount": [64.0], "failed": [True],
        "items": [1], "merchant": ["z"]})], ignore_index=True)

    out = cli("-C", repo, "materialize-incremental", "now", check=True)
    line = next(x for x in (out.stdout + out.stderr).splitlines()
                if "payments_agg: " in x and " .. " in x)
    reread = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(reread_from // 1_000_000))
    assert f"events read from {reread}Z (incremental)" in line, line
    read = line.split("tiles: ")[1].split(" events")[0]  # Progress::HumanCount: 312, 1.23K
    wanted = int((everything.ts >= reread_from).sum())
    human = str(wanted) if wanted < 1000 else f"{wanted / 1000:.2f}K"
    assert wanted < len(everything) and read == human, line  # not the whole retention

    customers = list(range(2, 45))

    def check_against_oracle():
        for attempt in range(3):  # an hour boundary between the two clocks: read again
            before = int(time.time() * 1_000_000)
            got = online_values(cli, repo, customers)
            after = int(time.time() * 1_000_000)
            if before // HOUR == after // HOUR:
                break
        mismatches = []
        for c in customers:
            for name, function, column, where, window in AGGS:
                want = oracle(everything, c, after, function, column, where, window)
                if hasattr(want, "item"):
                    want = want.item()
                if not same(got[c][name], want):
                    mismatches.append((c, name, got[c][name], want))
        assert not mismatches, mismatches[:10]
        return got

    incremental = check_against_oracle()
    assert any(v["failures_1d"] > 0 for v in incremental.values())
    out = cli("-C", repo, "verify", "--sample", "50")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "verify: OK" in out.stdout

    # A full run over the whole retention gives the same values (the oracle's).
    out = cli("-C", repo, "materialize", "2000-01-01T00:00:00Z", "now", check=True)
    assert "(incremental)" not in out.stdout + out.stderr  # the whole retention
    check_against_oracle()


def test_the_summary_of_a_view_with_plain_features_and_aggregations_gives_both_counts(
        cli, tmp_path):
    repo = write_repo(tmp_path, cli, make_events())
    (repo / "features.yaml").write_text(DEFS.split("feature_views:")[0] + """feature_views:
  - name: payments_mixed
    entities: [customer]
    source: payment_events
    ttl: 0
    granularity: 1h
    schema:
      - {name: amount, type: float64}
    aggregations:
      - {name: payments_2h, function: count, window: 2h}
""")
    cli("-C", repo, "apply", check=True)
    t0 = BASE + 10 * DAY
    # Customer 1 at t0: a latest row and events in the window; five days later: the latest row
    # only; customer 999: neither; customer 1 before any event: neither.
    pq.write_table(pa.table({
        "customer_id": pa.array([1, 1, 999, 1], pa.int64()),
        "event_timestamp": pa.array([t0, t0 + 5 * DAY, t0, BASE - DAY],
                                    pa.timestamp("us", tz="UTC")),
    }), repo / "entities.parquet")
    out = cli("-C", repo, "get-historical-features", "--entities", repo / "entities.parquet",
              "--features", "payments_mixed:amount,payments_mixed:payments_2h", "--output",
              repo / "train.parquet", check=True)
    assert "2 of 4 entity rows matched, 1 with events in their 2h window" in out.stderr, out.stderr
    assert pq.read_table(repo / "train.parquet").column("payments_2h").to_pylist() == [5, 0, 0, 0]


def test_events_past_the_budget_are_read_in_time_slices_with_the_answers_of_one_read(
        cli, tmp_path):
    """60,000 events over 120 days (about 3 MiB in Arrow memory) under a 3 MiB budget: each time
    slice of the entity rows reads the events its rows' windows reach (7d 1h of lead-in), the
    summary says how many slices and what was spilled, and every value equals a 1 GiB run that
    held the events in one read (window_slices.h)."""
    rng = np.random.default_rng(21)
    n = 60_000
    events = pd.DataFrame({
        "customer_id": rng.integers(1, 200, n),
        "ts": BASE + rng.integers(0, 120 * 24, n) * HOUR + rng.choice([0, 1, HOUR // 2], n),
        "amount": rng.integers(-500, 500, n) / 4,
        "failed": rng.random(n) < 0.3,
        "items": rng.integers(0, 9, n),
        "merchant": rng.choice(["a", "b", "c", "d", "e"], n),
    })
    repo = write_repo(tmp_path, cli, events)
    hours = rng.integers(0, 120 * 24, 2000)
    pq.write_table(pa.table({
        "customer_id": pa.array(rng.integers(1, 205, 2000), pa.int64()),
        # On the hour (where windows start) or at an event's time.
        "event_timestamp": pa.array(np.where(rng.random(2000) < 0.5, BASE + hours * HOUR,
                                             events.ts.to_numpy()[rng.integers(0, n, 2000)]),
                                    pa.timestamp("us", tz="UTC")),
    }), repo / "entities.parquet")
    features = ",".join(f"payments_agg:{a[0]}" for a in AGGS)
    runs = {}
    for budget in ["1GiB", "3MiB"]:
        out = cli("-C", repo, "get-historical-features", "--entities", repo / "entities.parquet",
                  "--features", features, "--output", repo / f"train-{budget}.parquet",
                  "--memory-budget", budget, "--spill-dir", tmp_path, check=True)
        runs[budget] = (out.stderr, pq.read_table(repo / f"train-{budget}.parquet"))
    held, sliced = runs["1GiB"][0], runs["3MiB"][0]
    assert "time slices" not in held and " 0 MiB spilled" in held, held
    summary = next(line for line in sliced.splitlines()
                   if "entity rows with events in their 7d window" in line)
    assert " 0 MiB spilled, read in " in summary and " time slices of the entity rows" in summary, \
        summary
    slices = int(summary.split("read in ")[1].split(" time slices")[0])
    assert slices >= 2, summary
    assert "aggregations: its events" in sliced and f"read in {slices} time slices" in sliced, \
        sliced
    # Exact but for floating sums, means and standard deviations, whose running totals start at
    # a slice's lead-in instead of at the key's first event: within the engines' 1e-9 relative.
    one, in_slices = runs["1GiB"][1], runs["3MiB"][1]
    assert in_slices.schema == one.schema
    for name in one.column_names:
        want, got = one.column(name).to_pylist(), in_slices.column(name).to_pylist()
        if pa.types.is_floating(one.schema.field(name).type):
            assert all(same(g, w) for g, w in zip(got, want)), name
        else:
            assert got == want, name


def test_tiles_larger_than_the_memory_budget_are_built_per_group_of_entities(cli, tmp_path):
    """Materializing tiles that outgrow a quarter of the memory budget partitions the events by
    entity and builds and writes one group of entities at a time (materializer.cc, TileBuilder):
    the summary says so, and the online values are those of a run that held every tile at once."""
    now = int(time.time() * 1_000_000)
    rng = np.random.default_rng(18)
    n = 24_000  # 1,500 customers, about 16 events each over the last week: ~20K tiles
    events = pd.DataFrame({
        "customer_id": rng.integers(1, 1501, n),
        "ts": now - rng.integers(1, 7 * DAY, n),
        "amount": np.where(rng.random(n) < 0.1, np.nan, rng.random(n) * 100),
        "failed": pd.array(rng.random(n) < 0.2, dtype=object),
        "items": pd.array(rng.integers(1, 5, n), dtype=object),
        "merchant": [f"merchant-{k}" for k in rng.integers(0, 40, n)],
    })
    repos = {}
    for name, budget in (("whole", "1GiB"), ("grouped", "2MiB")):
        repo = tmp_path / name
        (repo / "data" / "payments").mkdir(parents=True)
        write_events(repo / "data" / "payments" / "part-0.parquet", events)
        (repo / "granary.yaml").write_text(f"project: agg{name}\n")
        (repo / "features.yaml").write_text(ONLINE_DEFS)
        cli("-C", repo, "apply", check=True)
        out = cli("-C", repo, "materialize", "2000-01-01T00:00:00Z", "now", "--memory-budget",
                  budget, "--spill-dir", tmp_path, check=True)
        repos[name] = (repo, out.stdout + out.stderr)
    whole, grouped = repos["whole"][1], repos["grouped"][1]
    assert "groups of entities" not in whole, whole
    assert "partitions (" in grouped and "groups of entities" in grouped, grouped
    groups = int(grouped.split(" groups of entities")[0].rsplit(" ", 1)[1])
    assert groups >= 2, grouped
    customers = sorted(set(events.customer_id.tolist()))
    got = online_values(cli, repos["grouped"][0], customers)
    want = online_values(cli, repos["whole"][0], customers)
    differ = [(c, k, got[c][k], want[c][k]) for c in customers for k in want[c]
              if not same(got[c][k], want[c][k])]
    assert not differ, differ[:10]
    assert sum(1 for c in customers if want[c]["payments_2h"] > 0) > 100
    out = cli("-C", repos["grouped"][0], "verify", "--sample", "200")
    assert out.returncode == 0, out.stdout + out.stderr
