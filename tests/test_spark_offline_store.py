"""The Spark offline engine end to end through the CLI, against a real Spark cluster
(scripts/spark-cluster, spark_helpers.py): the same repository run with offline_store type file
and type spark must give the same training sets and the same online store after materialization.
Delta tables here are written by an independent writer (the deltalake package)."""
import datetime as dt
import json
import shutil

import deltalake
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spark_helpers import spark_remote  # noqa: F401  (the session's cluster)

BASE = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)

DEFS = """
entities:
  - {name: customer, join_keys: [customer_id], value_type: int64}
  - {name: bay, join_keys: [zone, bay_id], value_type: [string, int32]}
data_sources:
  - {name: payments, path: data/payments, timestamp_field: event_timestamp,
     created_timestamp_column: created}
  - {name: occupancy, type: delta, path: data/occupancy, timestamp_field: ts}
feature_views:
  - name: risk
    entities: [customer]
    source: payments
    ttl: 2d
    schema:
      - {name: score, type: float64}
      - {name: failures, type: int64}
  - name: bays
    entities: [bay]
    source: occupancy
    ttl: 6h
    schema:
      - {name: occupied, type: bool}
      - {name: rate, type: float32}
feature_services:
  - name: pricing
    features:
      - {view: risk, features: [score]}
      - {view: bays}
"""


def at(hours):
    return BASE + dt.timedelta(hours=hours)


def write_data(repo):
    """Payments in two Parquet files (with ties and a backfill), occupancy as a Delta table."""
    ts = pa.timestamp("us", tz="UTC")
    pay = repo / "data" / "payments"
    pay.mkdir(parents=True)
    pq.write_table(pa.table({
        "customer_id": pa.array([1, 1, 2, 2, 3, None], pa.int64()),
        "event_timestamp": pa.array([at(0), at(5), at(1), at(1), at(2), at(2)], ts),
        "created": pa.array([at(0), at(5), at(1), at(30), None, at(2)], ts),
        "score": [0.1, 0.5, 0.2, 0.25, 0.3, 9.9],
        "failures": pa.array([0, 1, 2, 3, None, 7], pa.int64()),
    }), pay / "part-000.parquet")
    pq.write_table(pa.table({
        "customer_id": pa.array([1, 3, 4], pa.int64()),
        "event_timestamp": pa.array([at(5), at(2), at(40)], ts),
        "created": pa.array([at(5), None, at(40)], ts),
        "score": [0.55, 0.35, 0.4],  # customer 1: a full tie, the row read last wins
        "failures": pa.array([4, 5, 6], pa.int64()),
    }), pay / "part-001.parquet")
    deltalake.write_deltalake(str(repo / "data" / "occupancy"), pa.table({
        "zone": ["a", "a", "b", "b"],
        "bay_id": pa.array([1, 1, 7, 7], pa.int32()),
        "ts": pa.array([at(0), at(3), at(1), at(20)], ts),
        "occupied": [True, False, True, None],
        "rate": pa.array([1.5, 2.5, 3.5, 4.5], pa.float32()),
    }))


ENTITIES = pa.table({
    "customer_id": pa.array([1, 2, 1, 3, 4, None, 2], pa.int64()),
    "zone": ["a", "b", "a", "b", "a", "a", "b"],
    "bay_id": pa.array([1, 7, 1, 7, 1, 1, 7], pa.int32()),
    "event_timestamp": pa.array([at(6), at(2), at(6), at(3), at(3), at(6), None],
                                pa.timestamp("us", tz="UTC")),
    "label": [1, 0, 1, 1, 0, 0, 1],
})


def make_repo(cli, root, offline_store, apply_with=None):
    """A repository applied with `apply_with` (default: the store itself, so that apply checks
    the sources through that engine), then configured with `offline_store`."""
    repo = root / "repo"
    repo.mkdir(parents=True)
    config = lambda store: f"project: sparktest\noffline_store: {store}\n"
    (repo / "granary.yaml").write_text(config(apply_with or offline_store))
    (repo / "features.yaml").write_text(DEFS)
    write_data(repo)
    pq.write_table(ENTITIES, repo / "entities.parquet")
    cli("-C", repo, "apply", check=True)
    (repo / "granary.yaml").write_text(config(offline_store))
    return repo


@pytest.fixture
def repos(cli, tmp_path, spark_remote):  # noqa: F811
    embedded = make_repo(cli, tmp_path / "embedded", "{type: file}")
    spark = make_repo(cli, tmp_path / "spark", f'{{type: spark, remote: "{spark_remote}"}}')
    return embedded, spark


@pytest.mark.parametrize("args", [
    ["--feature-service", "pricing"],
    ["--features", "risk:score,risk:failures,bays:rate", "--full-feature-names"],
    ["--features", "risk:score,risk:failures", "--created-timestamp-cutoff"],
])
def test_training_sets_are_identical_on_both_engines(cli, repos, args):
    outputs = []
    for repo in repos:
        out = cli("-C", repo, "get-historical-features", "--entities", repo / "entities.parquet",
                  *args, "-o", repo / "train.parquet", check=True)
        outputs.append(pq.read_table(repo / "train.parquet"))
    embedded, spark = outputs
    assert spark.schema == embedded.schema
    assert spark.to_pylist() == embedded.to_pylist()
    assert spark.num_rows == ENTITIES.num_rows
    assert "spark at sc://127.0.0.1:" in out.stderr  # the Spark run names its cluster


def test_training_set_written_in_the_cluster_equals_the_local_one(cli, repos):
    embedded, spark = repos
    cli("-C", embedded, "get-historical-features", "--entities", embedded / "entities.parquet",
        "--feature-service", "pricing", "-o", embedded / "train.parquet", check=True)
    target = spark / "training_set"
    out = cli("-C", spark, "get-historical-features", "--entities", spark / "entities.parquet",
              "--feature-service", "pricing", "--output-path", target, check=True)
    assert "wrote 7 training rows to" in out.stderr
    assert not (spark / "train.parquet").exists()
    written = deltalake.DeltaTable(str(target)).to_pyarrow_table()
    local = pq.read_table(embedded / "train.parquet")
    assert written.column_names == local.column_names
    key = ["customer_id", "zone", "bay_id", "event_timestamp", "label"]
    as_rows = lambda t: sorted(json.dumps(r, default=str, sort_keys=True) for r in t.to_pylist())
    assert as_rows(written.select(local.column_names)) == as_rows(local)
    assert set(key) <= set(written.column_names)


def test_output_table_needs_an_engine_that_keeps_it(cli, repos):
    embedded, _ = repos
    out = cli("-C", embedded, "get-historical-features", "--entities",
              embedded / "entities.parquet", "--feature-service", "pricing",
              "--output-table", "main.training", check=False)
    assert out.returncode != 0
    assert "offline_store type spark" in out.stderr


def test_materialization_gives_the_same_online_store(cli, repos):
    answers = []
    for repo in repos:
        cli("-C", repo, "materialize", "2024-03-01T00:00:00Z", "2024-03-02T12:00:00Z", "--quiet",
            check=True)
        out = cli("-C", repo, "get-online-features", "--feature-service", "pricing",
                  "--entity", "customer_id=1,2,3,4,5", "--entity", "zone=a,b,a,b,a",
                  "--entity", "bay_id=1,7,1,7,2", check=True)
        answers.append(json.loads(out.stdout))
    embedded, spark = answers
    assert spark == embedded
    # The rows are from 2024, past the views' ttl now, so the values read as outside their max
    # age; the event times say which row each engine materialized: customer 1's at 05:00.
    scores = embedded["results"][embedded["metadata"]["feature_names"].index("score")]
    assert scores["event_timestamps"][0] == "2024-03-01T05:00:00Z", scores


def test_unreachable_cluster_is_a_clear_error(cli, tmp_path):
    repo = make_repo(cli, tmp_path, '{type: spark, remote: "sc://127.0.0.1:1"}',
                     apply_with="{type: file}")
    out = cli("-C", repo, "get-historical-features", "--entities", repo / "entities.parquet",
              "--feature-service", "pricing", "-o", repo / "train.parquet", check=False)
    assert out.returncode != 0
    assert "spark at sc://127.0.0.1:1" in out.stderr
    assert "cannot be reached" in out.stderr
    assert not (repo / "train.parquet").exists()
