"""The Python SDK's materialize, materialize_incremental and status over the tiny parking data:
the online store then answers as it does when it holds every source row; watermarks and run
records as `granary status --json` shows them; naive, aware and text times; errors."""
import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from sdk_fixtures import (GRANARY_BIN, ONLINE_FEATURES, customers_to_ask,  # noqa: F401
                          fresh_repo, parking_data, read_as_expected, run,
                          shorten_payments_ttl)

import granary

CUSTOMER_VIEWS = ["customer_payments_stats", "customer_profile"]
UTC = dt.timezone.utc


@pytest.fixture
def store(fresh_repo):
    shorten_payments_ttl(fresh_repo)  # so that some values are OUTSIDE_MAX_AGE
    with granary.FeatureStore(fresh_repo) as s:
        s.apply()
        yield s


def now_utc():
    return dt.datetime.now(UTC).replace(microsecond=0)


def test_materialize_then_online_features_hold_the_newest_rows(store, fresh_repo):
    end = now_utc()
    report = store.materialize(dt.datetime(2000, 1, 1), end, feature_views=CUSTOMER_VIEWS)
    assert isinstance(report, granary.MaterializeReport) and report.ok
    assert [v.view for v in report.views] == CUSTOMER_VIEWS
    rows = {"customer_payments_stats": 0, "customer_profile": 0}
    for view, file in (("customer_payments_stats", "customer_payments.parquet"),
                       ("customer_profile", "customer_profiles.parquet")):
        v = report[view]
        rows[view] = pd.read_parquet(fresh_repo / "data" / file).shape[0]
        assert v.status == "succeeded" and v.error == ""
        assert v.rows_scanned == rows[view] and v.rows_in_range == rows[view]
        assert v.entities_written == v.entities > 0 and v.entities_skipped == 0
        assert v.start == dt.datetime(2000, 1, 1, tzinfo=UTC) and v.end == end
        assert v.watermark_after == end and v.run_id > 0
    customers = customers_to_ask(fresh_repo)
    response, want = read_as_expected(
        lambda: store.get_online_features(
            features=ONLINE_FEATURES, entity_rows=[{"customer_id": c} for c in customers]),
        fresh_repo, customers)
    values, statuses, times = response.to_dict(), response.statuses, response.event_timestamps
    seen = set()
    for feature, (want_values, want_statuses, want_times) in want.items():
        assert values[feature] == want_values, feature
        assert statuses[feature] == want_statuses, feature
        assert times[feature] == want_times, feature
        seen.update(want_statuses)
    assert seen == {"PRESENT", "NULL_VALUE", "NOT_FOUND", "OUTSIDE_MAX_AGE"}
    # An earlier interval afterwards: write-if-newer keeps every newer online row.
    before = response.to_dict()
    first = pd.read_parquet(fresh_repo / "data" / "customer_payments.parquet")[
        "event_timestamp"].min()
    early = store.materialize(first, first + pd.Timedelta(days=2), CUSTOMER_VIEWS)
    for v in early.views:
        assert v.entities_skipped > 0 and v.entities_written + v.entities_skipped == v.entities
        assert v.watermark_after == end  # an earlier END never moves it back
    after = store.get_online_features(
        features=ONLINE_FEATURES, entity_rows=[{"customer_id": c} for c in customers])
    assert after.to_dict() == before and after.event_timestamps == times


def test_an_interval_reads_only_its_rows(store, fresh_repo):
    profiles = pd.read_parquet(fresh_repo / "data" / "customer_profiles.parquet")
    start = profiles["event_timestamp"].min()
    end = start + pd.Timedelta(days=1)
    in_range = profiles[(profiles["event_timestamp"] >= start)
                        & (profiles["event_timestamp"] <= end)]
    report = store.materialize(start, end, ["customer_profile"])
    v = report["customer_profile"]
    assert v.rows_in_range == len(in_range) > 0
    assert v.entities_written == in_range["customer_id"].nunique()
    later = profiles[profiles["event_timestamp"] > end]["customer_id"]
    outside = sorted(set(later) - set(in_range["customer_id"]))[:3]
    inside = sorted(set(in_range["customer_id"]))[:3]
    answer = store.get_online_features(["customer_profile:tenure_days"],
                                       entities={"customer_id": inside + outside})
    assert answer.statuses["tenure_days"][:3] == ["PRESENT"] * 3
    assert answer.statuses["tenure_days"][3:] == ["NOT_FOUND"] * len(outside)


def test_incremental_twice_writes_nothing_new_the_second_time(store):
    end = now_utc() - dt.timedelta(minutes=1)
    first = store.materialize_incremental(end, views=CUSTOMER_VIEWS)
    # Without a watermark: [end - ttl, end], or every row up to end when the ttl is 0.
    assert first["customer_payments_stats"].start == end - dt.timedelta(days=30)
    assert first["customer_profile"].start is None
    for v in first.views:
        assert v.status == "succeeded", v
        assert v.watermark_before is None and v.watermark_after == end
        assert v.entities_written > 0
    second = store.materialize_incremental(end, views=CUSTOMER_VIEWS)
    for v in second.views:
        assert v.status == "up_to_date", v
        assert v.run_id == 0 and v.rows_scanned == 0 and v.entities_written == 0
        assert v.watermark_before == v.watermark_after == end
    # Later: (watermark, later] holds no rows (the data ends at midnight); the watermark moves.
    later = now_utc()
    third = store.materialize_incremental(later, views=CUSTOMER_VIEWS)
    for v in third.views:
        assert v.status == "succeeded" and v.start > end - dt.timedelta(seconds=1), v
        assert v.rows_in_range == 0 and v.entities_written == 0
        assert v.watermark_after == later


def test_times_naive_aware_text_pandas_numpy_and_dates(store):
    end = now_utc() - dt.timedelta(hours=3)
    paris = dt.timezone(dt.timedelta(hours=2))
    forms = [end.replace(tzinfo=None),  # naive: UTC
             end.astimezone(paris),  # aware: converted
             end.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
             end.astimezone(paris).isoformat(),
             end.replace(tzinfo=None).isoformat(),  # text without an offset: UTC
             pd.Timestamp(end),
             pd.Timestamp(end.replace(tzinfo=None)),
             np.datetime64(end.replace(tzinfo=None), "us")]
    for given in forms:
        report = store.materialize(dt.date(2020, 1, 1), given, ["customer_profile"])
        assert report["customer_profile"].end == end, given
        assert report["customer_profile"].start == dt.datetime(2020, 1, 1, tzinfo=UTC), given
    report = store.materialize("2020-01-01", "now", ["customer_profile"])
    assert abs(report["customer_profile"].end - dt.datetime.now(UTC)) < dt.timedelta(minutes=5)


def test_status_after_runs_matches_the_cli(store, fresh_repo):
    before = store.status()
    assert isinstance(before, granary.StoreStatus)
    # Every online view: the window views (tiles) too.
    names = ["customer_payments_stats", "customer_profile", "bay_demand", "bay_static",
             "customer_payment_windows", "bay_occupancy_windows"]
    assert sorted(v.view for v in before.views) == sorted(names)
    for v in before.views:
        assert v.watermark is None and v.staleness is None and v.last_run is None
        assert v.recent_runs == 0 and v.success_rate is None
    assert sorted(before.stale(dt.timedelta(days=1))) == sorted(names)

    end = now_utc() - dt.timedelta(hours=1)
    store.materialize_incremental(end, ["customer_profile"])
    with pytest.raises(granary.InvalidArgument):
        store.materialize(end, end - dt.timedelta(days=1), ["customer_profile"])  # not a run
    status = store.status()
    profile = status["customer_profile"]
    assert profile.watermark == end
    assert dt.timedelta(hours=1) <= profile.staleness < dt.timedelta(hours=2)
    assert profile.staleness == status.now - end
    run_ = profile.last_run
    assert run_.status == "succeeded" and run_.trigger == "python materialize_incremental"
    assert run_.interval_start is None and run_.interval_end == end
    assert run_.entities_written > 0 and run_.error == ""
    assert profile.last_success == run_ and not profile.running
    assert profile.recent_runs == 1 and profile.success_rate == 1.0
    assert sorted(status.stale(dt.timedelta(hours=2))) == sorted(
        ["customer_payments_stats", "bay_demand", "bay_static", "customer_payment_windows",
         "bay_occupancy_windows"])
    assert status.stale(dt.timedelta(minutes=30)) == [v.view for v in status.views]
    frame = status.to_df()
    assert list(frame["view"]) == [v.view for v in status.views]

    cli = json.loads(run(GRANARY_BIN, "-C", fresh_repo, "status", "--json").stdout)
    assert [v["view"] for v in cli["views"]] == [v.view for v in status.views]
    for mine, theirs in zip(status.views, cli["views"]):
        assert (mine.watermark and mine.watermark.strftime("%Y-%m-%dT%H:%M:%SZ")) == \
            (theirs["watermark"] or None)
        assert mine.recent_runs == theirs["recent_runs"]
        assert mine.recent_succeeded == theirs["recent_succeeded"]
        assert (mine.last_run.id if mine.last_run else None) == \
            (theirs["last_run"]["id"] if theirs["last_run"] else None)
    with pytest.raises(granary.InvalidArgument, match="recent_runs must be a positive int"):
        store.status(recent_runs=0)


def test_a_failed_view_raises_with_the_report_and_is_recorded(store, fresh_repo):
    # The profile source disappears after apply: its run fails; the payments view still runs.
    (fresh_repo / "data" / "customer_profiles.parquet").unlink()
    end = now_utc() - dt.timedelta(minutes=5)
    with pytest.raises(granary.GranaryError) as failure:
        store.materialize_incremental(end, ["customer_payments_stats", "customer_profile"])
    report = failure.value.report
    assert not report.ok
    assert report["customer_payments_stats"].status == "succeeded"
    profile = report["customer_profile"]
    assert profile.status == "failed" and "customer_profiles.parquet" in profile.error
    assert str(failure.value) == profile.error
    assert profile.watermark_after is None
    status = store.status()
    assert status["customer_profile"].last_run.status == "failed"
    assert status["customer_profile"].last_run.error == profile.error
    assert status["customer_profile"].watermark is None
    assert status["customer_profile"].success_rate == 0.0
    assert status["customer_payments_stats"].watermark == end


@pytest.mark.parametrize("call, error, message", [
    (lambda s: s.materialize("2020-01-01", "now", ["customer_profil"]), granary.InvalidArgument,
     "no feature view 'customer_profil', did you mean 'customer_profile'?"),
    (lambda s: s.materialize("2026-02-01", "2026-01-01"), granary.InvalidArgument,
     "START 2026-02-01T00:00:00Z is after END 2026-01-01T00:00:00Z"),
    (lambda s: s.materialize_incremental(dt.datetime.now(UTC) + dt.timedelta(days=1)),
     granary.InvalidArgument, "is in the future"),
    (lambda s: s.materialize("yesterday", "now"), granary.InvalidArgument,
     "start_date 'yesterday': "),
    (lambda s: s.materialize_incremental(1700000000), granary.InvalidArgument,
     "end_date must be a datetime, a date or ISO 8601 text"),
    (lambda s: s.materialize_incremental(np.datetime64("NaT")), granary.InvalidArgument,
     "end_date is missing (NaT)"),
    (lambda s: s.materialize_incremental(pd.NaT), granary.InvalidArgument,
     "end_date is missing (NaT)"),
    (lambda s: s.materialize(None, "now"), granary.InvalidArgument,
     "start_date is missing (None)"),
    (lambda s: s.materialize_incremental("now", "customer_profile"), granary.InvalidArgument,
     "feature_views must be a list of view names"),
    (lambda s: s.materialize_incremental("now", []), granary.InvalidArgument,
     "feature_views is empty"),
    (lambda s: s.materialize_incremental("now", ["a"], views=["b"]), granary.InvalidArgument,
     "give either feature_views or views, not both"),
    (lambda s: s.materialize_incremental("now", memory_budget=0), granary.InvalidArgument,
     "memory_budget must be a positive int"),
])
def test_errors(store, call, error, message):
    with pytest.raises(error) as raised:
        call(store)
    assert message in str(raised.value)
    # Nothing was recorded.
    assert all(v.last_run is None for v in store.status().views)


def test_materialize_before_apply_says_to_apply(fresh_repo):
    with granary.FeatureStore(fresh_repo) as store:
        with pytest.raises(granary.FailedPrecondition, match=r"FeatureStore.apply\(\)"):
            store.materialize_incremental("now")
        with pytest.raises(granary.FailedPrecondition, match=r"apply"):
            store.status()
