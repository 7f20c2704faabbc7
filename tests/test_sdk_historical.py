"""The Python SDK's get_historical_features on the tiny parking data: pandas and Arrow inputs,
naive and time-zone-aware times, zero-copy Arrow, checked row by row against a direct reading of
the rule (docs/POINT_IN_TIME.md), and errors."""
import bisect
import datetime as dt
import fcntl

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sdk_fixtures import fresh_repo, offline_store, parking_data, parking_repo  # noqa: F401

import granary

# customer_risk_v1: the payment windows Granary computes from every payment attempt, then what
# the nightly job aggregated upstream that the raw payments cannot give, then the profile.
WINDOWS = ["payments_30d", "payment_failures_30d", "failure_rate_30d", "payments_90d",
           "payment_failures_90d", "failure_rate_90d", "spend_30d", "max_amount_90d",
           "last_payment_method", "payment_methods_90d"]
PAYMENTS = ["chargebacks_90d", "disputes_90d", "violations_90d", "sessions_90d",
            "avg_session_minutes_90d"]
SERVICE_COLUMNS = WINDOWS + PAYMENTS + ["tenure_days", "payment_method"]
HOUR_US, DAY_US = 3600 * 10**6, 86400 * 10**6


def labels(repo) -> pa.Table:
    return pq.read_table(repo / "data" / "customer_risk_labels.parquet")


class Oracle:
    """The point-in-time rule written out over one view's Parquet file: per key, rows sorted by
    (event time, created); the answer for (key, t) is the last row at or before t, if it is not
    older than t - ttl."""

    def __init__(self, path, key, ttl, created=None):
        self.ttl = ttl
        self.rows = {}
        for row in pq.read_table(path).to_pylist():
            self.rows.setdefault(row[key], []).append(row)
        for rows in self.rows.values():
            rows.sort(key=lambda r: (r["event_timestamp"], r[created] if created else 0))
        self.times = {k: [r["event_timestamp"] for r in rows] for k, rows in self.rows.items()}

    def at(self, key, t):
        times = self.times.get(key, [])
        i = bisect.bisect_right(times, t) - 1
        if i < 0 or (self.ttl and times[i] < t - self.ttl):
            return None
        return self.rows[key][i]


class WindowOracle:
    """customer_payment_windows written out over payments.parquet (docs/AGGREGATIONS.md): the
    events of the key with start <= e <= t, start = t - window rounded down to the hour."""

    def __init__(self, path):
        self.events = {}
        for row in pq.read_table(path, columns=["customer_id", "event_timestamp", "amount",
                                                "payment_method", "failed"]).to_pylist():
            self.events.setdefault(row["customer_id"], []).append(row)
        # Stable: ties on time keep the file's order (the last read is the last).
        for rows in self.events.values():
            rows.sort(key=lambda r: r["event_timestamp"])

    def at(self, key, t):
        def window(days):
            t_us = (t - EPOCH) // dt.timedelta(microseconds=1)
            start = EPOCH + dt.timedelta(microseconds=(t_us - days * DAY_US) // HOUR_US * HOUR_US)
            return [e for e in self.events.get(key, []) if start <= e["event_timestamp"] <= t]

        w30, w90 = window(30), window(90)
        mean = lambda rows: sum(r["failed"] for r in rows) / len(rows) if rows else None  # noqa
        return {
            "payments_30d": len(w30),
            "payment_failures_30d": sum(r["failed"] for r in w30),
            "failure_rate_30d": mean(w30),
            "payments_90d": len(w90),
            "payment_failures_90d": sum(r["failed"] for r in w90),
            "failure_rate_90d": mean(w90),
            "spend_30d": sum(r["amount"] for r in w30) if w30 else None,
            "max_amount_90d": max(r["amount"] for r in w90) if w90 else None,
            "last_payment_method": w90[-1]["payment_method"] if w90 else None,
            "payment_methods_90d": len({r["payment_method"] for r in w90}),
        }


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def check_against_oracle(repo, training: pa.Table, entities: pa.Table):
    payments = Oracle(repo / "data" / "customer_payments.parquet", "customer_id",
                      dt.timedelta(days=90), created="created")
    profiles = Oracle(repo / "data" / "customer_profiles.parquet", "customer_id", None)
    windows = WindowOracle(repo / "data" / "payments.parquet")
    got = training.to_pylist()
    assert len(got) == entities.num_rows
    matched = with_payments = 0
    for row, entity in zip(got, entities.to_pylist()):
        assert row["customer_id"] == entity["customer_id"]
        t = entity["event_timestamp"]
        for f, value in windows.at(entity["customer_id"], t).items():
            if isinstance(value, float):
                assert row[f] == pytest.approx(value, rel=1e-12), (entity, f)
            else:
                assert row[f] == value, (entity, f)
        with_payments += row["payments_90d"] > 0
        want = payments.at(entity["customer_id"], t)
        for f in PAYMENTS:
            assert row[f] == (want[f] if want else None), (entity, f)
        profile = profiles.at(entity["customer_id"], t)
        assert row["tenure_days"] == (profile["tenure_days"] if profile else None)
        assert row["payment_method"] == (profile["payment_method"] if profile else None)
        matched += want is not None
    assert matched > entities.num_rows // 2  # the data is not all misses
    assert with_payments > entities.num_rows // 2


def test_training_set_from_a_pandas_frame_matches_the_rule_row_by_row(offline_store, parking_repo):
    entities = labels(parking_repo)
    df = entities.to_pandas()
    job = offline_store.get_historical_features(df, feature_service="customer_risk_v1")
    assert isinstance(job, granary.RetrievalJob)
    assert job.features == SERVICE_COLUMNS
    training = job.to_arrow()
    assert training.column_names == entities.column_names + SERVICE_COLUMNS
    assert str(training.schema.field("event_timestamp").type) == "timestamp[us, tz=UTC]"
    check_against_oracle(parking_repo, training, entities)
    frame = job.to_df()
    assert isinstance(frame, pd.DataFrame) and len(frame) == entities.num_rows
    assert str(frame["event_timestamp"].dt.tz) == "UTC"


def test_arrow_input_and_a_feature_list_give_the_same_table(offline_store, parking_repo):
    entities = labels(parking_repo)
    by_service = offline_store.get_historical_features(
        entities.to_pandas(), feature_service="customer_risk_v1").to_arrow()
    refs = offline_store.get_feature_service("customer_risk_v1").feature_refs
    by_list = offline_store.get_historical_features(entities, features=refs).to_arrow()
    by_object = offline_store.get_historical_features(
        entities, offline_store.get_feature_service("customer_risk_v1")).to_arrow()
    batch = offline_store.get_historical_features(
        entities.combine_chunks().to_batches()[0], features=refs).to_arrow()
    # From pandas, the label columns lose their "not null" (the Parquet file has it); the data
    # is the same.
    by_service = by_service.cast(by_list.schema)
    assert by_list.equals(by_service) and by_object.equals(by_service) and batch.equals(by_service)


def test_arrow_crosses_without_a_copy_both_ways(offline_store, parking_repo):
    entities = labels(parking_repo).combine_chunks()
    training = offline_store.get_historical_features(
        entities, features=["customer_profile:tenure_days"]).to_arrow()
    # The entity columns come back as the very buffers that went in.
    for name in ("customer_id", "payment_problem_next_30d"):
        sent = entities.column(name).chunk(0).buffers()
        returned = training.column(name).chunk(0).buffers()
        assert [b.address for b in returned if b] == [b.address for b in sent if b], name


def test_naive_times_are_utc_and_aware_times_are_converted(offline_store, parking_repo):
    entities = labels(parking_repo).to_pandas()
    features = ["customer_payments_stats:sessions_90d", "customer_payment_windows:payments_30d",
                "customer_profile:tenure_days"]
    utc = offline_store.get_historical_features(entities, features=features).to_df()
    naive = entities.assign(event_timestamp=entities["event_timestamp"].dt.tz_localize(None))
    berlin = entities.assign(
        event_timestamp=entities["event_timestamp"].dt.tz_convert("Europe/Berlin"))
    for variant in (naive, berlin):
        out = offline_store.get_historical_features(variant, features=features).to_df()
        pd.testing.assert_frame_equal(out, utc)
    # Arrow input: naive in another unit (ns), and aware in New York.
    table = pa.Table.from_pandas(naive, preserve_index=False)
    table = table.set_column(1, "event_timestamp", table.column(1).cast(pa.timestamp("ns")))
    out = offline_store.get_historical_features(table, features=features).to_df()
    pd.testing.assert_frame_equal(out, utc)
    ny = pa.Table.from_pandas(
        entities.assign(event_timestamp=entities["event_timestamp"].dt.tz_convert(
            "America/New_York")), preserve_index=False)
    out = offline_store.get_historical_features(ny, features=features).to_df()
    pd.testing.assert_frame_equal(out, utc)


def test_full_feature_names_and_extra_columns(offline_store, parking_repo):
    entities = labels(parking_repo).slice(0, 50).append_column(
        "note", pa.array([f"row {i}" for i in range(50)]))
    job = offline_store.get_historical_features(
        entities, features=["customer_profile:tenure_days", "customer_payments_stats:sessions_90d"],
        full_feature_names=True)
    assert job.full_feature_names
    assert job.to_arrow().column_names == [
        "customer_id", "event_timestamp", "payment_problem_next_30d", "note",
        "customer_profile__tenure_days", "customer_payments_stats__sessions_90d"]
    assert job.to_arrow().column("note").to_pylist() == [f"row {i}" for i in range(50)]


def test_bay_demand_from_the_delta_table(offline_store, parking_repo):
    entities = pq.read_table(parking_repo / "data" / "bay_demand_labels")
    job = offline_store.get_historical_features(entities, feature_service="demand_prediction_v1")
    table = job.to_arrow()
    assert table.num_rows == entities.num_rows
    assert table.column("occupancy_1h").null_count < entities.num_rows // 10
    assert table.column("zone").null_count == 0  # bays.parquet: ttl 0, a row from the start


def test_duplicate_entity_rows_are_kept_in_order(offline_store, parking_repo):
    rows = labels(parking_repo).slice(0, 3)
    entities = pa.concat_tables([rows, rows])
    out = offline_store.get_historical_features(
        entities, features=["customer_profile:tenure_days"]).to_arrow()
    assert out.column("customer_id").to_pylist() == rows.column("customer_id").to_pylist() * 2
    values = out.column("tenure_days").to_pylist()
    assert values[:3] == values[3:]


@pytest.mark.parametrize("kwargs,message", [
    ({"features": ["customer_profile:tenure_dayz"]},
     "feature view 'customer_profile' has no feature 'tenure_dayz', did you mean 'tenure_days'"),
    ({"features": ["customer_profil:tenure_days"]}, "unknown feature view 'customer_profil'"),
    ({"features": ["tenure_days"]}, "view:feature"),
    ({"features": "customer_profile:tenure_days"}, "must be a list"),
    ({"feature_service": "customer_risk"}, "unknown feature service 'customer_risk'"),
    ({"features": ["customer_profile:tenure_days"], "feature_service": "customer_risk_v1"},
     "not both"),
    ({}, "give features"),
    ({"features": ["customer_profile:tenure_days"], "memory_budget": 0}, "memory_budget"),
])
def test_bad_requests_raise_invalid_argument(offline_store, parking_repo, kwargs, message):
    entities = labels(parking_repo).slice(0, 5)
    with pytest.raises(granary.InvalidArgument) as error:
        offline_store.get_historical_features(entities, **kwargs)
    assert message in str(error.value)
    assert isinstance(error.value, ValueError)


def test_bad_entity_rows_raise_invalid_argument(offline_store, parking_repo):
    features = ["customer_profile:tenure_days"]
    entities = labels(parking_repo).slice(0, 5)
    with pytest.raises(granary.InvalidArgument,
                       match="no column 'customer_id', a join key of feature view "
                             "'customer_profile'"):
        offline_store.get_historical_features(entities.drop_columns(["customer_id"]), features)
    with pytest.raises(granary.InvalidArgument, match="no 'event_timestamp' column"):
        offline_store.get_historical_features(entities.drop_columns(["event_timestamp"]), features)
    bad_time = entities.set_column(1, "event_timestamp", pa.array(["yesterday"] * 5))
    with pytest.raises(granary.InvalidArgument, match="yesterday"):
        offline_store.get_historical_features(bad_time, features)
    # A query is entity rows where the engine runs: a Spark offline store reads it, this one
    # cannot (tests/test_spark_offline_store.py).
    with pytest.raises(NotImplementedError, match="offline_store type spark"):
        offline_store.get_historical_features("SELECT * FROM labels", features)
    with pytest.raises(granary.InvalidArgument, match="not list"):
        offline_store.get_historical_features([{"customer_id": 1}], features)
    mixed = pd.DataFrame({"customer_id": [1, "x"], "event_timestamp": [pd.Timestamp(0)] * 2})
    with pytest.raises(granary.InvalidArgument, match="cannot be converted to Arrow"):
        offline_store.get_historical_features(mixed, features)


def test_a_missing_source_file_is_an_error_naming_it(parking_data, tmp_path):
    from sdk_fixtures import make_parking_repo
    repo = make_parking_repo(tmp_path / "parking", parking_data)
    store = granary.FeatureStore(repo)
    store.apply()
    (repo / "data" / "customer_profiles.parquet").unlink()
    entities = labels(repo).slice(0, 5)
    with pytest.raises(granary.GranaryError, match="customer_profiles.parquet"):
        store.get_historical_features(entities, features=["customer_profile:tenure_days"])


def test_a_spark_offline_store_without_its_cluster_url_is_a_clear_error(fresh_repo):
    store = granary.FeatureStore(fresh_repo)
    store.apply()
    store.close()
    config = fresh_repo / "granary.yaml"
    text = config.read_text()
    assert "offline_store: {type: file}" in text
    config.write_text(text.replace("offline_store: {type: file}", "offline_store: {type: spark}"))
    with pytest.raises(granary.InvalidArgument, match=r"granary.yaml:\d+: .*spark needs remote"):
        granary.FeatureStore(fresh_repo)


def test_streamed_training_set_equals_the_whole_one(offline_store, parking_repo):
    entities = labels(parking_repo)
    whole = offline_store.get_historical_features(entities, feature_service="customer_risk_v1")
    with offline_store.stream_historical_features(
            entities, feature_service="customer_risk_v1") as stream:
        assert isinstance(stream, granary.TrainingSetStream)
        assert stream.features == whole.features
        assert stream.schema == whole.to_arrow().schema
        batches = list(stream)
        assert stream.rows == entities.num_rows
        assert stream.read_next_batch() is None  # the end stays the end
    assert batches and all(b.num_rows > 0 and b.schema == stream.schema for b in batches)
    streamed = pa.Table.from_batches(batches)
    assert streamed.equals(whole.to_arrow())
    check_against_oracle(parking_repo, streamed, entities)


def test_stream_as_a_record_batch_reader_and_closed_early(offline_store, parking_repo, tmp_path):
    entities = labels(parking_repo)
    whole = offline_store.get_historical_features(entities, feature_service="customer_risk_v1")
    stream = offline_store.stream_historical_features(entities, feature_service="customer_risk_v1")
    reader = stream.to_reader()
    assert isinstance(reader, pa.RecordBatchReader)
    pq.write_table(reader.read_all(), tmp_path / "via_reader.parquet")
    assert pq.read_table(tmp_path / "via_reader.parquet").equals(whole.to_arrow())
    stream = offline_store.stream_historical_features(entities, feature_service="customer_risk_v1")
    stream.close()
    stream.close()  # idempotent
    assert stream.read_next_batch() is None


def test_training_set_written_to_a_file_batch_by_batch(offline_store, parking_repo, tmp_path):
    entities = labels(parking_repo)
    whole = offline_store.get_historical_features(entities, feature_service="customer_risk_v1")
    rows = offline_store.write_historical_features(entities, feature_service="customer_risk_v1",
                                                   path=tmp_path / "train.parquet")
    assert rows == entities.num_rows
    assert pq.read_table(tmp_path / "train.parquet").equals(whole.to_arrow())
    assert [p.name for p in tmp_path.iterdir()] == ["train.parquet"]  # no temporary file left
    rows = offline_store.write_historical_features(entities, features=["customer_profile:tenure_days"],
                                                   path=str(tmp_path / "train.csv"))
    assert rows == entities.num_rows and (tmp_path / "train.csv").stat().st_size > 0


def test_streaming_forms_check_the_request_up_front(offline_store, parking_repo, tmp_path):
    entities = labels(parking_repo)
    with pytest.raises(granary.InvalidArgument, match="did you mean"):
        offline_store.stream_historical_features(entities, features=["customer_profile:tenur"])
    with pytest.raises(granary.InvalidArgument, match="did you mean"):
        offline_store.write_historical_features(entities, features=["customer_profile:tenur"],
                                                path=tmp_path / "x.parquet")
    with pytest.raises(granary.InvalidArgument, match=r"\.parquet or \.csv"):
        offline_store.write_historical_features(entities, feature_service="customer_risk_v1",
                                                path=tmp_path / "x.json")
    with pytest.raises(TypeError, match="path="):
        offline_store.write_historical_features(entities, feature_service="customer_risk_v1")
    assert not (tmp_path / "x.parquet").exists() and not (tmp_path / "x.json").exists()


def calls_that_spill(offline_store, entities, spill, tmp_path):
    """Every SDK call that takes spill_dir: the training set in each form, and a materialization."""
    return (
        lambda: offline_store.get_historical_features(
            entities, feature_service="customer_risk_v1", spill_dir=spill),
        lambda: offline_store.write_historical_features(
            entities, feature_service="customer_risk_v1", spill_dir=spill,
            path=tmp_path / "train.parquet"),
        lambda: list(offline_store.stream_historical_features(
            entities, feature_service="customer_risk_v1", spill_dir=spill)),
        lambda: offline_store.materialize_incremental(
            end_date=dt.datetime.now(dt.timezone.utc), spill_dir=spill))


def test_spill_folders_killed_runs_left_are_removed_live_ones_kept(offline_store, parking_repo,
                                                                  tmp_path):
    # What a run killed outright leaves (a spill folder whose lock file nobody holds) goes before
    # the SDK's training sets and materializations start, as before the CLI's commands, each with
    # a GranaryWarning; a folder whose lock a live process holds (here this one) stays.
    spill = tmp_path / "spill"
    spill.mkdir()

    def make(name):
        folder = spill / name
        folder.mkdir()
        (folder / "granary.lock").write_text("")
        (folder / "partition-0.arrow").write_bytes(b"x" * 1000)
        return folder

    live = make("granary-spill-Live01")
    held = open(live / "granary.lock", "rb")
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        entities = labels(parking_repo)
        for call in calls_that_spill(offline_store, entities, spill, tmp_path):
            dead = [make("granary-spill-Dead01"), make("granary-output-Dead02")]
            with pytest.warns(granary.GranaryWarning) as caught:
                call()
            messages = [str(w.message) for w in caught]
            for folder in dead:
                assert f"removed {folder}: a spill folder of a granary process that is gone" \
                    in messages, messages
                assert not folder.exists()
            assert live.exists() and not any(str(live) in m for m in messages)
    finally:
        held.close()


def test_a_spill_dir_that_is_not_a_writable_folder_is_refused_before_any_work(offline_store,
                                                                             parking_repo,
                                                                             tmp_path):
    # As the CLI's --spill-dir: refused when the call starts, not when the run first spills.
    entities = labels(parking_repo)
    (tmp_path / "a-file").write_text("")
    for where, error, says in [(tmp_path / "gone", FileNotFoundError, "no such folder"),
                               (tmp_path / "a-file", NotADirectoryError, "not a folder")]:
        for call in calls_that_spill(offline_store, entities, where, tmp_path):
            with pytest.raises(error, match=f"spill_dir {where}: {says}"):
                call()
    assert not (tmp_path / "train.parquet").exists()
