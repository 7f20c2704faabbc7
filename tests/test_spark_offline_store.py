"""The Spark offline engine end to end through the CLI, against a real Spark cluster
(scripts/spark-cluster, spark_helpers.py): the same repository run with offline_store type file
and type spark must give the same training sets and the same online store after materialization.
Delta tables here are written by an independent writer (the deltalake package)."""
import json

import deltalake
import pyarrow.parquet as pq
import pytest

from spark_helpers import ENTITIES, make_repo
from spark_helpers import spark_remote  # noqa: F401  (the session's cluster)


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


def test_entity_rows_given_as_sql_or_a_table_stay_in_the_cluster(cli, repos):
    embedded, spark = repos
    cli("-C", embedded, "get-historical-features", "--entities", embedded / "entities.parquet",
        "--feature-service", "pricing", "-o", embedded / "train.parquet", check=True)
    local = pq.read_table(embedded / "train.parquet")
    # The same rows, read by the cluster (one file: its row order is the file's).
    relation = f"parquet.`{spark / 'entities.parquet'}`"
    for how in (["--entities-sql", f"SELECT * FROM {relation}"], ["--entities-table", relation]):
        out = cli("-C", spark, "get-historical-features", *how, "--feature-service", "pricing",
                  "-o", spark / "train.parquet", check=True)
        remote = pq.read_table(spark / "train.parquet")
        assert remote.column_names == local.column_names
        assert remote.to_pylist() == local.to_pylist(), how
        assert "wrote 7 rows" in out.stderr, out.stderr
    # Its ORDER BY is the training set's order; the result may stay in the cluster too.
    target = spark / "by_label"
    cli("-C", spark, "get-historical-features", "--entities-sql",
        f"SELECT * FROM {relation} ORDER BY label, customer_id DESC NULLS LAST",
        "--feature-service", "pricing", "--output-path", target, check=True)
    written = deltalake.DeltaTable(str(target)).to_pyarrow_table()
    assert sorted(written.column("label").to_pylist()) == sorted(ENTITIES["label"].to_pylist())
    assert written.num_rows == ENTITIES.num_rows

    # The embedded engine cannot read rows where it does not run: a clear refusal.
    out = cli("-C", embedded, "get-historical-features", "--entities-sql", "SELECT 1",
              "--feature-service", "pricing", "-o", embedded / "x.parquet", check=False)
    assert "--entities-sql" in out.stderr and "offline_store type spark" in out.stderr, out.stderr
    out = cli("-C", spark, "get-historical-features", "--entities", spark / "entities.parquet",
              "--entities-table", "t", "--feature-service", "pricing", "-o", spark / "x.parquet",
              check=False)
    assert "give the entity rows one way" in out.stderr, out.stderr


def test_sdk_entity_rows_given_as_sql_or_a_table(repos):
    import sdk_fixtures  # noqa: F401  (puts the built SDK on sys.path)
    import granary
    embedded, spark = repos
    expected = granary.FeatureStore(embedded).get_historical_features(
        ENTITIES, feature_service="pricing").to_arrow()
    store = granary.FeatureStore(spark)
    relation = f"parquet.`{spark / 'entities.parquet'}`"
    by_sql = store.get_historical_features(f"SELECT * FROM {relation}",
                                           feature_service="pricing")
    assert by_sql.to_arrow().to_pylist() == expected.to_pylist()
    assert by_sql.features == ["score", "occupied", "rate"]
    by_table = store.get_historical_features(entity_table=relation, feature_service="pricing")
    assert by_table.to_arrow().to_pylist() == expected.to_pylist()
    with pytest.raises(NotImplementedError, match="offline_store type spark"):
        granary.FeatureStore(embedded).get_historical_features(
            f"SELECT * FROM {relation}", feature_service="pricing")
    with pytest.raises(ValueError, match="not both"):
        store.get_historical_features(ENTITIES, entity_table=relation, feature_service="pricing")


def test_sdk_training_set_streams_from_the_cluster_batch_by_batch(repos, tmp_path):
    """stream_historical_features on Spark hands out the cluster's Arrow batches as they arrive
    (Spark Connect sends at most 10,000 rows a batch), so a 30,000-row training set comes in
    several; the same rows as the embedded engine's, in order; and written to a file."""
    import sdk_fixtures  # noqa: F401  (puts the built SDK on sys.path)
    import granary
    import pyarrow as pa
    embedded, spark = repos
    many = pa.concat_tables([ENTITIES.slice(0, 6)] * 5000)  # no null time: 30,000 rows
    expected = granary.FeatureStore(embedded).get_historical_features(
        many, feature_service="pricing").to_arrow()
    store = granary.FeatureStore(spark)
    sizes = []
    with store.stream_historical_features(many, feature_service="pricing") as stream:
        assert stream.features == ["score", "occupied", "rate"]
        batches = []
        for batch in stream:
            sizes.append(batch.num_rows)
            batches.append(batch)
    assert sum(sizes) == many.num_rows and len(sizes) >= 3, sizes
    assert max(sizes) <= 10_000, sizes
    assert pa.Table.from_batches(batches).to_pylist() == expected.to_pylist()
    rows = store.write_historical_features(many, feature_service="pricing",
                                           path=tmp_path / "train.parquet")
    assert rows == many.num_rows
    assert pq.read_table(tmp_path / "train.parquet").to_pylist() == expected.to_pylist()
    # Closed after one batch: the cluster's job is interrupted, the session stays usable.
    stream = store.stream_historical_features(many, feature_service="pricing")
    assert stream.read_next_batch().num_rows > 0
    stream.close()
    assert stream.read_next_batch() is None
    again = store.get_historical_features(ENTITIES, feature_service="pricing").to_arrow()
    assert again.num_rows == ENTITIES.num_rows
