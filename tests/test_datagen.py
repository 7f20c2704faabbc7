"""End to end: `granary datagen`, the example parking repository on its output, and the generated
Delta table read by an independent reader (delta-rs, the `deltalake` package)."""
import datetime
import hashlib
import json
import pathlib
import shutil

import deltalake
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from conftest import ROOT, Cli

END = "2026-03-02"


@pytest.fixture(scope="module")
def tiny(granary_bin, tmp_path_factory):
    """The tiny scale into the data folder of a copy of examples/parking (without its data)."""
    repo = tmp_path_factory.mktemp("datagen") / "parking"
    shutil.copytree(ROOT / "examples" / "parking", repo, ignore=shutil.ignore_patterns("data"))
    cli = Cli(granary_bin, repo)
    out = cli("datagen", "--scale", "tiny", "--out", "data", "--end", END, "--seed", "5",
              check=True)
    return repo, out


def test_datagen_reports_every_table_and_writes_a_manifest(tiny):
    repo, out = tiny
    for table in ("customers", "customer_payments", "customer_profiles", "payments", "disputes",
                  "violations", "parking_sessions", "bays", "bay_occupancy",
                  "bay_occupancy_delta", "customer_risk_labels", "bay_demand_labels"):
        assert f"\n{table} " in "\n" + out.stdout, out.stdout
    assert "wrote " in out.stdout and "rows/s" in out.stdout
    manifest = json.loads((repo / "data" / "datagen.json").read_text())
    assert manifest["scale"] == "tiny" and manifest["seed"] == 5
    assert manifest["end"] == f"{END}T00:00:00Z"
    rows = {t["name"]: t["rows"] for t in manifest["tables"]}
    assert rows["customers"] == 2000
    assert rows["bay_occupancy"] == 50 * 60 * 96
    # The progress lines go to stderr, the table to stdout.
    assert "customers" in out.stderr and "bay telemetry" in out.stderr
    assert not [p for p in (repo / "data").iterdir() if p.name.startswith(".tmp-datagen")]


def test_example_repository_applies_on_the_generated_data_without_warnings(tiny, granary_bin):
    repo, _ = tiny
    out = Cli(granary_bin, repo)("apply", check=True)
    assert "warning" not in out.stderr, out.stderr
    assert "2 entities, 6 data sources, 6 feature views, 2 feature services" in out.stdout


def test_delta_table_reads_with_delta_rs_like_the_parquet_copy(tiny):
    repo, _ = tiny
    table = deltalake.DeltaTable(str(repo / "data" / "bay_occupancy_delta"))
    assert table.version() == 0
    assert table.metadata().partition_columns == ["event_date"]
    delta = table.to_pyarrow_table()
    parquet = ds.dataset(str(repo / "data" / "bay_occupancy"), format="parquet").to_table()
    assert delta.num_rows == parquet.num_rows == 50 * 60 * 96

    # Same columns and types (delta-rs reads the partition column back from the log).
    assert sorted(delta.schema.names) == sorted(parquet.schema.names)
    for name in parquet.schema.names:
        assert delta.schema.field(name).type == parquet.schema.field(name).type, name
    assert parquet.schema.field("event_timestamp").type == pa.timestamp("us", tz="UTC")

    # Same values, row for row, once both are in (bay, time) order.
    keys = [("parking_bay_id", "ascending"), ("event_timestamp", "ascending")]
    delta = delta.select(parquet.schema.names).sort_by(keys)
    parquet = parquet.sort_by(keys)
    assert delta.equals(parquet)

    # Partition values agree with the rows' dates.
    dates = pc.cast(pc.cast(parquet["event_timestamp"], pa.timestamp("us")), pa.date32())
    assert pc.all(pc.equal(dates, parquet["event_date"])).as_py()

    # File statistics in the log: record counts and timestamp bounds per file.
    adds = pa.table(table.get_add_actions(flatten=True)).to_pydict()
    assert sum(adds["num_records"]) == delta.num_rows
    assert len(adds["path"]) == 60 * 2  # a file per day per group of bays
    for path, lo, hi, n in zip(adds["path"], adds["min.event_timestamp"],
                               adds["max.event_timestamp"], adds["num_records"]):
        day = datetime.date.fromisoformat(path.split("event_date=")[1][:10])
        lo, hi = pd_to_datetime(lo), pd_to_datetime(hi)
        assert lo == datetime.datetime.combine(day, datetime.time(0, 0), datetime.timezone.utc)
        assert hi == datetime.datetime.combine(day, datetime.time(23, 45), datetime.timezone.utc)
        assert n == 25 * 96

    # A pruned read through the partition column.
    one_day = table.to_pyarrow_table(filters=[("event_date", "=", datetime.date(2026, 2, 1))])
    assert one_day.num_rows == 50 * 96


def pd_to_datetime(value):
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
    raise AssertionError(f"unexpected statistics value {value!r}")


def test_customer_payments_have_backfilled_rows_for_the_created_timestamp(tiny):
    repo, _ = tiny
    t = pq.read_table(repo / "data" / "customer_payments.parquet").to_pandas()
    assert (t["created"] > t["event_timestamp"]).all()
    dup = t[t.duplicated(["customer_id", "event_timestamp"], keep=False)]
    assert len(dup) > 0, "late events must produce a second row with a later created"
    assert (dup.groupby(["customer_id", "event_timestamp"])["created"].nunique() > 1).all()
    assert (t["event_timestamp"] <= f"{END}T00:00:00Z").all()


def test_same_seed_same_bytes_other_seed_other_data(granary_bin, tmp_path):
    cli = Cli(granary_bin, tmp_path)
    for name, seed, threads in (("a", 9, 1), ("b", 9, 2), ("c", 10, 2)):
        cli("datagen", "--scale", "tiny", "--out", name, "--end", END, "--seed", seed,
            "--threads", threads, "-q", check=True)

    def digest(folder):
        h = {}
        for p in sorted(pathlib.Path(folder).rglob("*")):
            if p.is_file():
                h[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
        return h

    a, b, c = (digest(tmp_path / n) for n in "abc")
    assert a == b
    assert a["payments.parquet"] != c["payments.parquet"]


def test_datagen_errors_are_clear(granary_bin, tmp_path):
    cli = Cli(granary_bin, tmp_path)
    out = cli("datagen", "--scale", "huge", "--out", "x", check=False)
    assert out.returncode != 0 and "huge" in out.stderr and "tiny" in out.stderr
    out = cli("datagen", "--out", "x", "--end", "2026-03-02T10:00", check=False)
    assert out.returncode == 1 and "give a date" in out.stderr
    (tmp_path / "file").write_text("x")
    out = cli("datagen", "--out", "file/out", "--end", END, check=False)
    assert out.returncode == 1 and "cannot create the output folder" in out.stderr
    assert "--out" in out.stderr
    assert not (tmp_path / "x").exists()


def test_example_window_aggregations_equal_a_rescan_of_the_raw_events(tiny, granary_bin):
    """examples/parking/windows.yaml on the generated raw events, checked against pandas."""
    repo, _ = tiny
    cli = Cli(granary_bin, repo)
    cli("apply", check=True)
    payments = pq.read_table(repo / "data" / "payments.parquet").to_pandas()
    payments["e"] = payments.event_timestamp.dt.as_unit("us").astype("int64")
    hour, day = 3600 * 10**6, 86400 * 10**6
    sample = payments.sample(60, random_state=3)
    ts = sample.e.to_numpy() + np.array([0, 1, -1, hour // 2] * 15)
    entities = pa.table({"customer_id": pa.array(sample.customer_id.to_numpy()),
                         "event_timestamp": pa.array(ts, pa.timestamp("us", tz="UTC"))})
    pq.write_table(entities, repo / "agg_rows.parquet")
    cli("get-historical-features", "--entities", repo / "agg_rows.parquet", "--features",
        "customer_payment_windows:payment_failures_30d,customer_payment_windows:spend_30d,"
        "customer_payment_windows:failure_rate_90d,customer_payment_windows:last_payment_method",
        "--output", repo / "agg_out.parquet", check=True)
    got = pq.read_table(repo / "agg_out.parquet").to_pylist()
    for row, customer, t in zip(got, sample.customer_id, ts):
        mine = payments[payments.customer_id == customer]
        w30 = mine[(mine.e >= (t - 30 * day) // hour * hour) & (mine.e <= t)]
        w90 = mine[(mine.e >= (t - 90 * day) // hour * hour) & (mine.e <= t)]
        assert row["payment_failures_30d"] == int(w30.failed.sum())
        assert (w30.status == "failed").sum() == w30.failed.sum()
        if len(w30):
            assert row["spend_30d"] == pytest.approx(w30.amount.sum())
        else:
            assert row["spend_30d"] is None
        if len(w90):
            assert row["failure_rate_90d"] == pytest.approx(w90.failed.mean())
            last = w90.sort_values("e", kind="stable").payment_method.iloc[-1]
            assert row["last_payment_method"] == last
        else:
            assert row["failure_rate_90d"] is None and row["last_payment_method"] is None
