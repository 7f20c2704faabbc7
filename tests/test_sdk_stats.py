"""FeatureStore.feature_stats (and `granary stats`, the same core): the statistics of a view's
offline data checked against pyarrow's own computation over the same Parquet files, the time
range, the online sample, and the errors."""
import datetime as dt
import json

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from sdk_fixtures import GRANARY_BIN, online_repo, parking_data, run  # noqa: F401

import granary


@pytest.fixture(scope="module")
def store(online_repo):
    s = granary.FeatureStore(online_repo)
    yield s
    s.close()


def test_numeric_statistics_match_pyarrow(store, online_repo):
    table = pq.read_table(online_repo / "data" / "customer_payments.parquet")
    stats = store.feature_stats("customer_payments_stats", bins=8)
    assert stats["rows"] == table.num_rows
    features = {f["name"]: f for f in stats["features"]}
    for name in ["sessions_90d", "violations_90d", "avg_session_minutes_90d"]:
        column = table[name]
        f = features[name]
        assert f["count"] == len(column)
        assert f["nulls"] == column.null_count
        assert f["null_rate"] == pytest.approx(column.null_count / len(column))
        values = pc.drop_null(column)
        assert f["min"] == pytest.approx(pc.min(values).as_py())
        assert f["max"] == pytest.approx(pc.max(values).as_py())
        assert f["mean"] == pytest.approx(pc.mean(values).as_py(), rel=1e-9)
        exact = len(pc.unique(values))
        assert abs(f["distinct_estimate"] - exact) <= max(2, 0.05 * exact), name
        assert len(f["histogram"]) == (1 if f["min"] == f["max"] else 8)
        assert sum(b["count"] for b in f["histogram"]) == len(values)
        # Each bin holds the values between its bounds (the last one closed).
        first = f["histogram"][0]
        in_first = pc.sum(pc.and_(pc.greater_equal(values, first["low"]),
                                  pc.less(values, first["high"]))).as_py() or 0
        assert first["count"] == in_first


def test_string_top_values_and_the_time_range(store, online_repo):
    table = pq.read_table(online_repo / "data" / "customer_profiles.parquet")
    stats = store.feature_stats("customer_profile", features=["payment_method"], top=3)
    [f] = stats["features"]
    counts = {r["values"]: r["counts"] for r in pc.value_counts(table["payment_method"]).to_pylist()
              if r["values"] is not None}
    expected = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    assert [(v["value"], v["count"]) for v in f["top_values"]] == expected
    assert f["top_values_exact"]
    assert f["histogram"] == []

    times = table["event_timestamp"]
    cut = pc.min(times).as_py() + (pc.max(times).as_py() - pc.min(times).as_py()) / 2
    ranged = store.feature_stats("customer_profile", features=["payment_method"], start_date=cut,
                                 sample=0)
    assert ranged["rows"] == pc.sum(pc.greater_equal(times, cut)).as_py()
    assert ranged["start"].startswith(cut.strftime("%Y-%m-%dT%H:%M:%S"))
    assert ranged["online_sample"] is None


def test_the_online_sample_reads_the_entities_with_the_newest_rows(store, online_repo):
    stats = store.feature_stats("customer_profile", sample=4)
    table = pq.read_table(online_repo / "data" / "customer_profiles.parquet")
    newest = max(table["event_timestamp"].to_pylist())
    assert stats["join_keys"] == ["customer_id"]
    assert len(stats["sample_keys"]) == 4
    assert stats["last_event"].startswith(newest.strftime("%Y-%m-%dT%H:%M:%S"))
    sample = stats["online_sample"]
    assert sample["metadata"]["feature_names"][0] == "customer_id"
    assert sample["results"][0]["values"] == [int(k[0]) for k in stats["sample_keys"]]
    for column in sample["results"][1:]:
        assert set(column["statuses"]) == {"PRESENT"} or "NULL_VALUE" in column["statuses"]


def test_the_cli_prints_the_same_statistics(store, online_repo):
    proc = run(GRANARY_BIN, "-C", online_repo, "stats", "bay_static", "--json", "--sample", "0")
    cli = json.loads(proc.stdout)
    sdk = store.feature_stats("bay_static", sample=0)
    for a, b in zip(cli["features"], sdk["features"]):
        assert {k: v for k, v in a.items()} == {k: v for k, v in b.items()}


def test_errors_name_what_to_fix(store):
    with pytest.raises(granary.NotFound, match="did you mean 'customer_profile'"):
        store.feature_stats("customer_profil")
    with pytest.raises(granary.InvalidArgument, match="has no feature 'tenure'"):
        store.feature_stats("customer_profile", features=["tenure"])
    with pytest.raises(granary.InvalidArgument, match="is after the end"):
        store.feature_stats("customer_profile", start_date=dt.datetime(2026, 1, 2),
                            end_date=dt.datetime(2026, 1, 1))
    with pytest.raises(granary.InvalidArgument):
        store.feature_stats("customer_profile", bins=0)
