"""Fixtures of the Python SDK's tests (tests/test_sdk_*.py import them by name).

How the tests find the SDK: the directory in $GRANARY_PYTHONPATH (`make test` sets it to
build/python, where the normal CMake build puts the native module beside links to
python/granary/*.py) or, when unset, build/python of this checkout, goes first on sys.path. If
neither holds a build, `import granary` finds an installed package (`pip install .`).
"""
import datetime as dt
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
# The ttl the online tests give customer_payments_stats (shorten_payments_ttl): the tiny data's
# rows are all under 61 days old, so the example's 90d would never show OUTSIDE_MAX_AGE.
PAYMENTS_TTL = dt.timedelta(days=30)
ONLINE_FEATURES = ["customer_payments_stats:sessions_90d",
                   "customer_payments_stats:avg_session_minutes_90d",
                   "customer_profile:tenure_days", "customer_profile:payment_method"]


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


def shorten_payments_ttl(repo: pathlib.Path) -> None:
    """customer_payments_stats gets PAYMENTS_TTL instead of 90d (before apply)."""
    defs = repo / "customer_risk.yaml"
    text = defs.read_text()
    assert text.count("ttl: 90d") == 1, text
    defs.write_text(text.replace("ttl: 90d", f"ttl: {PAYMENTS_TTL.days}d"))


@pytest.fixture(scope="session")
def online_repo(parking_data, tmp_path_factory):
    """An applied copy (customer_payments_stats' ttl shortened to PAYMENTS_TTL) whose online store
    holds every row of ONLINE_VIEWS' files, written by `granary materialize` over all time (the
    newest row per entity wins; datagen's snapshot ends before now)."""
    repo = make_parking_repo(tmp_path_factory.mktemp("online") / "parking", parking_data)
    shorten_payments_ttl(repo)
    granary.FeatureStore(repo).apply()
    run(GRANARY_BIN, "-C", repo, "materialize", "1970-01-01T00:00:00Z", "now",
        "--views", ",".join(ONLINE_VIEWS), "-q")
    return repo


def latest_rows(path: pathlib.Path, key: str, created: str = None) -> dict:
    """key -> the newest row (by event_timestamp, then created) of a Parquet file, as a dict."""
    table = pq.read_table(path)
    order = [("event_timestamp", "ascending")] + ([(created, "ascending")] if created else [])
    rows = table.sort_by(order).to_pylist()
    return {row[key]: row for row in rows}


def expected_online(online_repo, customers, now=None):
    """Per feature of ONLINE_FEATURES: the values, statuses and event times the online store must
    answer at `now` (default: the current time) once it holds every row of the source files."""
    now = now or dt.datetime.now(dt.timezone.utc)
    payments = latest_rows(online_repo / "data" / "customer_payments.parquet", "customer_id",
                           created="created")
    profiles = latest_rows(online_repo / "data" / "customer_profiles.parquet", "customer_id")
    out = {}
    for ref in ONLINE_FEATURES:
        view, feature = ref.split(":")
        rows, ttl = ((payments, PAYMENTS_TTL) if view == "customer_payments_stats"
                     else (profiles, None))
        values, statuses, times = [], [], []
        for c in customers:
            row = rows.get(c)
            if row is None:
                values.append(None), statuses.append("NOT_FOUND"), times.append(None)
                continue
            times.append(row["event_timestamp"])
            if ttl is not None and row["event_timestamp"] < now - ttl:
                values.append(None), statuses.append("OUTSIDE_MAX_AGE")
            elif row[feature] is None:
                values.append(None), statuses.append("NULL_VALUE")
            else:
                values.append(row[feature]), statuses.append("PRESENT")
        out[feature] = (values, statuses, times)
    return out


def read_as_expected(read, online_repo, customers):
    """(read(), the answer expected for it): `read` is an online read of `customers` at the
    current time, and the expected answer must hold over the whole read. datagen's rows are at
    midnight, so a ttl passes one of them when the clock passes midnight: a read whose expected
    answer differs at its start and its end straddled that instant, and is read again."""
    for _ in range(3):
        start = dt.datetime.now(dt.timezone.utc)
        response = read()
        end = dt.datetime.now(dt.timezone.utc)
        want = expected_online(online_repo, customers, now=end)
        if want == expected_online(online_repo, customers, now=start):
            return response, want
    pytest.fail("three reads in a row straddled a ttl boundary of the data")


def customers_to_ask(online_repo):
    """Customers covering every status: fresh, quiet for long (outside PAYMENTS_TTL), with a null
    feature, and unknown."""
    payments = latest_rows(online_repo / "data" / "customer_payments.parquet", "customer_id",
                           created="created")
    now = dt.datetime.now(dt.timezone.utc)
    fresh = [c for c, r in payments.items() if r["event_timestamp"] >= now - PAYMENTS_TTL]
    old = [c for c, r in payments.items() if r["event_timestamp"] < now - PAYMENTS_TTL]
    null = [c for c, r in payments.items()
            if r["avg_session_minutes_90d"] is None and c in set(fresh)]
    return fresh[:20] + old[:5] + null[:5] + [10_000_001]
