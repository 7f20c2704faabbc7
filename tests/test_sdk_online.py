"""The Python SDK's get_online_features over the embedded store (rows written by
granary materialize): values, statuses and event times checked against the newest row per
entity of the source files; the same validation and messages as the CLI; reads beside another process."""
import json
import subprocess

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from sdk_fixtures import (GRANARY_BIN, ONLINE_FEATURES as FEATURES,  # noqa: F401
                          customers_to_ask, latest_rows, online_repo, parking_data,
                          read_as_expected, run)

import granary


@pytest.fixture(scope="module")
def online_store(online_repo):
    store = granary.FeatureStore(online_repo)
    yield store
    store.close()


def test_values_statuses_and_times_match_the_newest_rows(online_store, online_repo):
    customers = customers_to_ask(online_repo)
    response, want = read_as_expected(
        lambda: online_store.get_online_features(
            features=FEATURES, entity_rows=[{"customer_id": c} for c in customers]),
        online_repo, customers)
    assert isinstance(response, granary.OnlineResponse)
    assert response.feature_names == ["customer_id", "sessions_90d", "avg_session_minutes_90d",
                                      "tenure_days", "payment_method"]
    values = response.to_dict()
    assert list(values) == response.feature_names
    assert values["customer_id"] == customers
    statuses, times = response.statuses, response.event_timestamps
    seen = set()
    for feature, (v, s, t) in want.items():
        assert values[feature] == v, feature
        assert statuses[feature] == s, feature
        assert times[feature] == t, feature
        seen.update(s)
    assert seen == {"PRESENT", "NULL_VALUE", "NOT_FOUND", "OUTSIDE_MAX_AGE"}


def test_to_dict_and_to_df_with_event_timestamps_and_statuses(online_store, online_repo):
    customers = customers_to_ask(online_repo)[:3] + [10_000_001]
    response = online_store.get_online_features(
        features=FEATURES[:1], entity_rows=[{"customer_id": c} for c in customers])
    full = response.to_dict(include_event_timestamps=True, include_statuses=True)
    assert list(full) == ["customer_id", "sessions_90d", "sessions_90d__ts",
                          "sessions_90d__status"]
    assert full["sessions_90d__status"][-1] == "NOT_FOUND"
    assert full["sessions_90d__ts"][-1] is None
    assert full["sessions_90d__ts"][0].tzinfo is not None
    frame = response.to_df(include_event_timestamps=True, include_statuses=True)
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == list(full)
    assert frame["sessions_90d__status"].tolist() == full["sessions_90d__status"]
    assert str(frame["sessions_90d__ts"].dt.tz) == "UTC"
    assert list(response.to_df().columns) == ["customer_id", "sessions_90d"]
    table = response.to_arrow()
    assert table.schema.field("sessions_90d").type == pa.int64()


def test_entities_as_columns_numpy_and_arrow_give_the_same_answer(online_store, online_repo):
    customers = customers_to_ask(online_repo)[:10]
    by_rows = online_store.get_online_features(
        FEATURES, [{"customer_id": c} for c in customers]).to_dict()
    for given in (customers, np.array(customers), pa.array(customers), pd.Series(customers),
                  [np.int64(c) for c in customers]):
        by_columns = online_store.get_online_features(
            features=FEATURES, entities={"customer_id": given}).to_dict()
        assert by_columns == by_rows


def test_a_feature_service_and_full_feature_names(online_store, online_repo):
    customers = customers_to_ask(online_repo)[:4]
    service = online_store.get_feature_service("customer_risk_v1")
    response = online_store.get_online_features(
        feature_service="customer_risk_v1", entities={"customer_id": customers},
        full_feature_names=True)
    assert response.feature_names == ["customer_id"] + [
        ref.replace(":", "__") for ref in service.feature_refs]
    same = online_store.get_online_features(service, entities={"customer_id": customers},
                                            full_feature_names=True)
    assert same.to_dict() == response.to_dict()


def test_string_and_int32_features_of_bays(online_store, online_repo):
    bays = latest_rows(online_repo / "data" / "bays.parquet", "parking_bay_id")
    ids = sorted(bays)[:5]
    out = online_store.get_online_features(
        features=["bay_static:zone", "bay_static:capacity"],
        entity_rows=[{"parking_bay_id": b} for b in ids]).to_dict()
    assert out["zone"] == [bays[b]["zone"] for b in ids]
    assert out["capacity"] == [bays[b]["capacity"] for b in ids]


def cli_get_online_features(repo, *args):
    return subprocess.run([str(GRANARY_BIN), "-C", str(repo), "get-online-features", *args],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("kwargs,cli_args", [
    ({"features": ["customer_profile:tenure_dayz"], "entities": {"customer_id": [1]}},
     ["--features", "customer_profile:tenure_dayz", "--entity", "customer_id=1"]),
    ({"features": ["customer_profle:tenure_days"], "entities": {"customer_id": [1]}},
     ["--features", "customer_profle:tenure_days", "--entity", "customer_id=1"]),
    ({"features": ["customer_profile:tenure_days"], "entities": {"customer": [1]}},
     ["--features", "customer_profile:tenure_days", "--entity", "customer=1"]),
    ({"features": ["customer_profile:tenure_days"], "entities": {"parking_bay_id": [1]}},
     ["--features", "customer_profile:tenure_days", "--entity", "parking_bay_id=1"]),
    ({"feature_service": "customer_risk", "entities": {"customer_id": [1]}},
     ["--feature-service", "customer_risk", "--entity", "customer_id=1"]),
])
def test_bad_requests_raise_the_message_the_cli_prints(online_store, online_repo, kwargs,
                                                      cli_args):
    try:
        with pytest.raises(granary.InvalidArgument) as error:
            online_store.get_online_features(**kwargs)
    finally:
        online_store.close()  # the CLI opens the store too; the fixture's reopens on next use
    cli = cli_get_online_features(online_repo, *cli_args)
    assert cli.returncode == 1
    assert cli.stderr.strip() == f"error: {error.value}"


def test_wrongly_typed_and_uneven_entities_are_invalid_arguments(online_store):
    with pytest.raises(granary.InvalidArgument,
                       match=r"entities.customer_id\[1\]: the string \"x\" is not an int64"):
        online_store.get_online_features(FEATURES, entities={"customer_id": [1, "x"]})
    with pytest.raises(granary.InvalidArgument, match="out of the int64 range"):
        online_store.get_online_features(FEATURES, entities={"customer_id": [2 ** 70]})
    with pytest.raises(granary.InvalidArgument, match="cannot be a join key"):
        online_store.get_online_features(FEATURES, entities={"customer_id": [object()]})
    with pytest.raises(granary.InvalidArgument, match="must be a list of values"):
        online_store.get_online_features(FEATURES, entities={"customer_id": 1})
    with pytest.raises(granary.InvalidArgument, match=r"entity_rows\[1\] has the keys"):
        online_store.get_online_features(FEATURES, [{"customer_id": 1}, {"customer": 2}])
    with pytest.raises(granary.InvalidArgument, match="entity_rows is empty"):
        online_store.get_online_features(FEATURES, [])
    with pytest.raises(granary.InvalidArgument, match="one of the two"):
        online_store.get_online_features(FEATURES)


def test_the_cli_reads_the_embedded_store_beside_an_open_feature_store(online_store, online_repo):
    online_store.close()
    store = granary.FeatureStore(online_repo)
    args = ["--features", "customer_profile:tenure_days", "--entity", "customer_id=1,2"]
    try:
        python_answer = store.get_online_features(
            features=["customer_profile:tenure_days"], entities={"customer_id": [1, 2]})
        # Lookups open the store read-only: another process reads (and could write) beside it.
        beside = cli_get_online_features(online_repo, *args)
        assert beside.returncode == 0, beside.stderr
    finally:
        store.close()
    cli_answer = json.loads(beside.stdout)
    assert cli_answer["results"][1]["values"] == python_answer.to_dict()["tenure_days"]
    assert cli_answer["results"][1]["statuses"] == python_answer.statuses["tenure_days"]
    # The store opens again on the next call.
    again = store.get_online_features(features=["customer_profile:tenure_days"],
                                      entities={"customer_id": [1, 2]})
    store.close()
    assert again.to_dict() == python_answer.to_dict()
