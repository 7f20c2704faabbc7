"""A real Spark cluster for the tests that run Granary's Spark engine (scripts/spark-cluster).

`make test` starts one cluster for every suite and sets GRANARY_SPARK_REMOTE; the fixture then
uses it and leaves it running. Run alone (pytest tests/test_spark_*.py), the fixture starts a
cluster on a free port with its state in a temporary folder, once per test session, and stops it
(by the pids the script recorded) at the end.
"""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "spark-cluster"


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
