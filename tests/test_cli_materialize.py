"""materialize, materialize-incremental, status and schedule end to end: real CLI processes, real
files, a real redis-server; a kill -9 and a SIGTERM in the middle of a run."""
import datetime as dt
import fcntl
import json
import os
import signal
import subprocess
import time
import urllib.request

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from redis_helpers import free_port, redis_cli, start_redis, stop_redis

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)

DEFINITIONS = """
entities:
  - {name: customer, join_keys: [customer_id], value_type: int64}
data_sources:
  - {name: payments, path: data/payments, timestamp_field: event_timestamp,
     created_timestamp_column: created}
feature_views:
  - name: risk
    entities: [customer]
    source: payments
    ttl: 2d
    schema:
      - {name: score, type: float64}
      - {name: failures, type: int64}
  - name: risk_weekly
    entities: [customer]
    source: payments
    ttl: 7d
    schema:
      - {name: score, type: float64}
"""


def rfc3339(t):
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def redis(tmp_path):
    """A redis-server on a free port: (port, process)."""
    port = free_port()
    proc = start_redis(port, tmp_path)
    try:
        yield port, proc
    finally:
        stop_redis(proc)
def write_rows(path, ids, at, score_of=lambda i: i * 0.5):
    n = len(ids)
    table = pa.table({
        "customer_id": pa.array(ids, pa.int64()),
        "event_timestamp": pa.array([at] * n, pa.timestamp("us", tz="UTC")),
        "created": pa.array([at] * n, pa.timestamp("us", tz="UTC")),
        "score": pa.array([score_of(i) for i in ids], pa.float64()),
        "failures": pa.array([i % 7 for i in ids], pa.int64()),
    })
    pq.write_table(table, path, row_group_size=50_000)


def make_repo(cli, tmp_path, online_store="{type: rocksdb, path: data/online}"):
    repo = tmp_path / "repo"
    (repo / "data" / "payments").mkdir(parents=True)
    (repo / "granary.yaml").write_text(f"project: matcli\nonline_store: {online_store}\n")
    (repo / "features.yaml").write_text(DEFINITIONS)
    write_rows(repo / "data" / "payments" / "a.parquet", [1, 2, 3], NOW - dt.timedelta(hours=3))
    cli("-C", repo, "apply", check=True)
    return repo


def online_scores(cli, repo, ids):
    out = cli("-C", repo, "get-online-features", "--features", "risk:score",
              "--entity", "customer_id=" + ",".join(map(str, ids)), check=True)
    column = json.loads(out.stdout)["results"][1]
    return dict(zip(ids, zip(column["values"], column["statuses"])))


def test_incremental_runs_pick_up_new_rows_and_status_reports_staleness(cli, tmp_path):
    repo = make_repo(cli, tmp_path)
    # The staleness checks below compare with the time status runs at: anchored to the test's
    # own time, not the module's (imported when pytest collected, maybe minutes before).
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    first_end = now - dt.timedelta(minutes=30)
    first = cli("-C", repo, "materialize-incremental", rfc3339(first_end), "-q", check=True)
    assert "risk: " in first.stdout and "3 entities: 3 written, 0 skipped" in first.stdout, first.stdout
    assert f"watermark {rfc3339(first_end)}" in first.stdout
    assert online_scores(cli, repo, [1, 2, 4]) == {
        1: (0.5, "PRESENT"), 2: (1.0, "PRESENT"), 4: (None, "NOT_FOUND")}

    # A newer row for customer 2 and a late, older one for customer 3.
    write_rows(repo / "data" / "payments" / "b.parquet", [2], now - dt.timedelta(minutes=10),
               score_of=lambda i: 20.0)
    write_rows(repo / "data" / "payments" / "c.parquet", [3], now - dt.timedelta(hours=5),
               score_of=lambda i: 30.0)
    second = cli("-C", repo, "materialize-incremental", "now", "--views", "risk", "-q", check=True)
    assert "1 entities: 1 written" in second.stdout, second.stdout
    assert online_scores(cli, repo, [2, 3]) == {2: (20.0, "PRESENT"), 3: (1.5, "PRESENT")}

    # A backfill over the late row: write-if-newer keeps customer 3's newer value.
    backfill = cli("-C", repo, "materialize", rfc3339(now - dt.timedelta(hours=6)),
                   rfc3339(now - dt.timedelta(hours=4)), "--views", "risk", "-q", check=True)
    assert "1 entities: 0 written, 1 skipped" in backfill.stdout, backfill.stdout
    assert online_scores(cli, repo, [3]) == {3: (1.5, "PRESENT")}

    # risk is fresh, risk_weekly's watermark is 30 minutes old.
    ok = cli("-C", repo, "status", "--max-staleness", "1h")
    assert ok.returncode == 0, ok.stderr
    assert "risk: watermark" in ok.stdout and "3 of the last 3 runs succeeded" in ok.stdout
    stale = cli("-C", repo, "status", "--max-staleness", "10m")
    assert stale.returncode == 2, stale.stdout + stale.stderr
    assert "risk_weekly (watermark" in stale.stderr and "risk (" not in stale.stderr
    machine = cli("-C", repo, "status", "--json", "--max-staleness", "10m")
    assert machine.returncode == 2
    status = json.loads(machine.stdout)
    assert status["stale"] == ["risk_weekly"]
    views = {v["view"]: v for v in status["views"]}
    assert views["risk_weekly"]["watermark"] == rfc3339(first_end)
    assert views["risk_weekly"]["staleness_seconds"] >= 30 * 60
    assert views["risk"]["last_run"]["status"] == "succeeded"
    assert views["risk"]["last_run"]["trigger"] == "materialize"
    assert views["risk"]["recent_runs"] == 3 and views["risk"]["recent_succeeded"] == 3


def test_status_names_views_never_materialized_and_bad_arguments_are_clear(cli, tmp_path):
    repo = make_repo(cli, tmp_path)
    never = cli("-C", repo, "status", "--max-staleness", "26h")
    assert never.returncode == 2
    assert "risk (never materialized)" in never.stderr and "risk_weekly (never" in never.stderr
    assert "never materialized" in never.stdout
    bad_end = cli("-C", repo, "materialize-incremental", "yesterday", check=False)
    assert "END 'yesterday'" in bad_end.stderr and "or write 'now'" in bad_end.stderr
    future = cli("-C", repo, "materialize-incremental", "2099-01-01", check=False)
    assert "is in the future" in future.stderr
    unknown = cli("-C", repo, "materialize-incremental", "now", "--views", "rsik", check=False)
    assert "did you mean 'risk'?" in unknown.stderr
    cron = cli("-C", repo, "schedule", "--cron", "0 25 * * *", check=False)
    assert "hour field: 25 is out of range 0-23" in cron.stderr
    budget = cli("-C", repo, "materialize-incremental", "now", "--memory-budget", "lots",
                 check=False)
    assert "--memory-budget 'lots' is not a size" in budget.stderr
    spill = cli("-C", repo, "materialize-incremental", "now", "--spill-dir", repo / "gone",
                check=False)
    assert spill.returncode != 0
    assert "--spill-dir: " + str(repo / "gone") + ": no such folder" in spill.stderr, spill.stderr
    assert "never materialized" in cli("-C", repo, "status").stdout


def store_write_buffer_size(store):
    """write_buffer_size in the newest OPTIONS file RocksDB wrote into the store's folder: what
    the last process to open it ran with."""
    newest = max(store.glob("OPTIONS-*"), key=lambda p: int(p.name.split("-")[1]))
    sizes = [line.split("=")[1] for line in newest.read_text().splitlines()
             if line.strip().startswith("write_buffer_size=")]
    assert len(sizes) == 1, newest.read_text()
    return int(sizes[0])


def test_the_memory_budget_sizes_the_embedded_stores_own_buffers_and_says_so(cli, tmp_path):
    repo = make_repo(cli, tmp_path)
    end = rfc3339(NOW - dt.timedelta(minutes=30))
    small = cli("-C", repo, "materialize-incremental", end, "-q", "--memory-budget", "64MiB",
                check=True)
    assert ("(memory budget 64MiB; RocksDB block cache 16 MiB and write buffers 2 x 8 MiB, "
            "sized from the memory budget)") in small.stderr, small.stderr
    assert store_write_buffer_size(repo / "data" / "online") == 8 << 20
    # The default budget (1 GiB) gives a server's sizes.
    default = cli("-C", repo, "materialize-incremental", "now", "-q", check=True)
    assert "block cache 256 MiB and write buffers 2 x 64 MiB" in default.stderr, default.stderr
    assert store_write_buffer_size(repo / "data" / "online") == 64 << 20
    assert online_scores(cli, repo, [1]) == {1: (0.5, "PRESENT")}


def test_a_second_run_is_refused_while_one_holds_the_repository(cli, tmp_path):
    repo = make_repo(cli, tmp_path)
    with open(repo / "data" / "registry.db.materialize.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write("a test holding the lock as pid 1")
        lock.flush()
        refused = cli("-C", repo, "materialize-incremental", "now", check=False)
    assert "another materialization of this repository is running (a test holding" \
        in refused.stderr, refused.stderr
    cli("-C", repo, "materialize-incremental", "now", check=True)


def redis_repo(cli, tmp_path, port, customers):
    repo = make_repo(cli, tmp_path, f'{{type: redis, connection_string: "127.0.0.1:{port}"}}')
    write_rows(repo / "data" / "payments" / "big.parquet", list(range(10, 10 + customers)),
               NOW - dt.timedelta(hours=2))
    return repo


def start_run(granary_bin, repo, *args):
    return subprocess.Popen([str(granary_bin), "-C", str(repo), "materialize-incremental", "now",
                             "--views", "risk", "--write-threads", "1", "--write-batch-rows",
                             "200", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_keys(port, proc):
    """Waits until the run has written some keys to Redis; returns how many."""
    for _ in range(20_000):
        n = int(redis_cli(port, "dbsize") or 0)
        if n > 0:
            return n
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.001)
    pytest.fail("the run wrote nothing")


def test_kill_9_mid_run_leaves_the_watermark_and_a_rerun_converges(cli, granary_bin, tmp_path,
                                                                     redis):
    port, server = redis
    customers = 100_000
    repo = redis_repo(cli, tmp_path, port, customers)
    proc = start_run(granary_bin, repo)
    wait_for_keys(port, proc)
    server.send_signal(signal.SIGSTOP)  # the run cannot finish now...
    proc.kill()  # ...and dies in the middle (kill -9)
    proc.wait(timeout=30)
    server.send_signal(signal.SIGCONT)
    written = int(redis_cli(port, "dbsize"))
    assert 0 < written < customers + 3, written

    status = json.loads(cli("-C", repo, "status", "--json").stdout)
    risk = {v["view"]: v for v in status["views"]}["risk"]
    assert risk["watermark"] is None
    assert risk["last_run"]["status"] == "failed"
    assert "interrupted" in risk["last_run"]["error"]

    rerun = cli("-C", repo, "materialize-incremental", "now", "--views", "risk", "-q", check=True)
    assert "written, 0 skipped" in rerun.stdout, rerun.stdout
    # One key per customer, and the hash of the view markers (docs/ONLINE_LAYOUT.md).
    assert int(redis_cli(port, "dbsize")) == customers + 3 + 1
    scores = online_scores(cli, repo, [1, 10, 10 + customers - 1])
    assert scores == {1: (0.5, "PRESENT"), 10: (5.0, "PRESENT"),
                      10 + customers - 1: ((10 + customers - 1) * 0.5, "PRESENT")}
    runs = json.loads(cli("-C", repo, "status", "--json").stdout)["views"][0]
    assert runs["last_run"]["status"] == "succeeded" and runs["recent_runs"] == 2


def test_sigterm_mid_run_cancels_it_cleanly(cli, granary_bin, tmp_path, redis):
    port, server = redis
    repo = redis_repo(cli, tmp_path, port, 100_000)
    proc = start_run(granary_bin, repo)
    wait_for_keys(port, proc)
    server.send_signal(signal.SIGSTOP)  # hold the run in the middle of a write
    proc.send_signal(signal.SIGTERM)
    line = proc.stderr.readline()
    while line and "terminated: stopping" not in line:
        line = proc.stderr.readline()
    assert "terminated: stopping" in line
    server.send_signal(signal.SIGCONT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "cancelled" in err, err
    status = json.loads(cli("-C", repo, "status", "--json").stdout)
    risk = {v["view"]: v for v in status["views"]}["risk"]
    assert risk["watermark"] is None
    assert risk["last_run"]["status"] == "failed" and "cancelled" in risk["last_run"]["error"]


def test_schedule_runs_serves_metrics_and_stops_on_sigterm(granary_bin, cli, tmp_path):
    repo = make_repo(cli, tmp_path)
    proc = subprocess.Popen([str(granary_bin), "-C", str(repo), "schedule", "--cron", "0 2 * * *",
                             "--run-now", "--metrics-port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        log = []
        while True:
            line = proc.stderr.readline()
            assert line, "\n".join(log)
            log.append(line)
            if "serving http://127.0.0.1:" in line:
                port = int(line.split("127.0.0.1:")[1].split("/")[0])
            if "schedule: next run at" in line and port:
                break
        assert any("risk: " in l and "3 entities written" in l for l in log), log
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
        text = metrics.decode()
        assert 'granary_materialize_runs_total{view="risk",result="succeeded"} 1' in text, text
        assert 'granary_materialize_staleness_seconds{view="risk"}' in text
        assert 'granary_materialize_last_success_timestamp_seconds{view="risk"}' in text
        health = json.loads(
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10).read())
        assert health["status"] == "ok" and health["runs"] == 1 and not health["running"]
        assert health["next_run"].endswith("T02:00:00Z")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "schedule: stopped" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
