"""Feast's Spark offline store on bench/spark's data: one training set through the real feast
package (run with .venv-feast/bin/python, never .venv), with the same entities, views, ttls and
features as Granary's repository, on the same Spark Connect server (`spark_conf: {spark.remote:
sc://...}`: Feast's SparkOfflineStore builds its session from spark_conf, and pyspark's builder
turns `spark.remote` into a Spark Connect session).

    .venv-feast/bin/python bench/spark/feast_store.py PARAMS_JSON

PARAMS_JSON: {"data", "remote", "k", "f", "ttls", "out"}. Writes the training set to `out`
(Parquet, rows in row_id order, columns named view{v}__f{j} as Granary's --full-feature-names
names them) so that bench.py can compare it with Granary's. Feast's result comes back to this
process as a pandas DataFrame (RetrievalJob.to_arrow: toPandas), which is what the peak RSS
measured around this process shows.
"""
import json
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
from feast import Entity, FeatureStore, FeatureView, Field, RepoConfig
from feast.infra.offline_stores.contrib.spark_offline_store.spark import (
    SparkOfflineStoreConfig)
from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource
from feast.types import Float64
from feast.value_type import ValueType


def main():
    p = json.loads(sys.argv[1])
    data, k, f = Path(p["data"]), p["k"], p["f"]
    with tempfile.TemporaryDirectory(prefix="feast-spark-bench-") as work:
        config = RepoConfig(
            project="pit_bench", provider="local", registry=str(Path(work) / "registry.db"),
            offline_store=SparkOfflineStoreConfig(
                type="spark", spark_conf={"spark.remote": p["remote"]}),
            online_store={"type": "sqlite", "path": str(Path(work) / "online.db")},
            entity_key_serialization_version=3, repo_path=work)
        store = FeatureStore(config=config)
        driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
        views = []
        for v in range(k):
            source = SparkSource(name=f"view{v}_source", path=str(data / f"view{v}"),
                                 file_format="parquet", timestamp_field="event_timestamp",
                                 created_timestamp_column="created")
            ttl = p["ttls"][v]
            views.append(FeatureView(
                name=f"view{v}", entities=[driver], source=source,
                # Feast reads a ttl of 0 as "no limit", as Granary's `ttl: 0` does.
                ttl=timedelta(days=ttl) if ttl else timedelta(0),
                schema=[Field(name=f"f{j}", dtype=Float64) for j in range(f)]))
        store.apply([driver] + views)
        entities = pq.read_table(data / "entities.parquet").to_pandas()
        job = store.get_historical_features(
            entity_df=entities,
            features=[f"view{v}:f{j}" for v in range(k) for j in range(f)],
            full_feature_names=True)
        table = job.to_arrow()
        table = table.sort_by("row_id")
        pq.write_table(table, p["out"])
        print(f"feast: {table.num_rows} rows x {table.num_columns} columns", file=sys.stderr)


if __name__ == "__main__":
    main()
