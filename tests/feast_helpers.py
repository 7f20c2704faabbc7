"""The real feast package (pinned in requirements-feast.lock, installed by scripts/setup into
.venv-feast, apart from .venv) for the Feast compatibility tests: a Feast repository with its data,
`feast` commands, a `feast serve` process (stopped by pid), and Feast's SDK as a client
(tests/feast_client.py) of either server.
"""
import datetime as dt
import json
import os
import pathlib
import socket
import subprocess
import time
import urllib.request

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from redis_helpers import free_port
from serve_helpers import stop_gracefully

ROOT = pathlib.Path(__file__).resolve().parent.parent
FEAST_VENV = pathlib.Path(os.environ.get("GRANARY_FEAST_VENV", ROOT / ".venv-feast"))
FEAST_PYTHON = FEAST_VENV / "bin" / "python"
FEAST_BIN = FEAST_VENV / "bin" / "feast"
NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def require_feast():
    if not FEAST_BIN.exists():
        pytest.fail(f"{FEAST_BIN} is missing: run scripts/setup (it makes .venv-feast from "
                    "requirements-feast.lock)")


def feast_env():
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # nothing of .venv or of the build may leak in
    env["FEAST_USAGE"] = "False"  # no telemetry
    env["PYTHONWARNINGS"] = "ignore"
    return env


def feast(repo, *args, timeout=300):
    """Runs `feast ARGS` in `repo` with the pinned package; the completed process (checked)."""
    proc = subprocess.run([str(FEAST_BIN), *map(str, args)], cwd=repo, env=feast_env(),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"feast {' '.join(map(str, args))}: exit {proc.returncode}\n" \
                                 f"{proc.stdout}\n{proc.stderr}"
    return proc


def feast_client(repo, operations):
    """Runs operations through Feast's SDK (tests/feast_client.py) in .venv-feast."""
    proc = subprocess.run([str(FEAST_PYTHON), str(ROOT / "tests" / "feast_client.py"), str(repo)],
                          input=json.dumps(operations), env=feast_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"feast_client: exit {proc.returncode}\n{proc.stderr}"
    return json.loads(proc.stdout)


# A Feast repository as users write them: an entity, a file source with a created column, a view
# on it, a push source and a view on that, a feature service taking part of one view and all of
# the other. ttl is long: Feast ignores it on reads (its issue #6821); Granary's OUTSIDE_MAX_AGE
# is compared in a test of its own.
FEAST_DEFINITIONS = '''
from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, ValueType
from feast.types import Float32, Float64, Int64, String

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64,
                description="A driver")
driver_stats_source = FileSource(name="driver_stats_source", path="data/driver_stats.parquet",
                                 timestamp_field="event_timestamp",
                                 created_timestamp_column="created")
driver_hourly_stats = FeatureView(
    name="driver_hourly_stats", entities=[driver], ttl=timedelta(days=3650),
    schema=[Field(name="conv_rate", dtype=Float32), Field(name="acc_rate", dtype=Float64),
            Field(name="avg_daily_trips", dtype=Int64), Field(name="city", dtype=String)],
    online=True, source=driver_stats_source, tags={"team": "drivers"}, owner="ml@example.com",
    description="Hourly driver statistics")
driver_stats_push = PushSource(name="driver_stats_push", batch_source=driver_stats_source)
driver_fresh_stats = FeatureView(
    name="driver_fresh_stats", entities=[driver], ttl=timedelta(days=3650),
    schema=[Field(name="conv_rate", dtype=Float32), Field(name="avg_daily_trips", dtype=Int64)],
    online=True, source=driver_stats_push)
driver_activity = FeatureService(
    name="driver_activity",
    features=[driver_hourly_stats[["conv_rate", "avg_daily_trips"]], driver_fresh_stats])
'''

def write_driver_stats(path):
    """Rows for drivers 1001..1005 over the last hours, two versions of 1001 (the later wins), a
    later-created duplicate of 1002 at the same event time (created breaks the tie), and a null."""
    t = lambda hours: NOW - dt.timedelta(hours=hours)  # noqa: E731
    rows = [
        # driver, event, created, conv_rate, acc_rate, trips, city
        (1001, t(5), t(5), 0.25, 0.5, 10, "Lyon"),
        (1001, t(2), t(2), 0.5, 0.75, 12, "Lyon"),
        (1002, t(3), t(3), 0.125, 0.25, 7, "Paris"),
        (1002, t(3), t(1), 0.375, 0.625, 8, "Paris"),
        (1003, t(4), t(4), 0.75, None, 3, None),
        (1004, t(1), t(1), 1.0, 1.0, 0, "Nice"),
        (1005, t(30), t(30), 0.0625, 0.5, 1, "Brest"),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({
        "driver_id": pa.array([r[0] for r in rows], pa.int64()),
        "event_timestamp": pa.array([r[1] for r in rows], pa.timestamp("us", tz="UTC")),
        "created": pa.array([r[2] for r in rows], pa.timestamp("us", tz="UTC")),
        "conv_rate": pa.array([r[3] for r in rows], pa.float32()),
        "acc_rate": pa.array([r[4] for r in rows], pa.float64()),
        "avg_daily_trips": pa.array([r[5] for r in rows], pa.int64()),
        "city": pa.array([r[6] for r in rows], pa.string()),
    }), path)


def make_feast_repo(path, online_store="{type: sqlite, path: data/online.db}", registry=None,
                    project="driver_compat"):
    """A Feast repository at `path` (definitions, data, feature_store.yaml), applied."""
    (path / "data").mkdir(parents=True, exist_ok=True)
    (path / "definitions.py").write_text(FEAST_DEFINITIONS)
    if not (path / "data" / "driver_stats.parquet").exists():
        write_driver_stats(path / "data" / "driver_stats.parquet")
    (path / "feature_store.yaml").write_text(
        f"project: {project}\n"
        f"registry: {registry or 'data/registry.db'}\n"
        "provider: local\n"
        f"online_store: {online_store}\n"
        "offline_store: {type: file}\n"
        "entity_key_serialization_version: 3\n"
        "auth: {type: no_auth}\n")
    feast(path, "apply")
    return path


class FeastServer:
    """`feast serve` (HTTP), or with grpc=True `feast listen` (Feast's Python gRPC server, whose
    GrpcFeatureServer.GetOnlineFeatures takes ServingService's messages), on a free port of
    127.0.0.1, stopped by pid."""

    def __init__(self, repo, grpc=False):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = repo / f"feast-serve-{self.port}.log"
        if grpc:
            command = ["listen", "--address", f"127.0.0.1:{self.port}"]
        else:
            command = ["serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
                       "--no-access-log"]
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [str(FEAST_BIN), *command],
                cwd=repo, env=feast_env(), stdout=log, stderr=log)
        deadline = time.time() + 120
        while True:
            try:
                if grpc:
                    socket.create_connection(("127.0.0.1", self.port), timeout=5).close()
                    return
                with urllib.request.urlopen(self.url + "/health", timeout=5) as res:
                    if res.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                pytest.fail(f"feast serve did not come up:\n{self.log_path.read_text()}")
            time.sleep(0.25)

    def post(self, path, body):
        """(status, parsed JSON or text) of a POST."""
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as res:
                payload = res.read().decode()
                status = res.status
        except urllib.error.HTTPError as e:
            payload = e.read().decode()
            status = e.code
        try:
            return status, json.loads(payload)
        except ValueError:
            return status, payload

    def stop(self):
        return stop_gracefully(self.proc)
