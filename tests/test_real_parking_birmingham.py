"""The bay-demand path on real car-park occupancy that no one here wrote: the UCI "Parking
Birmingham" readings (../shared/testdata/parking-birmingham/dataset.csv, read in place; see
../shared/testdata/MANIFEST.md). The test derives hourly occupancy features per car park with
pandas, then checks Granary against pandas at each stage:

- get-historical-features: every value of a training set (one entity row per raw reading, plus
  rows on the ttl's boundaries and an unknown car park) equals a pandas merge_asof with the ttl;
- materialize (October and November) then materialize-incremental (December): a real
  `granary serve` answers /get-online-features with each car park's latest hourly values;
- the same training set on the Spark engine (a real cluster, spark_helpers.py) equals the
  embedded engine's, value for value, nulls and order included.
"""
import datetime as dt
import http.client
import json
import os
import subprocess
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from redis_helpers import free_port
from serve_helpers import TEST_QUEUE_DELAY
from conftest import TESTDATA, require_testdata
from spark_helpers import spark_remote  # noqa: F401  (the session's cluster)

DATASET = TESTDATA / "parking-birmingham" / "dataset.csv"
TTL = pd.Timedelta(hours=3)
FEATURES = ["occupancy_rate_1h", "occupancy_rate_3h", "occupancy_rate_24h", "readings_1h",
            "max_occupied_1h", "capacity", "full_1h"]
UNKNOWN = "No Such Car Park"

DEFINITIONS = """
entities:
  - {name: car_park, join_keys: [car_park_code], value_type: string}
data_sources:
  - {name: car_park_hours, path: data/car_park_hours.parquet, timestamp_field: event_timestamp}
feature_views:
  # For training: values at most 3 hours old (the first hour of a morning has none).
  - name: car_park_occupancy
    entities: [car_park]
    source: car_park_hours
    ttl: 3h
    schema: &schema
      - {name: occupancy_rate_1h, type: float64}
      - {name: occupancy_rate_3h, type: float64}
      - {name: occupancy_rate_24h, type: float64}
      - {name: readings_1h, type: int64}
      - {name: max_occupied_1h, type: int64}
      - {name: capacity, type: int64}
      - {name: full_1h, type: bool}
  # The same values without an age limit: the data is from 2016, so online only this view's
  # values are PRESENT today.
  - name: car_park_latest
    entities: [car_park]
    source: car_park_hours
    ttl: 0
    schema: *schema
feature_services:
  - name: car_park_demand_v1
    features: [car_park_occupancy]
"""


def read_readings():
    """The raw file: no header; a stray tab after one time; 216 rows repeated exactly."""
    raw = pd.read_csv(DATASET, header=None,
                      names=["car_park_code", "capacity", "occupied", "last_updated"],
                      dtype={"car_park_code": str, "capacity": np.int64, "occupied": np.int64,
                             "last_updated": str})
    assert len(raw) == 35717, "the MANIFEST says 35,717 rows"
    raw["reading_time"] = pd.to_datetime(raw["last_updated"].str.strip(),
                                         format="%Y-%m-%d %H:%M:%S").dt.tz_localize("UTC")
    readings = raw.drop(columns="last_updated").drop_duplicates()
    assert len(readings) == 35717 - 216
    assert not readings.duplicated(["car_park_code", "reading_time"]).any()
    # A dozen readings are negative (sensor resets): no car is there.
    readings["occupied"] = readings["occupied"].clip(lower=0)
    readings["rate"] = readings["occupied"] / readings["capacity"]
    return readings.sort_values(["car_park_code", "reading_time"]).reset_index(drop=True)


def hourly_features(readings):
    """One row per car park and clock hour with readings, stamped at the end of the hour (when
    all of its readings are in): the hour's mean rate, readings, peak and whether it was full,
    and the mean rate of the readings in the last 3 and 24 clock hours (hours without readings,
    as at night, count nothing)."""
    readings = readings.assign(hour=readings["reading_time"].dt.floor("h"))
    hours = readings.groupby(["car_park_code", "hour"], sort=True).agg(
        rate_sum=("rate", "sum"), readings_1h=("rate", "size"),
        max_occupied_1h=("occupied", "max"), capacity=("capacity", "first")).reset_index()
    parts = []
    for _, group in hours.groupby("car_park_code", sort=True):
        group = group.set_index("hour")
        for window, name in [("3h", "occupancy_rate_3h"), ("24h", "occupancy_rate_24h")]:
            # A time window over the hour starts: (h - window, h], i.e. this hour and the ones
            # before it that start within the window.
            sums = group["rate_sum"].rolling(window).sum()
            counts = group["readings_1h"].rolling(window).sum()
            group[name] = sums / counts
        parts.append(group.reset_index())
    hours = pd.concat(parts, ignore_index=True)
    hours["occupancy_rate_1h"] = hours["rate_sum"] / hours["readings_1h"]
    hours["full_1h"] = hours["max_occupied_1h"] >= hours["capacity"]
    hours["event_timestamp"] = hours["hour"] + pd.Timedelta(hours=1)
    return hours[["car_park_code", "event_timestamp", *FEATURES]]


def to_arrow(frame):
    table = pa.Table.from_pandas(frame, preserve_index=False)
    fields = [pa.field(f.name, pa.timestamp("us", tz="UTC")) if pa.types.is_timestamp(f.type)
              else pa.field(f.name, pa.string()) if pa.types.is_large_string(f.type)
              or pa.types.is_string(f.type) else f for f in table.schema]
    return table.cast(pa.schema(fields))


def entity_rows(readings, hours):
    """A training set's spine: every reading (its rate is the label), and for a few hours of
    each car park the boundaries of the ttl window: exactly at the row's time, exactly ttl
    after it (both still match) and one microsecond later (no longer); and a car park that does
    not exist."""
    rows = readings[["car_park_code", "reading_time", "rate"]].rename(
        columns={"reading_time": "event_timestamp", "rate": "label_rate"})
    edges = hours.groupby("car_park_code").nth([0, 5, -1])[["car_park_code", "event_timestamp"]]
    extra = [edges.assign(label_rate=np.nan),
             edges.assign(event_timestamp=edges["event_timestamp"] + TTL, label_rate=np.nan),
             edges.assign(event_timestamp=edges["event_timestamp"] + TTL
                          + pd.Timedelta(microseconds=1), label_rate=np.nan),
             pd.DataFrame({"car_park_code": [UNKNOWN], "label_rate": [0.5],
                           "event_timestamp": [pd.Timestamp("2016-11-01T12:00:00Z")]})]
    rows = pd.concat([rows, *extra], ignore_index=True)
    # Shuffled, so that the engine's answer in the input's order is checked too.
    return rows.sample(frac=1.0, random_state=7).reset_index(drop=True)


def expected_training_set(rows, hours):
    """Point-in-time rule with pandas: the latest hourly row with event_timestamp in
    [t - ttl, t] (both ends inclusive), per car park."""
    left = rows.reset_index().sort_values("event_timestamp")
    right = hours.sort_values("event_timestamp")
    joined = pd.merge_asof(left, right, on="event_timestamp", by="car_park_code",
                           direction="backward", tolerance=TTL, allow_exact_matches=True)
    return joined.set_index("index").sort_index()


def same(actual, expected):
    if expected is None or (isinstance(expected, float) and np.isnan(expected)):
        return actual is None or (isinstance(actual, float) and np.isnan(actual))
    if pd.isna(expected):
        return actual is None
    return actual == expected


class Server:
    """A `granary serve` process on a free port of 127.0.0.1, stopped by stop()."""

    def __init__(self, binary, repo):
        self.port = free_port()
        self.log_path = repo / "serve.log"
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [str(binary), "-C", str(repo), "serve", "--port", str(self.port),
                 "--threads", "2", *TEST_QUEUE_DELAY], stdout=log, stderr=log)
        deadline = time.monotonic() + 15
        while True:
            try:
                if self.post("GET", "/health")[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"granary serve did not come up:\n{self.log_path.read_text()}")
            time.sleep(0.05)

    def post(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=None if body is None else json.dumps(body))
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def derived():
    require_testdata("parking-birmingham/dataset.csv")
    readings = read_readings()
    hours = hourly_features(readings)
    return readings, hours


@pytest.fixture
def repo(tmp_path, cli, derived):
    _, hours = derived
    repo = tmp_path / "birmingham"
    (repo / "data").mkdir(parents=True)
    (repo / "granary.yaml").write_text("project: birmingham\n")
    (repo / "features.yaml").write_text(DEFINITIONS)
    pq.write_table(to_arrow(hours), repo / "data" / "car_park_hours.parquet")
    cli("-C", repo, "apply", check=True)
    return repo


def test_the_derived_features_are_what_the_file_says(derived):
    readings, hours = derived
    assert readings["car_park_code"].nunique() == 30
    assert readings["reading_time"].min() == pd.Timestamp("2016-10-04 07:46:28", tz="UTC")
    assert readings["reading_time"].max() == pd.Timestamp("2016-12-19 16:30:35", tz="UTC")
    # A spot check by hand of one hour: BHMBCCMKT01 (capacity 577) read 61 at 07:59:42 on
    # 4 October, its first reading, and 64 at 08:25:42 and 80 at 08:59:42.
    first = hours[(hours["car_park_code"] == "BHMBCCMKT01")].iloc[:2]
    assert first["event_timestamp"].tolist() == [pd.Timestamp("2016-10-04T08:00:00Z"),
                                                 pd.Timestamp("2016-10-04T09:00:00Z")]
    assert first["occupancy_rate_1h"].tolist() == [61 / 577, (64 / 577 + 80 / 577) / 2]
    assert first["occupancy_rate_3h"].iloc[1] == pytest.approx((61 + 64 + 80) / 577 / 3)
    assert first["readings_1h"].tolist() == [1, 2]
    assert (hours.groupby("car_park_code")["event_timestamp"].is_monotonic_increasing).all()


def test_training_set_matches_a_pandas_point_in_time_join(repo, cli, derived):
    readings, hours = derived
    rows = entity_rows(readings, hours)
    pq.write_table(to_arrow(rows), repo / "entity_rows.parquet")
    cli("-C", repo, "get-historical-features", "--entities", repo / "entity_rows.parquet",
        "--feature-service", "car_park_demand_v1", "--output", repo / "train.parquet",
        check=True)

    table = pq.read_table(repo / "train.parquet")
    assert table.column_names == ["car_park_code", "event_timestamp", "label_rate", *FEATURES]
    assert table.num_rows == len(rows)
    actual = table.to_pandas()
    expected = expected_training_set(rows, hours)
    assert actual["car_park_code"].tolist() == rows["car_park_code"].tolist()
    assert (actual["event_timestamp"] == rows["event_timestamp"]).all()

    matched = expected["occupancy_rate_1h"].notna()
    # The data has gaps (nights, outages): some rows find nothing within the ttl, most do.
    assert 0.5 * len(rows) < matched.sum() < len(rows)
    mismatches = []
    for name in FEATURES:
        got = table.column(name).to_pylist()
        want = expected[name].tolist()
        for i, (a, e) in enumerate(zip(got, want)):
            if not (same(a, e) if matched.iloc[i] else a is None):
                mismatches.append((i, rows.iloc[i].tolist(), name, a, e))
    assert not mismatches, f"{len(mismatches)} values differ, the first: {mismatches[:5]}"

    # The boundary rows: at the row's time and ttl later match; a microsecond past, nothing.
    for offset, should_match in [(pd.Timedelta(0), True), (TTL, True),
                                 (TTL + pd.Timedelta(microseconds=1), False)]:
        last = hours.groupby("car_park_code").nth(-1)
        for code, ts in zip(last["car_park_code"], last["event_timestamp"]):
            hit = actual[(actual["car_park_code"] == code) &
                         (actual["event_timestamp"] == ts + offset)]
            assert len(hit) == 1
            assert hit["occupancy_rate_1h"].notna().iloc[0] == should_match, (code, ts, offset)
    assert actual[actual["car_park_code"] == UNKNOWN][FEATURES].isna().all(axis=None)


def test_materialized_and_served_values_are_the_latest_of_the_file(repo, cli, granary_bin,
                                                                  derived):
    _, hours = derived
    # October and November, then December from the watermark.
    out = cli("-C", repo, "materialize", "2016-10-01T00:00:00Z", "2016-11-30T23:59:59Z", "-q",
              check=True)
    assert "car_park_latest:" in out.stdout and "car_park_occupancy:" in out.stdout
    cli("-C", repo, "materialize-incremental", "2016-12-31T00:00:00Z", "-q", check=True)
    december_car_parks = hours.loc[hours["event_timestamp"] > pd.Timestamp("2016-11-30T23:59:59Z"),
                                   "car_park_code"].nunique()
    status = json.loads(cli("-C", repo, "status", "--json", check=True).stdout)
    views = {v["view"]: v for v in status["views"]}
    assert sorted(views) == ["car_park_latest", "car_park_occupancy"]
    for view in views.values():
        assert view["watermark"] == "2016-12-31T00:00:00Z", view
        assert view["last_run"]["trigger"] == "materialize-incremental"
        # (watermark, END]: the run starts a microsecond after the watermark.
        assert view["last_run"]["interval_start"] == "2016-11-30T23:59:59.000001Z", view
        # 29 car parks report in December; NIA North stopped on 30 November, so its latest
        # value online is the one the first run wrote.
        assert view["last_run"]["entities_written"] == december_car_parks == 29

    latest = hours.sort_values("event_timestamp").groupby("car_park_code").tail(1)
    latest = latest.set_index("car_park_code").sort_index()
    codes = latest.index.tolist() + [UNKNOWN]

    server = Server(granary_bin, repo)
    try:
        status_code, body = server.post("POST", "/get-online-features", {
            "features": [f"car_park_latest:{name}" for name in FEATURES],
            "entities": {"car_park_code": codes}})
        assert status_code == 200, body
        answer = json.loads(body)
        assert answer["metadata"]["feature_names"] == ["car_park_code", *FEATURES]
        assert answer["results"][0]["values"] == codes
        for name, result in zip(FEATURES, answer["results"][1:]):
            values, statuses = result["values"], result["statuses"]
            want = latest[name].tolist()
            assert statuses[-1] == "NOT_FOUND" and values[-1] is None
            for code, a, s, ts, e in zip(codes, values, statuses, result["event_timestamps"],
                                         want):
                stamp = latest.loc[code, "event_timestamp"]
                assert ts == stamp.strftime("%Y-%m-%dT%H:%M:%SZ"), (code, name)
                if pd.isna(e):
                    assert (a, s) == (None, "NULL_VALUE"), (code, name)
                else:
                    assert (a, s) == (e, "PRESENT"), (code, name, a, e)

        # The 3-hour view holds the same rows, but in 2016 they are far older than its ttl.
        status_code, body = server.post("POST", "/get-online-features", {
            "feature_service": "car_park_demand_v1", "entities": {"car_park_code": codes[:-1]}})
        assert status_code == 200, body
        for result in json.loads(body)["results"][1:]:
            assert set(result["statuses"]) == {"OUTSIDE_MAX_AGE"}
            assert result["values"] == [None] * len(codes[:-1])
            assert result["event_timestamps"] == [
                t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in latest["event_timestamp"]]
    finally:
        server.stop()
    assert server.proc.returncode == 0, server.log_path.read_text()


def test_the_spark_engine_gives_the_same_training_set(repo, cli, derived, spark_remote):  # noqa: F811
    readings, hours = derived
    rows = entity_rows(readings, hours)
    pq.write_table(to_arrow(rows), repo / "entity_rows.parquet")
    args = ["get-historical-features", "--entities", repo / "entity_rows.parquet",
            "--feature-service", "car_park_demand_v1"]
    cli("-C", repo, *args, "--output", repo / "embedded.parquet", check=True)
    (repo / "granary.yaml").write_text(
        f'project: birmingham\noffline_store: {{type: spark, remote: "{spark_remote}"}}\n')
    out = cli("-C", repo, *args, "--output", repo / "spark.parquet", check=True, timeout=900)
    assert "spark at sc://" in out.stderr, out.stderr
    embedded = pq.read_table(repo / "embedded.parquet")
    spark = pq.read_table(repo / "spark.parquet")
    assert spark.schema == embedded.schema
    assert spark.num_rows == len(rows)
    assert spark.to_pylist() == embedded.to_pylist()
