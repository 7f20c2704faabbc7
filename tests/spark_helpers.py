"""A real Spark cluster for the tests that run Granary's Spark engine (scripts/spark-cluster), and
the small repository those tests share (two views: a Parquet folder with ties and a backfill, a
Delta table with two join keys).

`make test` starts one cluster for every suite and sets GRANARY_SPARK_REMOTE; the fixture then
uses it and leaves it running. Run alone (pytest tests/test_spark_*.py), the fixture starts a
cluster on a free port with its state in a temporary folder, once per test session, and stops it
(by the pids the script recorded) at the end.
"""
import datetime as dt
import os
import pathlib
import signal
import subprocess

import deltalake
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "spark-cluster"


class OwnCluster:
    """A cluster of the test's own (for tests that kill its processes), on a free port with its
    state in `state`; stop() ends it by the pids the script recorded."""

    def __init__(self, state):
        self.state = state
        proc = subprocess.run([str(SCRIPT), "start", "--port", "0", "--state", str(state)],
                              capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            self.stop()
            pytest.fail(f"scripts/spark-cluster start failed (run scripts/setup first):\n"
                        f"{proc.stderr}\nlogs: {state / 'logs'}")
        self.remote = proc.stdout.strip()

    def kill(self, name):
        """SIGKILL to one process group: "connect", "master", "worker1", "worker2"."""
        pid = int((self.state / "pids" / f"{name}.pid").read_text())
        os.killpg(pid, signal.SIGKILL)

    def stop(self):
        subprocess.run([str(SCRIPT), "stop", "--state", str(self.state)], capture_output=True,
                       timeout=120)


@pytest.fixture(scope="session")
def spark_remote(tmp_path_factory):
    remote = os.environ.get("GRANARY_SPARK_REMOTE")
    if remote:
        yield remote
        return
    state = tmp_path_factory.mktemp("spark-cluster")
    proc = subprocess.run([str(SCRIPT), "start", "--port", "0", "--state", str(state)],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        subprocess.run([str(SCRIPT), "stop", "--state", str(state)], capture_output=True)
        pytest.fail(f"scripts/spark-cluster start failed (run scripts/setup first):\n{proc.stderr}"
                    f"\nlogs: {state / 'logs'}")
    try:
        yield proc.stdout.strip()
    finally:
        subprocess.run([str(SCRIPT), "stop", "--state", str(state)], capture_output=True,
                       timeout=120)


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


def make_repo(cli, root, offline_store, apply_with=None, defs=DEFS):
    """A repository applied with `apply_with` (default: the store itself, so that apply checks
    the sources through that engine), then configured with `offline_store`."""
    repo = root / "repo"
    repo.mkdir(parents=True)
    config = lambda store: f"project: sparktest\noffline_store: {store}\n"
    (repo / "granary.yaml").write_text(config(apply_with or offline_store))
    (repo / "features.yaml").write_text(defs)
    write_data(repo)
    pq.write_table(ENTITIES, repo / "entities.parquet")
    cli("-C", repo, "apply", check=True)
    (repo / "granary.yaml").write_text(config(offline_store))
    return repo
