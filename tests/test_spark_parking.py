"""The parking example (examples/parking) on both offline engines: `granary datagen --scale tiny`
data, the repository as shipped (six sources, a Delta table pruned by date, two views of window
aggregations), once with the embedded engine and once with a real Spark cluster
(spark_helpers.py). The two engines must agree:

- the training sets of both feature services (customer_risk_v1, demand_prediction_v1) over
  datagen's own labelled entity rows: value for value, nulls and order included; floating sums,
  means and standard deviations within 1e-9 relative (docs/AGGREGATIONS.md), nothing else
  loosened. The per-view summary lines (rows matched, rows with events in the window) say the
  same on both engines;
- the online store after `materialize-incremental now`: every customer's and every bay's online
  answer for both services, window features included, is the same.
"""
import json
import re
import shutil
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import ROOT, Cli
from spark_helpers import spark_remote  # noqa: F401  (the session's cluster)
from test_spark_aggregations import assert_tables_agree

SERVICES = {
    "customer_risk_v1": ("customer_id", "customer_risk_entities.parquet"),
    "demand_prediction_v1": ("parking_bay_id", "bay_demand_entities.parquet"),
}
# Views of window aggregations in the services, and their granularity in microseconds: an online
# read depends on the tile that holds the read's instant.
WINDOW_VIEWS = ["customer_payment_windows", "bay_occupancy_windows"]
QUARTER_HOUR = 15 * 60 * 1_000_000
SLOW = 1800  # seconds a cluster command may take on a loaded 2-core machine


@pytest.fixture(scope="module")
def repos(granary_bin, tmp_path_factory, spark_remote):  # noqa: F811
    """The example with `datagen --scale tiny` data (up to today 00:00 UTC, so that online reads
    now see it), as two repositories with the same files: "embedded" and "spark"."""
    root = tmp_path_factory.mktemp("parking-engines")
    embedded = root / "embedded"
    embedded.mkdir()
    for f in (ROOT / "examples" / "parking").glob("*.yaml"):
        shutil.copy(f, embedded / f.name)
    Cli(granary_bin, embedded)("datagen", "--scale", "tiny", "--out", "data", "--seed", "11", "-q",
                               check=True, timeout=SLOW)
    spark = root / "spark"
    shutil.copytree(embedded, spark)
    config = spark / "granary.yaml"
    text = config.read_text()
    assert "offline_store: {type: file}" in text
    config.write_text(text.replace("offline_store: {type: file}",
                                   f'offline_store: {{type: spark, remote: "{spark_remote}"}}'))
    # The entity rows datagen labels for each model (bay rows come as one file per group of
    # bays: one file here, in their order).
    for repo in (embedded, spark):
        Cli(granary_bin, repo)("apply", check=True, timeout=SLOW)
        shutil.copy(repo / "data" / "customer_risk_labels.parquet",
                    repo / "customer_risk_entities.parquet")
        parts = sorted((repo / "data" / "bay_demand_labels").glob("*.parquet"))
        assert parts, "datagen wrote no bay_demand_labels"
        pq.write_table(pa.concat_tables(pq.read_table(p) for p in parts),
                       repo / "bay_demand_entities.parquet")
    return {"embedded": Cli(granary_bin, embedded), "spark": Cli(granary_bin, spark),
            "paths": {"embedded": embedded, "spark": spark}}


def summary(stderr, view):
    """What a training set's summary says of a view's rows: "N of M entity rows matched" and/or
    "... with events in their W window"."""
    m = re.search(rf"^(?:\S+ )?{view}: (?:.* row groups pruned, )?(\S+ of \S+ entity rows "
                  rf"(?:matched(?:, \S+ with events in their \S+ window)?|with events in their "
                  rf"\S+ window))", stderr, re.M)
    assert m, f"no summary line for {view}:\n{stderr}"
    return m.group(1)


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_the_services_training_sets_are_the_same_on_both_engines(repos, service):
    key, entities = SERVICES[service]
    out = {}
    for engine in ("embedded", "spark"):
        path = repos["paths"][engine]
        proc = repos[engine]("get-historical-features", "--entities", entities,
                             "--feature-service", service, "--output", "train.parquet",
                             check=True, timeout=SLOW)
        out[engine] = (pq.read_table(path / "train.parquet"), proc.stderr)
    local, local_log = out["embedded"]
    remote, remote_log = out["spark"]
    entity_rows = pq.read_table(repos["paths"]["embedded"] / entities)
    assert local.num_rows == entity_rows.num_rows > 1000
    # Entity columns first, as given (the time's "not null" aside), in their order.
    assert local.column_names[:entity_rows.num_columns] == entity_rows.column_names
    assert local.select(entity_rows.column_names).to_pylist() == entity_rows.to_pylist()
    assert remote.schema.equals(local.schema), (remote.schema, local.schema)
    assert_tables_agree(remote, local)

    # The data exercises what it should: every feature has values, window views also empty
    # windows or null means somewhere, and plain views rows outside their ttl.
    for name in local.column_names:
        assert local.column(name).null_count < local.num_rows, name
    views = [v for v in re.findall(r"^(?:\S+ )?(\w+): .* row groups pruned", local_log, re.M)]
    assert len(views) == 3, local_log
    for view in views:
        said = summary(local_log, view)
        assert summary(remote_log, view) == said, (view, remote_log)
        # Spark read the views in one query: the query's scan figures, not zeros per view.
        assert re.search(rf"^(?:\S+ )?{view}: {re.escape(said)}, spark at sc://\S+: \d+ files "
                         rf"read, \d+ partitions read, [1-9]\d* rows scanned \(all views of the "
                         rf"query\)$", remote_log, re.M), remote_log
        if view in WINDOW_VIEWS:
            assert "with events in their" in said and "matched" not in said, said
        else:
            assert said.endswith("entity rows matched"), said
    assert any(key == c for c in local.column_names)


def online(cli, service, key, ids):
    """The online answer of a service for the given entity ids, through the CLI."""
    proc = cli("get-online-features", "--feature-service", service, "--entity",
               f"{key}=" + ",".join(map(str, ids)), check=True, timeout=SLOW)
    return json.loads(proc.stdout)["results"]


def test_the_online_store_after_a_spark_materialization_equals_the_embedded_one(repos):
    for engine in ("embedded", "spark"):
        proc = repos[engine]("materialize-incremental", "now", check=True, timeout=SLOW)
    assert "spark at sc://127.0.0.1:" in proc.stdout + proc.stderr  # the run names the cluster
    data = repos["paths"]["embedded"] / "data"
    customers = sorted(set(pq.read_table(data / "customers.parquet")
                           .column("customer_id").to_pylist()))
    bays = sorted(set(pq.read_table(data / "bays.parquet").column("parking_bay_id").to_pylist()))
    assert len(customers) == 2000 and len(bays) == 50
    asked = {"customer_risk_v1": ("customer_id", customers),
             "demand_prediction_v1": ("parking_bay_id", bays)}
    for attempt in range(3):
        # A window read combines the tiles up to the read's instant: read both stores within
        # one quarter hour (the finest granularity), else read both again.
        before = time.time_ns() // 1000
        answers = {engine: {service: online(repos[engine], service, key, ids)
                            for service, (key, ids) in asked.items()}
                   for engine in ("embedded", "spark")}
        after = time.time_ns() // 1000
        if before // QUARTER_HOUR == after // QUARTER_HOUR:
            break
    for service in asked:
        local, remote = answers["embedded"][service], answers["spark"][service]
        assert len(local) == len(remote)
        for feature_local, feature_remote in zip(local, remote):
            assert feature_remote == feature_local
        # Not all missing: most values within their view's ttl are present. (datagen's last
        # bay tick is at 23:45 yesterday: from 23:45 today, bay_demand's rows are past its 1d
        # ttl, OUTSIDE_MAX_AGE by right, whatever the engine.)
        statuses = [s for feature in local[1:] for s in feature["statuses"]]
        within_ttl = len(statuses) - statuses.count("OUTSIDE_MAX_AGE")
        assert statuses.count("PRESENT") > within_ttl // 2, \
            (service, {s: statuses.count(s) for s in set(statuses)})
