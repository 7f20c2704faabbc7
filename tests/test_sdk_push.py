"""The Python SDK's push over the tiny parking data, with customer_profile fed by a push source
whose batch source is a folder (a private copy of customer_profiles.parquet): online then read
back, offline then seen by get_historical_features, both; pandas and Arrow input; naive and
aware times; write-if-newer; errors naming the column and row."""
import datetime as dt
import shutil

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sdk_fixtures import fresh_repo, parking_data  # noqa: F401

import granary

UTC = dt.timezone.utc
PUSH_DEFS = """
data_sources:
  - name: customer_profile_push
    type: push
    batch_source: customer_profile_source
"""
NEW = [10_000_001, 10_000_002]  # customers the generated data does not have
FEATURES = ["customer_profile:tenure_days", "customer_profile:payment_method",
            "customer_profile:is_business"]


@pytest.fixture
def push_repo(fresh_repo):
    """customer_profile reads the push source; its batch source is a folder of this repo's own."""
    linked = fresh_repo / "data" / "customer_profiles.parquet"
    folder = fresh_repo / "data" / "customer_profiles"
    folder.mkdir()
    shutil.copyfile(linked.resolve(), folder / "part-0.parquet")
    linked.unlink()
    defs = fresh_repo / "customer_risk.yaml"
    text = defs.read_text()
    assert "path: data/customer_profiles.parquet" in text
    assert "    source: customer_profile_source" in text
    defs.write_text(text.replace("path: data/customer_profiles.parquet",
                                 "path: data/customer_profiles")
                    .replace("    source: customer_profile_source",
                             "    source: customer_profile_push"))
    (fresh_repo / "push.yaml").write_text(PUSH_DEFS)
    return fresh_repo


@pytest.fixture
def store(push_repo):
    with granary.FeatureStore(push_repo) as s:
        s.apply()
        yield s


def profiles(customers, at, tenure=(5, 6), method=("card", "paypal"), business=(False, True)):
    n = len(customers)
    return pd.DataFrame({"customer_id": customers, "event_timestamp": [at] * n,
                         "tenure_days": list(tenure[:n]), "payment_method": list(method[:n]),
                         "is_business": list(business[:n])})


def online(store, customers):
    return store.get_online_features(FEATURES, entities={"customer_id": customers})


def test_push_online_from_pandas_then_read(store, push_repo):
    at = dt.datetime.now(UTC).replace(microsecond=0) - dt.timedelta(minutes=1)
    frame = profiles(NEW, at.replace(tzinfo=None))  # naive datetime64[ns]: UTC
    result = store.push("customer_profile_push", frame)
    assert isinstance(result, granary.PushResult)
    assert (result.rows, result.views, result.written, result.skipped_older) == (
        2, ["customer_profile"], 2, 0)
    assert result.to == "online" and result.files == [] and result.delta_version is None
    answer = online(store, NEW)
    assert answer.to_dict() == {"customer_id": NEW, "tenure_days": [5, 6],
                                "payment_method": ["card", "paypal"],
                                "is_business": [False, True]}
    assert answer.event_timestamps["tenure_days"] == [at, at]
    # Write-if-newer: an older row is skipped, a newer one replaces.
    older = store.push("customer_profile_push", profiles(NEW[:1], at - dt.timedelta(hours=1),
                                                         tenure=(1,)))
    assert (older.written, older.skipped_older) == (0, 1)
    newer = store.push("customer_profile_push", profiles(NEW[:1], at + dt.timedelta(seconds=30),
                                                         tenure=(9,)), to=granary.PushMode.ONLINE)
    assert (newer.written, newer.skipped_older) == (1, 0)
    assert online(store, NEW).to_dict()["tenure_days"] == [9, 6]
    # Nothing was appended offline.
    assert [p.name for p in (push_repo / "data" / "customer_profiles").iterdir()] == [
        "part-0.parquet"]


def test_push_from_arrow_with_aware_times(store):
    paris = dt.timezone(dt.timedelta(hours=2))
    at = dt.datetime.now(UTC).replace(microsecond=0) - dt.timedelta(minutes=2)
    table = pa.table({
        "customer_id": pa.array(NEW, pa.int32()),  # converts to int64 without loss
        "event_timestamp": pa.array([at.astimezone(paris)] * 2, pa.timestamp("ms", tz="+02:00")),
        "tenure_days": pa.array([7, 8], pa.int64()),
        "payment_method": ["sepa_debit", "invoice"],
        "is_business": [True, False],
    })
    assert store.push("customer_profile_push", table).written == 2
    answer = online(store, NEW)
    assert answer.to_dict()["payment_method"] == ["sepa_debit", "invoice"]
    assert answer.event_timestamps["tenure_days"] == [at, at]
    # A RecordBatch; the same rows again are written again (only a newer stored row wins).
    batch = table.to_batches()[0]
    assert store.push("customer_profile_push", batch, to="online").written == 2
    assert online(store, NEW).to_dict() == answer.to_dict()


def test_push_offline_then_historical_features_see_it(store, push_repo):
    day = dt.datetime(2026, 3, 1, 12, tzinfo=UTC)
    result = store.push("customer_profile_push", profiles(NEW, day), to="offline")
    assert result.views == [] and result.written == 0 and result.rows == 2
    [path] = result.files
    folder = push_repo / "data" / "customer_profiles"
    assert path.startswith(str(folder) + "/") and path.endswith(".parquet")
    assert pq.read_table(path).column("customer_id").to_pylist() == NEW
    # Not online: materialization (or an online push) brings it there.
    assert online(store, NEW).statuses["tenure_days"] == ["NOT_FOUND"] * 2
    entities = pd.DataFrame({
        "customer_id": NEW + NEW,
        "event_timestamp": [day + dt.timedelta(days=1)] * 2 + [day - dt.timedelta(days=1)] * 2})
    training = store.get_historical_features(entities, FEATURES).to_df()
    assert training["tenure_days"].tolist()[:2] == [5, 6]
    assert training["payment_method"].tolist()[:2] == ["card", "paypal"]
    assert training["tenure_days"].isna().tolist()[2:] == [True, True]
    # ... and materialization brings the pushed rows online.
    store.materialize(day - dt.timedelta(days=1), day + dt.timedelta(days=1), ["customer_profile"])
    assert online(store, NEW).to_dict()["tenure_days"] == [5, 6]


def test_push_online_and_offline(store, push_repo):
    at = dt.datetime.now(UTC).replace(microsecond=0) - dt.timedelta(minutes=3)
    result = store.push("customer_profile_push", profiles(NEW, at), to="online_and_offline")
    assert (result.written, len(result.files)) == (2, 1)
    assert online(store, NEW).to_dict()["tenure_days"] == [5, 6]
    training = store.get_historical_features(
        pd.DataFrame({"customer_id": NEW, "event_timestamp": [at] * 2}), FEATURES).to_df()
    assert training["is_business"].tolist() == [False, True]


@pytest.mark.parametrize("name, frame, to, error, message", [
    ("customer_profile_psh", None, "online", granary.InvalidArgument,
     "did you mean 'customer_profile_push'?"),
    ("customer_profile_source", None, "online", granary.InvalidArgument,
     "not a push source"),
    ("customer_profile_push", None, "disk", granary.InvalidArgument,
     "'disk' is not a push target"),
    ("customer_profile_push", "drop tenure_days", "online", granary.InvalidArgument,
     "tenure_days"),
    ("customer_profile_push", "text in tenure_days", "online", granary.InvalidArgument,
     "tenure_days"),
    ("customer_profile_push", "null key", "online", granary.InvalidArgument,
     "df.customer_id[1]: must not be null"),
    ("customer_profile_push", "null key", "offline", granary.InvalidArgument,
     "df.customer_id[1]: must not be null"),
    ("customer_profile_push", "null key", "online_and_offline", granary.InvalidArgument,
     "df.customer_id[1]: must not be null"),
])
def test_push_errors_name_the_problem_and_write_nothing(store, push_repo, name, frame, to,
                                                        error, message):
    at = dt.datetime.now(UTC).replace(microsecond=0) - dt.timedelta(minutes=1)
    rows = profiles(NEW, at)
    if frame == "drop tenure_days":
        rows = rows.drop(columns=["tenure_days"])
    elif frame == "text in tenure_days":
        rows["tenure_days"] = ["5", "abc"]
    elif frame == "null key":
        rows["customer_id"] = pd.array([NEW[0], None], dtype="Int64")
    with pytest.raises(error) as raised:
        store.push(name, rows, to=to)
    assert message in str(raised.value), str(raised.value)
    assert online(store, NEW).statuses["tenure_days"] == ["NOT_FOUND"] * 2
    assert [p.name for p in (push_repo / "data" / "customer_profiles").iterdir()] == [
        "part-0.parquet"]


def test_push_argument_errors(store):
    with pytest.raises(granary.InvalidArgument, match="to must be a PushMode"):
        store.push("customer_profile_push", profiles(NEW, dt.datetime(2026, 1, 1)), to=1)
    with pytest.raises(granary.InvalidArgument, match="push_source_name must be a str"):
        store.push(None, profiles(NEW, dt.datetime(2026, 1, 1)))
    with pytest.raises(granary.InvalidArgument, match="df must be a pandas DataFrame"):
        store.push("customer_profile_push", [{"customer_id": 1}])


def test_a_row_from_the_future_is_refused_naming_it_and_the_tolerance_is_a_parameter(store):
    now = dt.datetime.now(UTC).replace(microsecond=0)
    rows = profiles(NEW, now - dt.timedelta(minutes=1))
    rows.loc[1, "event_timestamp"] = dt.datetime(2036, 1, 1, tzinfo=UTC)
    for to in ("online", "offline", "online_and_offline"):
        with pytest.raises(granary.InvalidArgument,
                           match=r"df\.event_timestamp\[1\]: 2036-01-01T00:00:00Z is in the "
                                 r"future .* at most 5m ahead"):
            store.push("customer_profile_push", rows, to=to)
    assert online(store, NEW).statuses["tenure_days"] == ["NOT_FOUND"] * 2
    ahead = profiles(NEW, now + dt.timedelta(hours=1))
    with pytest.raises(granary.InvalidArgument, match="is in the future"):
        store.push("customer_profile_push", ahead)
    result = store.push("customer_profile_push", ahead, max_clock_skew=dt.timedelta(hours=2))
    assert result.written == 2
    with pytest.raises(granary.InvalidArgument, match="max_clock_skew must be a datetime.timedelta"):
        store.push("customer_profile_push", ahead, max_clock_skew=-dt.timedelta(seconds=1))
