"""Fixtures of the Python SDK's tests (tests/test_sdk_*.py import them by name).

How the tests find the SDK: the directory in $GRANARY_PYTHONPATH (`make test` sets it to
build/python, where the normal CMake build puts the native module beside links to
python/granary/*.py) or, when unset, build/python of this checkout, goes first on sys.path. If
neither holds a build, `import granary` finds an installed package (`pip install .`).
"""
import os
import pathlib
import shutil
import subprocess
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
_BUILD_PYTHON = pathlib.Path(os.environ.get("GRANARY_PYTHONPATH", ROOT / "build" / "python"))
if (_BUILD_PYTHON / "granary").is_dir():
    sys.path.insert(0, str(_BUILD_PYTHON))

import granary  # noqa: E402

GRANARY_BIN = pathlib.Path(os.environ.get("GRANARY_BIN", ROOT / "build" / "granary"))
# The views loaded into the online store of `online_repo`, with their Parquet files.
ONLINE_VIEWS = {
    "customer_payments_stats": "customer_payments.parquet",
    "customer_profile": "customer_profiles.parquet",
    "bay_static": "bays.parquet",
}


def run(*args, cwd=None):
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="session")
def parking_data(tmp_path_factory):
    """`granary datagen --scale tiny` once per session (the snapshot ends today, midnight UTC, so
    the online rows are fresh)."""
    if not GRANARY_BIN.exists():
        pytest.fail(f"{GRANARY_BIN} does not exist: run 'make build' first")
    out = tmp_path_factory.mktemp("parking-data") / "data"
    run(GRANARY_BIN, "datagen", "--scale", "tiny", "--out", out, "-q")
    return out


def make_parking_repo(dest: pathlib.Path, data: pathlib.Path) -> pathlib.Path:
    """A copy of examples/parking whose data/ links to the generated tables (the registry and
    the online store are the copy's own)."""
    shutil.copytree(ROOT / "examples" / "parking", dest, ignore=shutil.ignore_patterns("data"))
    (dest / "data").mkdir()
    for entry in data.iterdir():
        (dest / "data" / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    return dest


@pytest.fixture(scope="session")
def parking_repo(parking_data, tmp_path_factory):
    """An applied copy of the parking repository (tests must not change it)."""
    repo = make_parking_repo(tmp_path_factory.mktemp("parking") / "parking", parking_data)
    granary.FeatureStore(repo).apply()
    return repo


@pytest.fixture(scope="session")
def offline_store(parking_repo):
    store = granary.FeatureStore(parking_repo)
    yield store
    store.close()


@pytest.fixture
def fresh_repo(parking_data, tmp_path):
    """A copy of the parking repository that a test may change (not applied)."""
    return make_parking_repo(tmp_path / "parking", parking_data)


@pytest.fixture(scope="session")
def online_repo(parking_data, tmp_path_factory):
    """An applied copy whose online store holds every row of ONLINE_VIEWS' files, written by
    granary_test_online_load (OnlineStore::WriteBatch; the newest row per entity wins)."""
    repo = make_parking_repo(tmp_path_factory.mktemp("online") / "parking", parking_data)
    granary.FeatureStore(repo).apply()
    loader = GRANARY_BIN.parent / "granary_test_online_load"
    for view, file in ONLINE_VIEWS.items():
        run(loader, repo, view, repo / "data" / file)
    return repo


def latest_rows(path: pathlib.Path, key: str, created: str = None) -> dict:
    """key -> the newest row (by event_timestamp, then created) of a Parquet file, as a dict."""
    table = pq.read_table(path)
    order = [("event_timestamp", "ascending")] + ([(created, "ascending")] if created else [])
    rows = table.sort_by(order).to_pylist()
    return {row[key]: row for row in rows}
