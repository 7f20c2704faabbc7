"""`granary stats` through the offline engine, on a real Spark cluster (spark_helpers.py): the
same repository with offline_store type file and type spark must give the same statistics
(offline/feature_stats.h: exact figures equal, floating means to rounding, distinct estimates
within their stated error), computed in the cluster on Spark; and a source only Spark can read
(`query:`) gets statistics there too. Every value type, nulls, NaN, a Parquet folder and a Delta
table with two join keys."""
import datetime as dt
import json
import math
import random

import deltalake
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spark_helpers import spark_remote  # noqa: F401  (the session's cluster)

BASE = dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)
TS = pa.timestamp("us", tz="UTC")

DEFS = """
entities:
  - {name: customer, join_keys: [customer_id], value_type: int64}
  - {name: bay, join_keys: [zone, bay_id], value_type: [string, int32]}
data_sources:
  - {name: events, path: data/events, timestamp_field: event_timestamp}
  - {name: occupancy, type: delta, path: data/occupancy, timestamp_field: ts,
     field_mapping: {rate_raw: rate}}
feature_views:
  - name: everything
    entities: [customer]
    source: events
    ttl: 30d
    schema:
      - {name: small, type: int32}
      - {name: big, type: int64}
      - {name: ratio, type: float32}
      - {name: amount, type: float64}
      - {name: flag, type: bool}
      - {name: method, type: string}
      - {name: blob, type: bytes}
      - {name: seen_at, type: timestamp}
      - {name: tags, type: "list<string>"}
      - {name: constant, type: float64}
  - name: bays
    entities: [bay]
    source: occupancy
    ttl: 6h
    schema:
      - {name: occupied, type: bool}
      - {name: rate, type: float32}
"""

QUERY_DEFS = """
entities:
  - {name: customer, join_keys: [customer_id], value_type: int64}
data_sources:
  - name: by_query
    query: "SELECT customer_id, event_timestamp, amount * 2 AS doubled FROM parquet.`DATA`"
    timestamp_field: event_timestamp
feature_views:
  - name: doubled
    entities: [customer]
    source: by_query
    ttl: 30d
    schema:
      - {name: doubled, type: float64}
"""


def write_data(repo, seed=7, n=3000):
    """The events in three Parquet files, every row at its own second (so that the newest
    entities have no ties), and occupancy as a Delta table (a field mapping on `rate`)."""
    rng = random.Random(seed)
    folder = repo / "data" / "events"
    folder.mkdir(parents=True)
    rows = []
    for i in range(n):
        maybe = lambda v, p=0.1: None if rng.random() < p else v  # noqa: E731
        rows.append({
            "customer_id": maybe(rng.randint(1, 400), 0.01),
            "event_timestamp": BASE + dt.timedelta(seconds=37 * i + rng.randint(0, 30)),
            "small": maybe(rng.randint(-50, 50)),
            "big": maybe(rng.randint(-2**40, 2**40)),
            "ratio": maybe(float("nan") if rng.random() < 0.05 else rng.random()),
            "amount": maybe(round(rng.lognormvariate(3, 1), 2)),
            "flag": maybe(rng.random() < 0.3),
            "method": maybe(rng.choice(["card", "paypal", "cash", "app", "voucher"] +
                                       [f"m{j}" for j in range(40)])),
            "blob": maybe(rng.choice([b"alpha", b"beta", b"gamma", b"delta"])),
            "seen_at": maybe(BASE - dt.timedelta(minutes=rng.randint(0, 10**6))),
            "tags": maybe([rng.choice("xyz") for _ in range(rng.randint(0, 4))]),
            "constant": 2.5,
        })
    schema = pa.schema([("customer_id", pa.int64()), ("event_timestamp", TS),
                        ("small", pa.int32()), ("big", pa.int64()), ("ratio", pa.float32()),
                        ("amount", pa.float64()), ("flag", pa.bool_()), ("method", pa.string()),
                        ("blob", pa.binary()), ("seen_at", TS), ("tags", pa.list_(pa.string())),
                        ("constant", pa.float64())])
    third = n // 3
    for f, chunk in enumerate([rows[:third], rows[third:2 * third], rows[2 * third:]]):
        pq.write_table(pa.Table.from_pylist(chunk, schema), folder / f"part-{f:03d}.parquet")
    deltalake.write_deltalake(str(repo / "data" / "occupancy"), pa.table({
        "zone": ["a", "a", "b", "b", None],
        "bay_id": pa.array([1, 1, 7, 7, 2], pa.int32()),
        "ts": pa.array([BASE + dt.timedelta(hours=h) for h in (0, 3, 1, 20, 5)], TS),
        "occupied": [True, False, True, None, False],
        "rate_raw": pa.array([1.5, 2.5, float("nan"), 4.5, None], pa.float32()),
    }))


def make_repo(cli, root, offline_store, defs=DEFS):
    repo = root / "repo"
    repo.mkdir(parents=True)
    (repo / "granary.yaml").write_text(f"project: statstest\noffline_store: {offline_store}\n")
    write_data(repo)
    (repo / "features.yaml").write_text(defs.replace("DATA", str(repo / "data" / "events")))
    cli("-C", repo, "apply", check=True)
    return repo


@pytest.fixture
def repos(cli, tmp_path, spark_remote):  # noqa: F811
    embedded = make_repo(cli, tmp_path / "embedded", "{type: file}")
    spark = make_repo(cli, tmp_path / "spark", f'{{type: spark, remote: "{spark_remote}"}}')
    return embedded, spark


# Up to four queries on a cluster that shares two cores with everything else: minutes, at worst.
SPARK_TIMEOUT_S = 600


def stats(cli, repo, view, *args):
    out = cli("-C", repo, "stats", view, "--json", "--sample", "4", *args, check=True,
              timeout=SPARK_TIMEOUT_S)
    return json.loads(out.stdout)


def assert_same_stats(embedded, spark):
    """Every figure of feature_stats.h equal but where the rules let the engines differ."""
    for key in ("view", "start", "end", "first_event", "last_event", "rows", "join_keys",
                "sample_keys"):
        assert spark[key] == embedded[key], key
    assert [f["name"] for f in spark["features"]] == [f["name"] for f in embedded["features"]]
    for s, e in zip(spark["features"], embedded["features"]):
        where = f"feature {e['name']}"
        for key in ("type", "count", "nulls", "null_rate", "nan", "min", "max", "min_text",
                    "max_text", "histogram", "top_values"):
            assert s.get(key) == e.get(key), f"{where}: {key}: spark {s.get(key)} vs {e.get(key)}"
        if e["mean"] is None:
            assert s["mean"] is None, where
        else:
            assert math.isclose(s["mean"], e["mean"], rel_tol=1e-9, abs_tol=1e-12), where
        # Two sketches of the same values: each within a few percent of the truth.
        d_s, d_e = s["distinct_estimate"], e["distinct_estimate"]
        assert abs(d_s - d_e) <= 0.05 * max(d_s, d_e) + 2, f"{where}: distinct {d_s} vs {d_e}"
        assert s["top_values_exact"]


@pytest.mark.parametrize("args", [
    [],
    ["--start", "2024-05-01T06:00:00Z", "--end", "2024-05-01T20:00:00Z", "--bins", "7"],
    ["--features", "amount,method,seen_at", "--top", "3"],
])
def test_statistics_are_the_same_on_both_engines(cli, repos, args):
    embedded, spark = (stats(cli, repo, "everything", *args) for repo in repos)
    assert_same_stats(embedded, spark)
    assert embedded["rows"] > 0 and len(embedded["sample_keys"]) == 4
    # Computed in the cluster: its scan metrics, not the client's files.
    assert spark["scan"]["engine"].startswith("spark at sc://127.0.0.1:"), spark["scan"]
    assert spark["scan"]["rows_scanned"] >= spark["rows"]
    assert embedded["scan"]["engine"].startswith("the embedded offline engine")


def test_delta_table_with_two_join_keys_nan_and_a_field_mapping(cli, repos):
    embedded, spark = (stats(cli, repo, "bays") for repo in repos)
    assert_same_stats(embedded, spark)
    rate = next(f for f in spark["features"] if f["name"] == "rate")
    assert (rate["count"], rate["nulls"], rate["nan"]) == (5, 1, 1)
    assert (rate["min"], rate["max"]) == (1.5, 4.5)
    assert spark["sample_keys"][0] == ["b", "7"]  # the newest row, at hour 20
    assert ["", "2"] in spark["sample_keys"]  # a null join key is text ""


def test_human_output_says_where_it_was_computed(cli, repos):
    _, spark = repos
    out = cli("-C", spark, "stats", "everything", "--features", "amount", "--sample", "0",
              check=True, timeout=SPARK_TIMEOUT_S)
    assert "computed in the cluster: spark at sc://127.0.0.1:" in out.stdout, out.stdout
    assert "amount" in out.stdout


def test_a_query_source_gets_statistics_on_spark_only(cli, tmp_path, spark_remote):  # noqa: F811
    spark = make_repo(cli, tmp_path / "spark",
                      f'{{type: spark, remote: "{spark_remote}"}}', defs=QUERY_DEFS)
    got = stats(cli, spark, "doubled")
    amounts = pq.read_table(spark / "data" / "events", columns=["amount"]).column(0).to_pylist()
    values = [2 * a for a in amounts if a is not None]
    doubled = got["features"][0]
    assert (got["rows"], doubled["count"]) == (len(amounts), len(amounts))
    assert doubled["nulls"] == len(amounts) - len(values)
    assert (doubled["min"], doubled["max"]) == (min(values), max(values))
    assert math.isclose(doubled["mean"], sum(values) / len(values), rel_tol=1e-9)
    assert sum(b["count"] for b in doubled["histogram"]) == len(values)
    # The embedded engine reads paths only, and says which engine reads a query.
    (spark / "granary.yaml").write_text("project: statstest\noffline_store: {type: file}\n")
    out = cli("-C", spark, "stats", "doubled", check=False)
    assert out.returncode != 0 and "offline_store" in out.stderr, out.stderr


def test_bad_options_fail_before_the_cluster_works(cli, repos):
    _, spark = repos
    out = cli("-C", spark, "stats", "everything", "--features", "amont", check=False)
    assert out.returncode != 0 and "did you mean 'amount'" in out.stderr, out.stderr
    out = cli("-C", spark, "stats", "everything", "--bins", "0", check=False)
    assert out.returncode != 0 and "histogram bins must be 1 to 1000" in out.stderr, out.stderr


def test_sdk_feature_stats_go_through_the_engine(repos):
    import sdk_fixtures  # noqa: F401  (puts the built SDK on sys.path)
    import granary
    embedded, spark = (granary.FeatureStore(repo).feature_stats("everything", sample=4)
                       for repo in repos)
    assert_same_stats(embedded, spark)
    assert spark["scan"]["engine"].startswith("spark at sc://")
