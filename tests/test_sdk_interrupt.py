"""Ctrl-C stops a long get_historical_features and a long materialization: a child process sends
SIGINT to itself from a Python timer thread (which can only run because the call released the
GIL) while the core reads 80 M feature rows, and gets KeyboardInterrupt carrying the core's
"cancelled" note (the core stopped itself; it did not run to the end). The store then still
works; the cancelled materialization is recorded failed and keeps its watermark."""
import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sdk_fixtures import _BUILD_PYTHON

import granary

FILES = 40            # hard links to one file: 40 x 2 M rows to read, written once
ROWS_PER_FILE = 2_000_000
ENTITY_ROWS = 200_000

DEFS = """
entities:
  - {name: customer, join_keys: [customer_id], value_type: int64}
data_sources:
  - {name: big_source, path: data/big, timestamp_field: event_timestamp}
feature_views:
  - name: big
    entities: [customer]
    source: big_source
    ttl: 0
    schema:
      - {name: value, type: float64}
"""

CHILD = r"""
import json, os, signal, sys, threading, time
sys.path.insert(0, sys.argv[2])
import granary
import pyarrow.parquet as pq

# Ctrl-C raises KeyboardInterrupt even when this process was started with SIGINT ignored (a
# background job of a non-interactive shell is): Python then leaves it ignored.
signal.signal(signal.SIGINT, signal.default_int_handler)
store = granary.FeatureStore(sys.argv[1])
entities = pq.read_table(os.path.join(sys.argv[1], "entities.parquet"))
timer = threading.Timer(float(sys.argv[3]), lambda: os.kill(os.getpid(), signal.SIGINT))
out = {}
start = time.monotonic()
timer.start()
try:
    job = store.get_historical_features(entities, features=["big:value"])
    out["outcome"] = "finished"
except KeyboardInterrupt as e:
    out["outcome"] = "interrupted"
    out["notes"] = getattr(e, "__notes__", [])
out["seconds"] = round(time.monotonic() - start, 2)
small = store.get_historical_features(entities.slice(0, 10), features=["big:value"])
out["after"] = small.to_arrow().num_rows
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def big_repo(tmp_path_factory):
    repo = tmp_path_factory.mktemp("interrupt") / "repo"
    (repo / "data" / "big").mkdir(parents=True)
    (repo / "granary.yaml").write_text("project: interrupt\n")
    (repo / "defs.yaml").write_text(DEFS)
    rng = np.random.default_rng(7)
    day = 86_400_000_000
    source = pa.table({
        "customer_id": rng.integers(1, 1_000_000, ROWS_PER_FILE),
        "event_timestamp": pa.array(rng.integers(0, 365 * day, ROWS_PER_FILE),
                                    pa.timestamp("us", tz="UTC")),
        "value": rng.random(ROWS_PER_FILE),
    })
    first = repo / "data" / "big" / "part-000.parquet"
    pq.write_table(source, first, row_group_size=250_000)
    for i in range(1, FILES):
        os.link(first, repo / "data" / "big" / f"part-{i:03}.parquet")
    pq.write_table(pa.table({
        "customer_id": rng.integers(1, 1_000_000, ENTITY_ROWS),
        "event_timestamp": pa.array(rng.integers(180 * day, 365 * day, ENTITY_ROWS),
                                    pa.timestamp("us", tz="UTC")),
    }), repo / "entities.parquet")
    granary.FeatureStore(repo).apply()
    return repo


def test_sigint_stops_a_long_retrieval_and_the_store_still_works(big_repo):
    proc = subprocess.run([sys.executable, "-c", CHILD, str(big_repo), str(_BUILD_PYTHON), "1.0"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["outcome"] == "interrupted", out
    assert out["notes"] == ["granary: reading feature view 'big' was cancelled"], out
    assert out["after"] == 10


MATERIALIZE_CHILD = r"""
import json, os, signal, sys, threading
sys.path.insert(0, sys.argv[2])
import granary

signal.signal(signal.SIGINT, signal.default_int_handler)  # as above
store = granary.FeatureStore(sys.argv[1])
timer = threading.Timer(float(sys.argv[3]), lambda: os.kill(os.getpid(), signal.SIGINT))
out = {}
timer.start()
try:
    store.materialize_incremental("now", ["big"], memory_budget=64 << 20)
    out["outcome"] = "finished"
except KeyboardInterrupt as e:
    out["outcome"] = "interrupted"
    out["notes"] = getattr(e, "__notes__", [])
big = store.status()["big"]
out["watermark"] = big.watermark and big.watermark.isoformat()
out["last_run"] = [big.last_run.status, big.last_run.error]
print(json.dumps(out))
"""


def test_sigint_stops_a_long_materialization_and_records_it_failed(big_repo):
    proc = subprocess.run([sys.executable, "-c", MATERIALIZE_CHILD, str(big_repo),
                           str(_BUILD_PYTHON), "1.0"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["outcome"] == "interrupted", out
    [note] = out["notes"]
    assert note.startswith("granary: ") and "cancelled" in note, out
    # The view in progress is recorded failed; its watermark did not move.
    assert out["watermark"] is None
    assert out["last_run"][0] == "failed" and "cancelled" in out["last_run"][1], out
