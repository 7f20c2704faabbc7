"""get-historical-features end to end: the CLI over real files, Delta tables, errors."""
import json
import os
import shutil
import signal
import subprocess
import time

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from conftest import require_testdata

DEFS = """
entities:
  - {name: driver, join_keys: [driver_id], value_type: int64}
data_sources:
  - {name: driver_stats, path: data/driver_stats.parquet, timestamp_field: event_timestamp,
     created_timestamp_column: created}
feature_views:
  - name: driver_hourly
    entities: [driver]
    source: driver_stats
    ttl: 2h
    schema:
      - {name: conv_rate, type: float32}
      - {name: acc_rate, type: float64}
      - {name: avg_daily_trips, type: int64}
feature_services:
  - name: driver_v1
    features:
      - {view: driver_hourly, features: [conv_rate, avg_daily_trips]}
"""

ENTITIES = """driver_id,event_timestamp,label
1001,2024-09-01T10:00:00Z,1
1002,2024-09-02 11:30:00+02:00,0
1001,2024-09-01T10:00:00Z,1
9999,2024-09-01,0
1003,2024-09-03T00:30:00,1
"""


def new_repo(tmp_path, project, defs):
    """An empty repository (tmp_path/repo, with a data/ folder) of `project` defining `defs`."""
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "granary.yaml").write_text(f"project: {project}\n")
    (repo / "features.yaml").write_text(defs)
    return repo


def stats_defs(entity, key, **features):
    """Definitions of one view, `stats` (ttl 0), of `entity` (one int64 join key `key`) over
    data/stats.parquet, with `features` (name=type)."""
    schema = "".join(f"\n      - {{name: {name}, type: {kind}}}" for name, kind in features.items())
    return f"""
entities:
  - {{name: {entity}, join_keys: [{key}], value_type: int64}}
data_sources:
  - {{name: stats, path: data/stats.parquet, timestamp_field: event_timestamp}}
feature_views:
  - name: stats
    entities: [{entity}]
    source: stats
    ttl: 0
    schema:{schema}
"""


def make_repo(tmp_path, cli, defs=DEFS):
    repo = new_repo(tmp_path, "hist", defs)
    shutil.copy(require_testdata("feast/driver_stats.parquet"), repo / "data" / "driver_stats.parquet")
    (repo / "entities.csv").write_text(ENTITIES)
    cli("-C", repo, "apply", check=True)
    return repo


def expected_row(driver, ts_us, ttl_us=2 * 3600 * 1_000_000):
    """The rule written out over Feast's driver_stats, independently of the engine."""
    table = pq.read_table(require_testdata("feast/driver_stats.parquet")).to_pylist()
    best = None
    for r in table:
        t = int(r["event_timestamp"].timestamp() * 1_000_000)
        c = int(r["created"].timestamp() * 1_000_000)
        if r["driver_id"] != driver or t > ts_us or t < ts_us - ttl_us:
            continue
        if best is None or (t, c) >= best[0]:
            best = ((t, c), r)
    return best[1] if best else None


def test_training_set_from_csv_entities_to_parquet(cli, tmp_path):
    repo = make_repo(tmp_path, cli)
    out = cli("-C", repo, "get-historical-features", "--entities", repo / "entities.csv",
              "--features", "driver_hourly:conv_rate,driver_hourly:avg_daily_trips",
              "--output", repo / "train.parquet", check=True)
    assert "wrote 5 rows x 5 columns to" in out.stderr
    assert "driver_hourly: 1.81K rows read of 1 files" in out.stderr
    # What the memory budget made the join do, and why.
    assert "driver_hourly: matched streaming: 0.0 MiB of state for 5 entity rows, within the " \
        "join's " in out.stderr
    table = pq.read_table(repo / "train.parquet")
    assert table.column_names == ["driver_id", "event_timestamp", "label", "conv_rate",
                                  "avg_daily_trips"]
    assert str(table.schema.field("event_timestamp").type) == "timestamp[us, tz=UTC]"
    rows = table.to_pylist()
    assert [r["driver_id"] for r in rows] == [1001, 1002, 1001, 9999, 1003]
    assert [r["label"] for r in rows] == [1, 0, 1, 0, 1]
    for r in rows:
        ts = int(r["event_timestamp"].timestamp() * 1_000_000)
        want = expected_row(r["driver_id"], ts)
        if want is None:
            assert r["conv_rate"] is None and r["avg_daily_trips"] is None
        else:
            assert abs(r["conv_rate"] - want["conv_rate"]) < 1e-6
            assert r["avg_daily_trips"] == want["avg_daily_trips"]
    # 1002's time was given at +02:00: 09:30 UTC.
    assert rows[1]["event_timestamp"].isoformat() == "2024-09-02T09:30:00+00:00"
    assert rows[3]["conv_rate"] is None


def test_timings_name_every_phase_with_wall_cpu_and_cores(cli, tmp_path):
    repo = make_repo(tmp_path, cli)
    plain = repo / "plain.parquet"
    cli("-C", repo, "get-historical-features", "--entities", repo / "entities.csv",
        "--features", "driver_hourly:conv_rate,driver_hourly:avg_daily_trips",
        "--output", plain, "-q", check=True)
    out = cli("-C", repo, "get-historical-features", "--entities", repo / "entities.csv",
              "--features", "driver_hourly:conv_rate,driver_hourly:avg_daily_trips",
              "--output", repo / "timed.parquet", "-q", "--timings", check=True)
    lines = out.stderr.split("timings (wall, CPU of the whole process meanwhile, cores busy):\n")[1]
    names = [line.split("  wall ")[0].strip() for line in lines.splitlines()]
    assert names == ["read entity rows", "driver_hourly: entity side",
                     "driver_hourly: match pass", "driver_hourly: gather pass",
                     f"write {repo / 'timed.parquet'}", "total"], out.stderr
    for line in lines.splitlines():
        assert " s  CPU " in line and "(system " in line and "cores " in line, line
    # Timing changes nothing in the result.
    assert pq.read_table(repo / "timed.parquet").equals(pq.read_table(plain))
    assert "timings (wall" not in cli("-C", repo, "get-historical-features", "--entities",
                                repo / "entities.csv", "--features", "driver_hourly:conv_rate",
                                "--output", repo / "t2.parquet", "-q", check=True).stderr


def test_feature_service_full_names_csv_output_and_a_spilling_budget_agree(cli, tmp_path):
    repo = make_repo(tmp_path, cli)
    cli("-C", repo, "get-historical-features", "--entities", repo / "entities.csv",
        "--feature-service", "driver_v1", "--full-feature-names", "-o", repo / "a.csv", "-q", check=True)
    spilled = cli("-C", repo, "get-historical-features", "--entities", repo / "entities.csv",
                  "--feature-service", "driver_v1", "--full-feature-names", "-o", repo / "b.csv",
                  "--memory-budget", "100", "--threads", "2", check=True)
    assert "partitions" in spilled.stderr and "spilled" in spilled.stderr
    assert "driver_hourly: streaming 5 entity rows takes 0.0 MiB and the source's keys and " \
        "times more than the join's 0.0 MiB share of the memory budget, and reading the source " \
        "once per group of entity rows would cost more than spilling: split into" in spilled.stderr
    assert "warning: the entity rows (0 MiB, read whole) and one view's output columns while " \
        "its join gathers them (the largest: about 0 MiB) take about 0 MiB, more than " \
        "--memory-budget 100;" in spilled.stderr
    # The view's columns did not fit beside the entity rows in half of 100 bytes: spilled, and
    # said so even by a quiet run.
    assert "driver_hourly: 2 output columns (0.0 MiB) spilled to disk until the training set " \
        "is written" in spilled.stderr
    assert "; the output columns of 1 view spilled to disk until written: 0 MiB)" in spilled.stderr
    a = pacsv.read_csv(repo / "a.csv")
    assert a.column_names == ["driver_id", "event_timestamp", "label",
                              "driver_hourly__conv_rate", "driver_hourly__avg_daily_trips"]
    assert (repo / "a.csv").read_text() == (repo / "b.csv").read_text()


def test_entity_rows_too_many_to_stream_are_matched_in_groups_without_spilling(cli, tmp_path):
    # 4,000 entity rows need 344 KiB to stream, more than the join's share of a 384 KiB budget
    # (what is left after the entity rows and the output); the source's 20,000 rows of keys and
    # times would not fit either. Two reads of the keys and times, one per half of the entity
    # rows, do: nothing is spilled, and the training set is the one a large budget gives.
    repo = new_repo(tmp_path, "groups", stats_defs("driver", "driver_id", rate="float64"))
    ts = pa.timestamp("us", tz="UTC")
    day = 86_400_000_000
    pq.write_table(pa.table({
        "driver_id": pa.array([i % 2000 for i in range(20_000)], pa.int64()),
        "event_timestamp": pa.array([(i // 2000) * day for i in range(20_000)], ts),
        "rate": pa.array([float(i) for i in range(20_000)])}), repo / "data" / "stats.parquet")
    pq.write_table(pa.table({
        "driver_id": pa.array([(i * 7) % 2100 for i in range(4000)], pa.int64()),
        "event_timestamp": pa.array([(i % 12) * day + day // 2 for i in range(4000)], ts)}),
        repo / "entities.parquet")
    cli("-C", repo, "apply", check=True)
    run = ["-C", repo, "get-historical-features", "--entities", repo / "entities.parquet",
           "--features", "stats:rate"]
    cli(*run, "-o", repo / "large.parquet", check=True)
    small = cli(*run, "-o", repo / "small.parquet", "--memory-budget", "384KiB", check=True)
    assert "stats: streaming 4.00K entity rows takes 0.3 MiB, more than the join's 0.3 MiB " \
        "share of the memory budget: matched in 2 groups of entity rows, reading the keys and " \
        "times once per group" in small.stderr, small.stderr
    assert "nothing spilled" in small.stderr and "MiB spilled" not in small.stderr
    assert "stats: 40.0K rows read of 1 files" in small.stderr  # twice the source's rows
    large, grouped = pq.read_table(repo / "large.parquet"), pq.read_table(repo / "small.parquet")
    assert grouped.equals(large)
    assert large.column("rate").null_count < 4000  # most rows found a value


def bay_stats_repo(tmp_path, cli, n=600_000):
    """A repository whose view `stats` (20,000 rows of 2,000 bays over 10 days) is joined to `n`
    entity rows (entities.parquet, in row groups of 250,000), applied."""
    repo = new_repo(tmp_path, "spilled",
                    stats_defs("bay", "bay_id", rate="float64", zone="string", busy="bool"))
    ts = pa.timestamp("us", tz="UTC")
    day = 86_400_000_000
    pq.write_table(pa.table({
        "bay_id": pa.array([i % 2000 for i in range(20_000)], pa.int64()),
        "event_timestamp": pa.array([(i // 2000) * day for i in range(20_000)], ts),
        "rate": pa.array([None if i % 7 == 0 else float(i) for i in range(20_000)]),
        "zone": pa.array([None if i % 5 == 0 else f"zone-{i % 13}" for i in range(20_000)]),
        "busy": pa.array([None if i % 11 == 0 else i % 3 == 0 for i in range(20_000)])}),
        repo / "data" / "stats.parquet")
    pq.write_table(pa.table({
        "bay_id": pa.array([(i * 7) % 2100 for i in range(n)], pa.int64()),
        "event_timestamp": pa.array([(i % 12) * day + day // 2 for i in range(n)], ts)}),
        repo / "entities.parquet", row_group_size=250_000)
    cli("-C", repo, "apply", check=True)
    return repo


def test_views_columns_past_half_the_budget_are_spilled_and_written_row_group_by_row_group(
        cli, tmp_path):
    # 600,000 entity rows (three output row groups of 256 Ki rows): with 8 MiB the entity rows
    # alone pass half the budget, so the view's columns are spilled to disk as soon as they are
    # joined and read back one row group at a time. The file is byte for byte the one a budget
    # that holds everything writes, and the spill folder is left empty.
    n = 600_000
    repo = bay_stats_repo(tmp_path, cli, n)
    spill = tmp_path / "spill"
    spill.mkdir()
    run = ["-C", repo, "get-historical-features", "--entities", repo / "entities.parquet",
           "--features", "stats:rate,stats:zone,stats:busy", "--spill-dir", spill]
    large = cli(*run, "-o", repo / "large.parquet", "--memory-budget", "2GiB", check=True)
    assert "stats: 3 output columns (" in large.stderr
    assert "held in memory until the training set is written" in large.stderr
    assert "spilled to disk until written" not in large.stderr
    small = cli(*run, "-o", repo / "small.parquet", "--memory-budget", "8MiB", check=True)
    assert "stats: 3 output columns (" in small.stderr
    assert "spilled to disk until the training set is written (with the 9.3 MiB of entity rows " \
        "and columns held they would pass half the 8.0 MiB memory budget), then read back one " \
        "row group at a time" in small.stderr, small.stderr
    assert "; the output columns of 1 view spilled to disk until written: " in small.stderr
    assert (repo / "small.parquet").read_bytes() == (repo / "large.parquet").read_bytes()
    assert pq.ParquetFile(repo / "small.parquet").metadata.num_row_groups == 3
    table = pq.read_table(repo / "small.parquet")
    assert table.num_rows == n and table.column("zone").null_count > 0
    assert list(spill.iterdir()) == []
    # CSV: the same text either way.
    cli(*run, "-o", repo / "large.csv", check=True)
    cli(*run, "-o", repo / "small.csv", "--memory-budget", "8MiB", "-q", check=True)
    assert (repo / "small.csv").read_text() == (repo / "large.csv").read_text()
    assert list(spill.iterdir()) == []


def test_the_summary_counts_the_row_groups_the_join_left_unread(cli, tmp_path):
    # 8 row groups of 1,000 bays each, all in the time range: the entity rows want bays of row
    # groups 0 and 5 only, so the join's second read (the features) leaves the other 6 unread.
    repo = new_repo(tmp_path, "skipped", stats_defs("bay", "bay_id", rate="float64"))
    ts = pa.timestamp("us", tz="UTC")
    pq.write_table(pa.table({
        "bay_id": pa.array(range(8000), pa.int64()),
        "event_timestamp": pa.array([1_000_000 * i for i in range(8000)], ts),
        "rate": pa.array([float(i) for i in range(8000)])}),
        repo / "data" / "stats.parquet", row_group_size=1000)
    pq.write_table(pa.table({
        "bay_id": pa.array([3, 5001, 99_999], pa.int64()),
        "event_timestamp": pa.array([10_000_000_000] * 3, ts)}), repo / "entities.parquet")
    cli("-C", repo, "apply", check=True)
    run = ["-C", repo, "get-historical-features", "--entities", repo / "entities.parquet",
           "--features", "stats:rate"]
    out = cli(*run, "-o", repo / "train.parquet", check=True)
    assert "stats: 8.00K rows read of 1 files (0 pruned), 0 of 8 row groups pruned, 2 of 3 " \
        "entity rows matched, 6 row groups unread (none of their rows chosen)\n" in out.stderr, \
        out.stderr
    assert pq.read_table(repo / "train.parquet").column("rate").to_pylist() == [3.0, 5001.0, None]
    # -q: no per-view figures, these neither.
    quiet = cli(*run, "-o", repo / "quiet.parquet", "-q", check=True)
    assert "row groups unread" not in quiet.stderr and "rows read of" not in quiet.stderr, \
        quiet.stderr


def spill_folders(spill):
    """The spill folders under `spill` that have their lock file (their process has locked it)."""
    return {p for p in spill.iterdir() if (p / "granary.lock").exists()}


def start_spilling(cli, run, spill, output, known):
    """Starts `granary *run -o output` and returns it once it has a spill folder not in `known`,
    with that folder; a run that ended before one was seen is started again."""
    for _ in range(5):
        proc = subprocess.Popen([str(cli.binary), *map(str, run), "-o", output], cwd=cli.cwd,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while proc.poll() is None:
            new = spill_folders(spill) - known
            if new:
                return proc, new
            time.sleep(0.002)
    pytest.fail("no run was seen with a spill folder")


def test_a_killed_runs_spill_folders_are_removed_by_the_next_run_a_live_runs_are_not(
        cli, tmp_path):
    # With 2 MiB the join partitions and spills, and then the output columns do: the run has a
    # spill folder (granary-spill-*, granary-output-*) for most of its time. One run is killed
    # outright (SIGKILL: no destructor runs), which leaves its folder; another is stopped
    # (SIGSTOP) holding its own. The next run removes the first's and never the second's.
    repo = bay_stats_repo(tmp_path, cli)
    spill = tmp_path / "spill"
    spill.mkdir()
    run = ["-C", repo, "get-historical-features", "--entities", repo / "entities.parquet",
           "--features", "stats:rate,stats:zone,stats:busy", "--spill-dir", spill,
           "--memory-budget", "2MiB", "-q"]
    killed = stopped = None
    try:
        # The live one first: a run removes stale folders as it starts, so the killed one's
        # would be gone before the run under test started.
        stopped, _ = start_spilling(cli, run, spill, repo / "stopped.parquet", set())
        stopped.send_signal(signal.SIGSTOP)
        live = spill_folders(spill)
        killed, _ = start_spilling(cli, run, spill, repo / "killed.parquet", live)
        killed.kill()
        killed.wait()
        left = spill_folders(spill) - live  # all it made before it died
        assert left and all(p.name.startswith(("granary-spill-", "granary-output-")) for p in left)
        assert all(folder.exists() for folder in live)  # the killed run's own sweep left them

        out = cli(*run, "-o", repo / "next.parquet", check=True)
        for folder in left:
            assert f"removed {folder}: a spill folder of a granary process that is gone" \
                in out.stderr, out.stderr
            assert not folder.exists()
        for folder in live:
            assert folder.exists() and str(folder) not in out.stderr

        stopped.send_signal(signal.SIGCONT)
        assert stopped.wait(timeout=120) == 0
        assert (repo / "stopped.parquet").read_bytes() == (repo / "next.parquet").read_bytes()
        # (Only a folder the killed run was making at the very moment it died, not yet locked,
        # could be left: whose it is cannot be told.)
        assert spill_folders(spill) == set()
        assert not (repo / "killed.parquet").exists()
    finally:
        for proc in (killed, stopped):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait()


def test_a_killed_runs_unfinished_output_is_removed_by_the_next_run_of_that_output(
        cli, tmp_path):
    # The output is written into ".NAME.tmp-XXXXXX" beside it and renamed when complete; a run
    # killed outright (SIGKILL) while writing leaves that file. The next run writing NAME removes
    # it once it is old enough that no writer can be between creating and locking it (10 s).
    repo = bay_stats_repo(tmp_path, cli)
    out = repo / "train.parquet"
    run = ["-C", repo, "get-historical-features", "--entities", repo / "entities.parquet",
           "--features", "stats:rate,stats:zone,stats:busy", "--memory-budget", "2MiB", "-q",
           "-o", out]
    left = []
    for _ in range(5):
        proc = subprocess.Popen([str(cli.binary), *map(str, run)], cwd=cli.cwd,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while proc.poll() is None and not left:
                left = list(repo.glob(".train.parquet.tmp-*"))
                time.sleep(0.002)
        finally:
            proc.kill()
            proc.wait()
        if left and left[0].exists():
            break
        left = []
    assert left, "no run was seen writing its output"
    assert not out.exists()
    aged = time.time() - 60
    os.utime(left[0], (aged, aged))

    done = cli(*run[:-1], out, check=True)
    assert f"removed {left[0]}: the unfinished output of a run that was killed" in done.stderr, \
        done.stderr
    assert not left[0].exists()
    assert sorted(p.name for p in repo.glob("*train.parquet*")) == ["train.parquet"]
    assert pq.read_table(out).num_rows == 600_000


def test_errors_are_clear_and_leave_no_output(cli, tmp_path):
    repo = make_repo(tmp_path, cli)
    (repo / "keep.parquet").write_bytes(b"previous result")
    bad = cli("-C", repo, "get-historical-features", "--entities", repo / "entities.csv",
              "--features", "driver_hourly:conv_rat", "-o", repo / "keep.parquet", check=False)
    assert bad.returncode == 1
    assert "feature view 'driver_hourly' has no feature 'conv_rat', did you mean 'conv_rate'?" \
        in bad.stderr
    assert (repo / "keep.parquet").read_bytes() == b"previous result"

    missing = cli("-C", repo, "get-historical-features", "--entities", repo / "nope.csv",
                  "--features", "driver_hourly:conv_rate", "-o", repo / "x.parquet", check=False)
    assert "nope.csv: no such file" in missing.stderr
    budget = cli("-C", repo, "get-historical-features", "--entities", repo / "entities.csv",
                 "--features", "driver_hourly:conv_rate", "-o", repo / "x.parquet",
                 "--memory-budget", "lots", check=False)
    assert "--memory-budget 'lots' is not a size" in budget.stderr
    both = cli("-C", repo, "get-historical-features", "--entities", repo / "entities.csv",
               "-o", repo / "x.parquet", check=False)
    assert "give --features view:feature,... or --feature-service NAME" in both.stderr
    # A spill folder that does not exist is refused before any work (a run that spills late
    # would otherwise fail only after minutes); so is a file where the folder should be.
    for where, says in [(repo / "no-such-dir", "no such folder; create it (mkdir -p "),
                        (repo / "entities.csv", "not a folder")]:
        spill = cli("-C", repo, "get-historical-features", "--entities", repo / "entities.csv",
                    "--features", "driver_hourly:conv_rate", "-o", repo / "x.parquet",
                    "--spill-dir", where, check=False)
        assert spill.returncode != 0
        assert f"--spill-dir: {where}: {says}" in spill.stderr, spill.stderr
        assert not (repo / "x.parquet").exists()

    (repo / "data" / "driver_stats.parquet").write_bytes(b"PAR1 garbage")
    corrupt = cli("-C", repo, "get-historical-features", "--entities", repo / "entities.csv",
                  "--features", "driver_hourly:conv_rate", "-o", repo / "x.parquet", check=False)
    assert corrupt.returncode == 1
    assert "driver_stats.parquet is not a readable Parquet file" in corrupt.stderr
    assert not (repo / "x.parquet").exists()
    assert not list(repo.glob(".x.parquet.tmp-*"))


DELTA_SCHEMA = {"type": "struct", "fields": [
    {"name": "driver_id", "type": "long", "nullable": True, "metadata": {}},
    {"name": "ts", "type": "timestamp", "nullable": True, "metadata": {}},
    {"name": "score", "type": "double", "nullable": True, "metadata": {}},
]}


def write_delta_table(root):
    """A Delta table with removes and a checkpoint, the way Spark lays one out:
    v0 adds f0, f1; v1 removes f0 and adds f2 (checkpoint at v1); v2 removes f1 and adds f3.
    The JSON commits up to the checkpoint are deleted, so replay must start from it."""
    log = root / "_delta_log"
    log.mkdir(parents=True)
    files = {
        "f0.parquet": [(1, "2024-01-01T00:00:00Z", 0.0)],   # removed in v1
        "f1.parquet": [(1, "2024-01-01T01:00:00Z", 1.0)],   # removed in v2
        "f2.parquet": [(1, "2024-01-01T00:30:00Z", 2.0), (2, "2024-01-01T00:00:00Z", 2.5)],
        "f3.parquet": [(2, "2024-01-01T02:00:00Z", 3.0)],
    }
    for name, rows in files.items():
        pq.write_table(pa.table({
            "driver_id": pa.array([r[0] for r in rows], pa.int64()),
            "ts": pa.array([r[1] for r in rows], pa.string()).cast(pa.timestamp("us", tz="UTC")),
            "score": pa.array([r[2] for r in rows], pa.float64()),
        }), root / name)

    def add(name):
        return {"path": name, "partitionValues": {}, "size": (root / name).stat().st_size,
                "modificationTime": 0, "dataChange": True}

    protocol = {"minReaderVersion": 1, "minWriterVersion": 2}
    metadata = {"id": "t", "format": {"provider": "parquet", "options": {}},
                "schemaString": json.dumps(DELTA_SCHEMA), "partitionColumns": [],
                "configuration": {}, "createdTime": 0}
    commits = [
        [{"protocol": protocol}, {"metaData": metadata}, {"add": add("f0.parquet")},
         {"add": add("f1.parquet")}],
        [{"remove": {"path": "f0.parquet", "deletionTimestamp": 1, "dataChange": True}},
         {"add": add("f2.parquet")}],
        [{"remove": {"path": "f1.parquet", "deletionTimestamp": 2, "dataChange": True}},
         {"add": add("f3.parquet")}],
    ]
    for version, actions in enumerate(commits):
        (log / f"{version:020}.json").write_text("\n".join(json.dumps(a) for a in actions) + "\n")
    # The checkpoint of version 1: one row per action of the state (protocol, metaData, adds).
    str_map = pa.map_(pa.string(), pa.string())
    add_type = pa.struct([("path", pa.string()), ("partitionValues", str_map),
                          ("size", pa.int64()), ("modificationTime", pa.int64()),
                          ("dataChange", pa.bool_()), ("stats", pa.string())])
    meta_type = pa.struct([("id", pa.string()), ("schemaString", pa.string()),
                           ("partitionColumns", pa.list_(pa.string())),
                           ("configuration", str_map)])
    proto_type = pa.struct([("minReaderVersion", pa.int32()), ("minWriterVersion", pa.int32())])
    live = [add("f1.parquet"), add("f2.parquet")]
    adds = [None, None] + [dict(a, partitionValues=[], stats=None) for a in live]
    metas = [None, {"id": "t", "schemaString": json.dumps(DELTA_SCHEMA), "partitionColumns": [],
                    "configuration": []}, None, None]
    protos = [protocol, None, None, None]
    pq.write_table(pa.table({"protocol": pa.array(protos, proto_type),
                             "metaData": pa.array(metas, meta_type),
                             "add": pa.array(adds, add_type)}),
                   log / f"{1:020}.checkpoint.parquet")
    (log / "_last_checkpoint").write_text(json.dumps({"version": 1, "size": 4}))
    (log / f"{0:020}.json").unlink()
    (log / f"{1:020}.json").unlink()


def test_delta_source_with_removes_and_a_checkpoint(cli, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "granary.yaml").write_text("project: delta\n")
    (repo / "features.yaml").write_text("""
entities:
  - {name: driver, join_keys: [driver_id], value_type: int64}
data_sources:
  - {name: scores, type: delta, path: data/scores, timestamp_field: ts}
feature_views:
  - name: driver_scores
    entities: [driver]
    source: scores
    ttl: 1d
    schema:
      - {name: score, type: float64}
""")
    write_delta_table(repo / "data" / "scores")
    cli("-C", repo, "apply", check=True)
    (repo / "e.csv").write_text("driver_id,event_timestamp\n"
                                "1,2024-01-01T00:10:00Z\n"    # f0 (removed) would give 0.0
                                "1,2024-01-01T03:00:00Z\n"    # f1 (removed) would give 1.0
                                "2,2024-01-01T01:00:00Z\n"
                                "2,2024-01-01T02:00:00Z\n")
    cli("-C", repo, "get-historical-features", "--entities", repo / "e.csv",
        "--features", "driver_scores:score", "-o", repo / "out.parquet", check=True)
    scores = pq.read_table(repo / "out.parquet").column("score").to_pylist()
    assert scores == [None, 2.0, 2.5, 3.0]

    (repo / "data" / "scores" / "f3.parquet").unlink()
    gone = cli("-C", repo, "get-historical-features", "--entities", repo / "e.csv",
               "--features", "driver_scores:score", "-o", repo / "out2.parquet", check=False)
    assert gone.returncode == 1
    assert "f3.parquet: the file does not exist" in gone.stderr


def starter_repo(cli, tmp_path):
    """`granary init`'s repository, applied (needs no shared test data)."""
    cli("init", "shop", check=True)
    repo = tmp_path / "shop"
    cli("-C", repo, "apply", check=True)
    return repo


def test_a_header_only_csv_entity_file_gives_an_empty_result(cli, tmp_path):
    repo = starter_repo(cli, tmp_path)
    (repo / "none.csv").write_text("customer_id,event_timestamp\n")
    for output in ["out.csv", "out.parquet"]:
        cli("-C", repo, "get-historical-features", "--entities", repo / "none.csv",
            "--feature-service", "customer_risk_v1", "-o", repo / output, "-q", check=True)
    table = pq.read_table(repo / "out.parquet")
    assert table.num_rows == 0
    assert table.column_names == ["customer_id", "event_timestamp", "payment_failures_30d",
                                  "failure_rate_90d", "tenure_days"]
    assert (repo / "out.csv").read_text().splitlines() == [
        '"customer_id","event_timestamp","payment_failures_30d","failure_rate_90d","tenure_days"']


def test_data_errors_name_the_file_the_column_and_the_row(cli, tmp_path):
    repo = starter_repo(cli, tmp_path)
    # A CSV join key that is not an int64 (Arrow's CSV conversion).
    (repo / "bad.csv").write_text("customer_id,event_timestamp\n1001,2026-01-02T00:00:00Z\n"
                                  "1002,2026-01-02T00:00:00Z\n10x3,2026-01-02T00:00:00Z\n")
    out = cli("-C", repo, "get-historical-features", "--entities", repo / "bad.csv",
              "--feature-service", "customer_risk_v1", "-o", repo / "o.csv", "-q", check=False)
    assert f"{repo / 'bad.csv'}: column 'customer_id', row 3 (line 4): '10x3' is not a valid " \
           "int64" in out.stderr, out.stderr
    # A Parquet string column read as the int64 join key (Arrow's cast).
    pq.write_table(pa.table({
        "customer_id": ["1001", "1002", "x"],
        "event_timestamp": pa.array([0, 1, 2], pa.timestamp("us", tz="UTC"))}),
        repo / "strings.parquet")
    out = cli("-C", repo, "get-historical-features", "--entities", repo / "strings.parquet",
              "--feature-service", "customer_risk_v1", "-o", repo / "o.csv", "-q", check=False)
    assert f"{repo / 'strings.parquet'}: column 'customer_id', row 3: 'x' is not a valid int64" \
        in out.stderr, out.stderr
    # An entity time that is not a time.
    (repo / "times.csv").write_text("customer_id,event_timestamp\n1001,2026-01-02\n1002,later\n")
    out = cli("-C", repo, "get-historical-features", "--entities", repo / "times.csv",
              "--feature-service", "customer_risk_v1", "-o", repo / "o.csv", "-q", check=False)
    assert f"{repo / 'times.csv'}: column 'event_timestamp', row 2: 'later' is not a timestamp" \
        in out.stderr, out.stderr


def test_csv_output_writes_timestamps_in_rfc_3339(cli, tmp_path):
    repo = starter_repo(cli, tmp_path)
    sample = pq.read_table(repo / "data" / "customer_stats.parquet")
    newest = max(sample.column("event_timestamp").to_pylist())
    (repo / "e.csv").write_text(f"customer_id,event_timestamp\n1001,{newest.isoformat()}\n")
    cli("-C", repo, "get-historical-features", "--entities", repo / "e.csv",
        "--feature-service", "customer_risk_v1", "-o", repo / "o.csv", "-q", check=True)
    lines = (repo / "o.csv").read_text().splitlines()
    assert lines[1].startswith(f'1001,"{newest.strftime("%Y-%m-%dT%H:%M:%SZ")}",'), lines


def test_sources_the_offline_engine_cannot_read_are_refused_naming_the_engine_that_can(cli, tmp_path):
    repo = make_repo(tmp_path, cli)
    table_defs = DEFS.replace(
        "  - {name: driver_stats, path: data/driver_stats.parquet, timestamp_field: event_timestamp,",
        "  - {name: driver_table, table: main.fleet.driver_stats, timestamp_field: event_timestamp}\n"
        "  - {name: driver_stats, path: data/driver_stats.parquet, timestamp_field: event_timestamp,")
    (repo / "features.yaml").write_text(table_defs)
    refused = cli("-C", repo, "apply", check=False)
    assert refused.returncode == 1
    assert "data source 'driver_table' reads a table (main.fleet.driver_stats), which the embedded " \
        "engine (offline_store type file) cannot" in refused.stderr
    assert "offline_store: {type: spark" in refused.stderr
    # The registry still holds the definitions applied before: retrieval works as it did.
    out = repo / "train.parquet"
    cli("-C", repo, "get-historical-features", "--entities", repo / "entities.csv",
        "--feature-service", "driver_v1", "-o", out, check=True)
    assert pq.read_table(out).num_rows == 5


def test_the_offline_store_type_chooses_the_engine(cli, tmp_path):
    repo = make_repo(tmp_path, cli)
    (repo / "granary.yaml").write_text("project: hist\noffline_store: {type: spark}\n")
    spark = cli("-C", repo, "get-historical-features", "--entities", repo / "entities.csv",
                "--feature-service", "driver_v1", "-o", repo / "x.parquet", check=False)
    assert spark.returncode == 1
    # The Spark engine needs its cluster's address; the message says how to give one.
    assert "offline_store type spark needs remote" in spark.stderr
    assert "granary.yaml:2" in spark.stderr
    assert not (repo / "x.parquet").exists()
    (repo / "granary.yaml").write_text("project: hist\noffline_store: {type: file}\n")
    cli("-C", repo, "get-historical-features", "--entities", repo / "entities.csv",
        "--feature-service", "driver_v1", "-o", repo / "x.parquet", check=True)
    assert pq.read_table(repo / "x.parquet").num_rows == 5
