"""get-online-features and teardown end to end, on the embedded store and on a real redis-server.

Rows reach the online store as a user's do: `granary materialize` over the repository's source.
"""
import datetime as dt
import json
import shutil
import subprocess
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from redis_helpers import free_port, start_redis, stop_redis

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def rfc3339(t):
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def redis_port(tmp_path):
    port = free_port()
    proc = start_redis(port, tmp_path)
    try:
        yield port
    finally:
        stop_redis(proc)
def make_repo(cli, tmp_path, online_store=None):
    cli("init", "shop", check=True)
    repo = tmp_path / "shop"
    if online_store:
        text = (repo / "granary.yaml").read_text()
        text = text.replace("online_store: {type: rocksdb, path: data/online}", online_store)
        (repo / "granary.yaml").write_text(text)
    cli("-C", repo, "apply", check=True)
    # Fresh rows: customer 1001 twice (the newer must win), 1002 once with a null feature.
    table = pa.table({
        "customer_id": pa.array([1001, 1001, 1002], pa.int64()),
        "event_timestamp": pa.array([NOW - dt.timedelta(hours=1), NOW - dt.timedelta(hours=3),
                                     NOW - dt.timedelta(hours=2)], pa.timestamp("us", tz="UTC")),
        "created": pa.array([NOW, NOW, NOW], pa.timestamp("us", tz="UTC")),
        "payment_failures_30d": pa.array([3, 9, None], pa.int64()),
        "failure_rate_90d": pa.array([0.25, 0.5, 0.125], pa.float64()),
        "tenure_days": pa.array([400, 399, 30], pa.int64()),
    })
    pq.write_table(table, repo / "data" / "customer_stats.parquet")  # in place of the sample
    return repo


def load(cli, repo):
    """Materializes every row of the source (the newest per customer wins)."""
    out = cli("-C", repo, "materialize", "2000-01-01T00:00:00Z", "now", "--quiet", check=True)
    assert "customer_stats" in out.stdout + out.stderr, out.stdout + out.stderr


def expected_response(full_names=False):
    prefix = "customer_stats__" if full_names else ""
    t1, t2, epoch = rfc3339(NOW - dt.timedelta(hours=1)), rfc3339(NOW - dt.timedelta(hours=2)), \
        "1970-01-01T00:00:00Z"
    return {
        "metadata": {"feature_names": ["customer_id", prefix + "payment_failures_30d",
                                       prefix + "failure_rate_90d", prefix + "tenure_days"]},
        "results": [
            {"values": [1001, 1002, 4242], "statuses": ["PRESENT"] * 3,
             "event_timestamps": [epoch] * 3},
            {"values": [3, None, None], "statuses": ["PRESENT", "NULL_VALUE", "NOT_FOUND"],
             "event_timestamps": [t1, t2, epoch]},
            {"values": [0.25, 0.125, None], "statuses": ["PRESENT", "PRESENT", "NOT_FOUND"],
             "event_timestamps": [t1, t2, epoch]},
            {"values": [400, 30, None], "statuses": ["PRESENT", "PRESENT", "NOT_FOUND"],
             "event_timestamps": [t1, t2, epoch]},
        ],
    }


FEATURES = "customer_stats:payment_failures_30d,customer_stats:failure_rate_90d"


def test_get_online_features_from_the_embedded_store(cli, tmp_path):
    repo = make_repo(cli, tmp_path)
    load(cli, repo)
    out = cli("-C", repo, "get-online-features", "--features", FEATURES,
              "--features", "customer_stats:tenure_days", "--entity", "customer_id=1001,1002,4242",
              check=True)
    assert json.loads(out.stdout) == expected_response()
    out = cli("-C", repo, "get-online-features", "--feature-service", "customer_risk_v1",
              "--entity", "customer_id=1001,1002,4242", "--full-feature-names", check=True)
    assert json.loads(out.stdout) == expected_response(full_names=True)


def test_the_starter_repository_serves_its_sample_data(cli, tmp_path):
    """init's hint, followed as printed: apply, materialize-incremental now, get-online-features."""
    out = cli("init", "starter", check=True)
    assert "granary materialize-incremental now" in out.stdout
    assert "granary get-online-features --feature-service customer_risk_v1" in out.stdout
    repo = tmp_path / "starter"
    sample = pq.read_table(repo / "data" / "customer_stats.parquet").to_pylist()
    newest = max(row["event_timestamp"] for row in sample)
    assert NOW - newest < dt.timedelta(days=1), newest  # relative to today, inside the 90d ttl
    cli("-C", repo, "apply", check=True)
    cli("-C", repo, "materialize-incremental", "now", check=True)
    out = cli("-C", repo, "get-online-features", "--feature-service", "customer_risk_v1",
              "--entity", "customer_id=1001,1002", check=True)
    results = json.loads(out.stdout)["results"]
    assert len(results) == 4  # the key and three features
    latest = {row["customer_id"]: row for row in sorted(sample, key=lambda r: r["event_timestamp"])}
    for column, name in zip(results[1:], ["payment_failures_30d", "failure_rate_90d",
                                          "tenure_days"]):
        assert column["statuses"] == ["PRESENT", "PRESENT"], column
        assert column["values"] == [latest[1001][name], latest[1002][name]], column
        assert column["event_timestamps"] == [rfc3339(newest)] * 2


def test_get_online_features_from_redis_and_teardown_deletes_the_keys(cli, tmp_path,
                                                                      redis_port):
    repo = make_repo(cli, tmp_path,
                     f'online_store: {{type: redis, connection_string: "127.0.0.1:{redis_port}"}}')
    load(cli, repo)
    out = cli("-C", repo, "get-online-features", "--features", FEATURES,
              "--features", "customer_stats:tenure_days", "--entity", "customer_id=1001,1002,4242",
              check=True)
    assert json.loads(out.stdout) == expected_response()
    keys = subprocess.run(["redis-cli", "-p", str(redis_port), "--scan"],
                          capture_output=True).stdout.splitlines()  # binary entity keys
    assert len(keys) == 2 and all(k.startswith(b"shop:") for k in keys), keys

    out = cli("-C", repo, "teardown", "--yes", check=True)
    assert f"removed the online data of project shop (redis at 127.0.0.1:{redis_port})" in out.stdout
    assert subprocess.run(["redis-cli", "-p", str(redis_port), "dbsize"], capture_output=True,
                          text=True).stdout.strip() == "0"
    assert not (repo / "data" / "registry.db").exists()


def test_a_redis_server_that_is_down_fails_fast_and_teardown_keeps_everything(cli, tmp_path):
    port = free_port()
    repo = make_repo(cli, tmp_path,
                     f'online_store: {{type: redis, connection_string: "127.0.0.1:{port}"}}')
    start = time.monotonic()
    out = cli("-C", repo, "get-online-features", "--features", FEATURES,
              "--entity", "customer_id=1001", check=False)
    assert f"cannot connect to redis at 127.0.0.1:{port}" in out.stderr
    assert time.monotonic() - start < 60  # a clear error, never a hang
    out = cli("-C", repo, "teardown", "--yes", check=False)
    assert "nothing was removed" in out.stderr
    assert (repo / "data" / "registry.db").exists()


def test_bad_requests_are_clear_errors(cli, tmp_path):
    repo = make_repo(cli, tmp_path)
    cases = [
        (["--features", "customer_stats:tenure_day", "--entity", "customer_id=1"],
         "feature view 'customer_stats' has no feature 'tenure_day', did you mean 'tenure_days'?"),
        (["--features", "customer_stat:tenure_days", "--entity", "customer_id=1"],
         "unknown feature view 'customer_stat'"),
        (["--features", "customer_stats:tenure_days", "--entity", "customer_id=abc"],
         "entities.customer_id[0]: 'abc' is not an int64"),
        (["--features", "customer_stats:tenure_days", "--entity", "customer=1"],
         "'customer' is not a join key of any entity, did you mean 'customer_id'?"),
        (["--features", "customer_stats:tenure_days", "--entity", "customer_id"],
         "--entity customer_id: write KEY=V1,V2,..."),
        (["--entity", "customer_id=1"], "give --features view:feature,... or --feature-service"),
        (["--feature-service", "nope", "--entity", "customer_id=1"],
         "unknown feature service 'nope'"),
    ]
    for args, message in cases:
        out = cli("-C", repo, "get-online-features", *args, check=False)
        assert out.returncode == 1, (args, out.stdout, out.stderr)
        assert message in out.stderr, (args, out.stderr)
        assert out.stdout == ""
    out = cli("-C", repo, "get-online-features", "--features", FEATURES, check=False)
    assert out.returncode != 0 and "--entity is required" in out.stderr


def test_get_online_features_before_apply_says_to_apply(cli, tmp_path):
    cli("init", "fresh", check=True)
    out = cli("-C", tmp_path / "fresh", "get-online-features", "--features", FEATURES,
              "--entity", "customer_id=1", check=False)
    assert out.returncode == 1
    assert "granary apply" in out.stderr
