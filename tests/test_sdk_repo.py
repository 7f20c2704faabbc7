"""The Python SDK: the FeatureStore over a repository, plan/apply, the registry's objects, errors."""
import datetime as dt
import re
import warnings

import pytest

from sdk_fixtures import (GRANARY_BIN, fresh_repo, offline_store, parking_data,  # noqa: F401
                          parking_repo, run)

import granary


def test_errors_map_status_codes_onto_python_exception_classes():
    assert issubclass(granary.InvalidArgument, granary.GranaryError)
    assert issubclass(granary.InvalidArgument, ValueError)
    assert issubclass(granary.NotFound, LookupError)
    assert issubclass(granary.FailedPrecondition, RuntimeError)
    assert issubclass(granary.StorageIOError, OSError)
    assert issubclass(granary.Unavailable, ConnectionError)
    assert granary.InvalidArgument.code == "invalid argument"
    assert granary.InvalidArgument.__module__ == "granary"


def test_a_folder_without_granary_yaml_is_an_error_naming_the_file(tmp_path):
    with pytest.raises(granary.GranaryError, match="granary.yaml"):
        granary.FeatureStore(tmp_path)


def test_an_unapplied_repository_says_to_apply_first(fresh_repo):
    store = granary.FeatureStore(fresh_repo)
    with pytest.raises(granary.FailedPrecondition, match=r"FeatureStore.apply\(\)"):
        store.list_feature_views()
    with pytest.raises(granary.FailedPrecondition, match="holds no definitions yet"):
        store.get_online_features(features=["customer_profile:tenure_days"],
                                  entity_rows=[{"customer_id": 1}])


def test_plan_writes_nothing_then_apply_stores_one_version(fresh_repo):
    store = granary.FeatureStore(fresh_repo)
    plan = store.plan()
    assert plan.previous_version is None and plan.applied_version is None
    assert not plan.up_to_date
    assert {(c.action, c.kind, c.name) for c in plan.changes} >= {
        ("add", "entity", "customer"), ("add", "feature view", "bay_demand"),
        ("add", "feature service", "customer_risk_v1")}
    assert len(plan.changes) == 2 + 6 + 6 + 2
    assert "+ feature view bay_demand" in str(plan)
    assert not (fresh_repo / "data" / "registry.db").exists()

    applied = store.apply()
    assert applied.applied_version == 1 and applied.changes == plan.changes
    again = store.apply()
    assert again.up_to_date and again.applied_version is None and again.previous_version == 1

    text = (fresh_repo / "bay_demand.yaml").read_text()
    (fresh_repo / "bay_demand.yaml").write_text(text.replace("ttl: 1d", "ttl: 2d"))
    plan = store.plan()
    assert [(c.action, c.name, c.changed_keys) for c in plan.changes] == [
        ("update", "bay_demand", ["ttl"])]
    assert store.get_feature_view("bay_demand").ttl == dt.timedelta(days=1)
    assert store.apply().applied_version == 2
    assert store.get_feature_view("bay_demand").ttl == dt.timedelta(days=2)


def test_invalid_definitions_raise_every_error_with_file_and_line(fresh_repo):
    (fresh_repo / "broken.yaml").write_text(
        "feature_views:\n"
        "  - {name: a, entities: [nobody], source: bay_attributes, schema: [{name: x, type: int64}]}\n"
        "  - {name: b, entities: [customer], source: nowhere, schema: [{name: y, type: int64}]}\n")
    with pytest.raises(granary.InvalidArgument) as error:
        granary.FeatureStore(fresh_repo).apply()
    assert "broken.yaml:2" in str(error.value) and "broken.yaml:3" in str(error.value)
    assert "nobody" in str(error.value) and "nowhere" in str(error.value)
    assert isinstance(error.value, ValueError)
    assert not (fresh_repo / "data" / "registry.db").exists()


def test_warnings_of_apply_are_python_warnings(fresh_repo):
    (fresh_repo / "data" / "bays.parquet").unlink()  # the source's data does not exist yet
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plan = granary.FeatureStore(fresh_repo).apply()
    assert plan.applied_version == 1
    assert any(issubclass(w.category, granary.GranaryWarning) and "bay_attributes" in str(w.message)
               for w in caught), [str(w.message) for w in caught]
    assert any("bay_attributes" in w for w in plan.warnings)


def test_apply_takes_no_python_objects(fresh_repo):
    with pytest.raises(granary.InvalidArgument, match=r"\*\.yaml files"):
        granary.FeatureStore(fresh_repo).apply([object()])


def test_lists_and_gets_the_registrys_objects(offline_store):
    store = offline_store
    assert store.project == "parking"
    entities = {e.name: e for e in store.list_entities()}
    assert set(entities) == {"customer", "parking_bay"}
    assert entities["customer"].join_key == "customer_id"
    assert entities["customer"].value_type == "int64"
    # Read back from the registry, an object's location is its line in the stored version (the
    # registry keeps the canonical definitions, not the YAML files' lines).
    assert re.fullmatch(r".*/data/registry\.db \(version 1\):\d+",
                        entities["customer"].location), entities["customer"].location

    views = {v.name: v for v in store.list_feature_views()}
    assert set(views) == {"bay_demand", "bay_static", "customer_payments_stats",
                          "customer_profile", "customer_payment_windows",
                          "bay_occupancy_windows"}
    windows = views["customer_payment_windows"]
    assert windows.online and windows.granularity == dt.timedelta(hours=1)
    assert ("payment_failures_30d", "int64") in [(f.name, f.dtype) for f in windows.features]
    demand = views["bay_demand"]
    assert demand.ttl == dt.timedelta(days=1) and demand.online
    assert demand.entities == ["parking_bay"]
    assert [f.name for f in demand.entity_columns] == ["parking_bay_id"]
    assert demand.features[0] == granary.Field(
        "occupancy_1h", "float64",
        "Mean share of spaces taken over the last hour (4 ticks)")
    assert [f.name for f in demand.schema][:2] == ["parking_bay_id", "occupancy_1h"]
    assert demand.source.format == "delta" and demand.batch_source.name == "bay_occupancy"
    assert demand.tags == {"team": "pricing", "model": "demand_prediction"}
    assert views["bay_static"].ttl == dt.timedelta(0)
    assert {f.dtype for f in views["bay_static"].features} == {"string", "float64", "int32"}

    sources = {s.name for s in store.list_data_sources()}
    assert sources == {"bay_occupancy", "bay_attributes", "customer_payments",
                       "customer_profile_source", "payment_events", "payments_push"}
    assert store.get_data_source("customer_payments").created_timestamp_column == "created"

    services = {s.name: s for s in store.list_feature_services()}
    assert set(services) == {"customer_risk_v1", "demand_prediction_v1"}
    risk = store.get_feature_service("customer_risk_v1")
    assert [p.name for p in risk.feature_view_projections] == [
        "customer_payment_windows", "customer_payments_stats", "customer_profile"]
    # The whole views: the payment windows (aggregations), then what the raw payments cannot give.
    assert len(risk.feature_view_projections[0].features) == 10
    assert len(risk.feature_view_projections[1].features) == 5
    assert risk.feature_refs[:2] == ["customer_payment_windows:payments_30d",
                                     "customer_payment_windows:payment_failures_30d"]
    assert risk.feature_refs[-2:] == ["customer_profile:tenure_days",
                                      "customer_profile:payment_method"]

    assert [v.name for v in store.list_feature_views(tags={"team": "risk"})] == [
        "customer_payment_windows", "customer_payments_stats", "customer_profile"]


def test_unknown_names_raise_not_found_with_a_suggestion(offline_store):
    with pytest.raises(granary.NotFound, match="did you mean 'customer_risk_v1'"):
        offline_store.get_feature_service("customer_risk_v2")
    with pytest.raises(LookupError, match="unknown feature view 'bay_demnd'"):
        offline_store.get_feature_view("bay_demnd")


def test_an_apply_elsewhere_is_seen_by_the_next_call(fresh_repo):
    store = granary.FeatureStore(fresh_repo)
    store.apply()
    assert len(store.list_feature_services()) == 2
    (fresh_repo / "services.yaml").write_text(
        (fresh_repo / "services.yaml").read_text().split("  - name: demand_prediction_v1")[0])
    run(GRANARY_BIN, "-C", fresh_repo, "apply")
    assert len(store.list_feature_services(allow_cache=True)) == 2  # the cached version
    assert [s.name for s in store.list_feature_services()] == ["customer_risk_v1"]
