"""`granary import-feast`: Feast repositories read by the real feast package (.venv-feast) and
turned into Granary repositories on which `granary plan` runs clean; what has no equivalent is
listed. On the repository `feast init` writes, and on a larger one (a view keyed by two entities,
a field mapping, a Delta source, Redis settings, feature services with projections)."""
import datetime as dt
import json

import pyarrow as pa
import pyarrow.parquet as pq

from feast_helpers import FEAST_PYTHON, NOW, feast, feast_client, require_feast


def import_feast(cli, repo, *args, check=True):
    return cli("import-feast", repo, "--feast-python", FEAST_PYTHON, *args, check=check)


def test_feast_init_repository_imports_and_serves(cli, tmp_path):
    require_feast()
    feast(tmp_path, "init", "demo")
    repo = tmp_path / "demo" / "feature_repo"
    proc = import_feast(cli, repo)
    out = proc.stdout
    assert "1 entities, 4 data sources, 2 feature views, 3 feature services" in out
    # Everything without an equivalent is listed, with the reason.
    for line in ("on-demand feature view 'transformed_conv_rate': Granary has no on-demand",
                 "request source 'vals_to_add'",
                 "feature 'driver_hourly_stats:driver_metadata': Feast type Map has no Granary "
                 "equivalent",
                 "feature service 'driver_activity_v1': its features of 'transformed_conv_rate' "
                 "are left out"):
        assert line in out, out
    plan = cli("-C", repo, "plan", check=True)
    assert plan.stderr == "", plan.stderr  # clean: no warnings
    assert "10 to add" in plan.stdout
    # A second import does not overwrite what the first wrote.
    again = import_feast(cli, repo, check=False)
    assert again.returncode != 0 and "--force" in again.stderr
    # The imported repository works: apply, materialize, serve the values Feast's data holds.
    cli("-C", repo, "apply", check=True)
    end = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    cli("-C", repo, "materialize", "2020-01-01T00:00:00", end, check=True)
    data = pq.read_table(repo / "data" / "driver_stats.parquet").to_pandas()
    latest = data.sort_values(["event_timestamp", "created"]).groupby("driver_id").last()
    driver = int(latest.index[0])
    got = cli("-C", repo, "get-online-features", "--features", "driver_hourly_stats:avg_daily_trips",
              "--entity", f"driver_id={driver}", check=True)
    assert str(int(latest.loc[driver, "avg_daily_trips"])) in got.stdout


LARGER = '''
from datetime import timedelta

from feast import (Entity, FeatureService, FeatureView, Field, FileSource, PushSource,
                   ValueType)
from feast.data_format import DeltaFormat
from feast.types import Array, Float64, Int64, String

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.STRING,
                  description="A rider", tags={"pii": "no"})
trips = FileSource(name="trips", path="data/trips.parquet", timestamp_field="ts",
                   created_timestamp_column="written", field_mapping={"fare_eur": "fare"})
ratings = FileSource(name="ratings", path="data/ratings", file_format=DeltaFormat(),
                     timestamp_field="event_timestamp")
ratings_push = PushSource(name="ratings_push", batch_source=ratings)
pair_stats = FeatureView(
    name="pair_stats", entities=[driver, customer], ttl=timedelta(hours=36),
    schema=[Field(name="fare", dtype=Float64), Field(name="rides", dtype=Int64),
            Field(name="routes", dtype=Array(String))],
    source=trips, owner="pricing@example.com", description="Per driver and rider",
    tags={"team": "pricing"})
driver_rating = FeatureView(
    name="driver_rating", entities=[driver], ttl=timedelta(days=90),
    schema=[Field(name="rating", dtype=Float64)], source=ratings_push)
offline_only = FeatureView(
    name="offline_only", entities=[driver], schema=[Field(name="rating", dtype=Float64)],
    source=ratings, online=False)
pricing_v1 = FeatureService(name="pricing_v1",
                            features=[pair_stats[["fare", "rides"]], driver_rating],
                            description="Pricing model inputs", tags={"model": "pricing"})
pricing_v2 = FeatureService(name="pricing_v2", features=[pair_stats])
'''


def test_a_larger_repository_two_entities_field_mapping_delta_redis(cli, tmp_path):
    require_feast()
    repo = tmp_path / "feast_repo"
    (repo / "data").mkdir(parents=True)
    (repo / "definitions.py").write_text(LARGER)
    (repo / "feature_store.yaml").write_text(
        "project: pricing\nregistry: data/registry.db\nprovider: local\n"
        "online_store: {type: redis, connection_string: 'redis.internal:6380,password=pw,"
        "ssl=true,db=2', key_ttl_seconds: 604800}\n"
        "offline_store: {type: file}\nentity_key_serialization_version: 3\n")
    t = NOW - dt.timedelta(hours=1)
    pq.write_table(pa.table({
        "driver_id": pa.array([1, 1, 2], pa.int64()),
        "customer_id": pa.array(["a", "b", "a"]),
        "ts": pa.array([t, t, t], pa.timestamp("us", tz="UTC")),
        "written": pa.array([t, t, t], pa.timestamp("us", tz="UTC")),
        "fare_eur": pa.array([12.5, 7.25, 30.0]),
        "rides": pa.array([3, 1, 8], pa.int64()),
        "routes": pa.array([["x"], [], ["y", "z"]], pa.list_(pa.string())),
    }), repo / "data" / "trips.parquet")
    from deltalake import write_deltalake
    write_deltalake(str(repo / "data" / "ratings"), pa.table({
        "driver_id": pa.array([1, 2], pa.int64()),
        "event_timestamp": pa.array([t, t], pa.timestamp("us", tz="UTC")),
        "rating": pa.array([4.5, 4.75]),
    }))
    out = tmp_path / "granary_repo"
    proc = import_feast(cli, repo, "--out", out)
    assert "2 entities, 3 data sources, 3 feature views, 2 feature services" in proc.stdout
    assert "online store option 'ssl=true'" in proc.stdout
    config = (out / "granary.yaml").read_text()
    # The password is not copied: Feast expands ${VAR}s, Granary's file names one instead.
    assert 'online_store: {type: redis, connection_string: "redis.internal:6380,' \
           'password=${REDIS_PASSWORD},db=2", key_ttl: 7d}' in config, config
    assert "online store option 'password': written as ${REDIS_PASSWORD}" in proc.stdout
    defs = (out / "features.yaml").read_text()
    for expected in ("field_mapping: {fare_eur: fare}", "type: delta", f"path: {repo}/data/ratings",
                     "entities: [driver, customer]", "ttl: 1d12h", "owner: pricing@example.com",
                     "{name: routes, type: list<string>}", "online: false",
                     "- {view: pair_stats, features: [fare, rides]}",
                     "value_type: string"):
        assert expected in defs, defs
    # Plan runs clean on the result; with the embedded store it also applies and serves.
    plan = cli("-C", out, "plan", env={"REDIS_PASSWORD": "pw"}, check=True)
    assert plan.stderr == "", plan.stderr
    (out / "granary.yaml").write_text(config.replace(
        config[config.index("online_store:"):].splitlines()[0],
        "online_store: {type: rocksdb, path: data/online}"))
    cli("-C", out, "apply", check=True)
    cli("-C", out, "materialize", "2020-01-01T00:00:00", NOW.strftime("%Y-%m-%dT%H:%M:%S"),
        check=True)
    got = cli("-C", out, "get-online-features", "--features", "pair_stats:fare",
              "--features", "pair_stats:routes", "--entity", "driver_id=1",
              "--entity", "customer_id=b", check=True)
    body = json.loads(got.stdout)
    assert body["results"][2]["values"] == [7.25]
    assert body["results"][3]["values"] == [[]]
