"""`granary status` tells the truth about failures and liveness: attempts that fail before any view
starts are on the record and alert (--max-failures, --max-staleness); a run killed with kill -9 and
not yet reaped is not "running now", and keeps the counts it wrote; the age of the newest data held
online is shown beside the watermark's. Real CLI processes, a real redis-server."""
import datetime as dt
import json
import os
import re
import signal
import subprocess
import time

import pytest

from redis_helpers import free_port, redis_cli, start_redis, stop_redis
from test_cli_materialize import NOW, make_repo, rfc3339, write_rows


@pytest.fixture
def redis(tmp_path):
    """A redis-server on a free port: (port, process)."""
    port = free_port()
    proc = start_redis(port, tmp_path)
    try:
        yield port, proc
    finally:
        stop_redis(proc)


def status_json(cli, repo):
    return {v["view"]: v for v in json.loads(cli("-C", repo, "status", "--json").stdout)["views"]}


def test_attempts_that_fail_before_any_view_starts_are_recorded_and_alert(cli, tmp_path, redis):
    port, _ = redis
    down = free_port()  # nothing listens there
    repo = make_repo(cli, tmp_path, f'{{type: redis, connection_string: "127.0.0.1:{down}"}}')
    failed = cli("-C", repo, "materialize-incremental", "now", check=False)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert f"127.0.0.1:{down}" in failed.stderr, failed.stderr

    # A store that refuses the credentials.
    (repo / "granary.yaml").write_text(
        f'project: matcli\nonline_store: {{type: redis, connection_string: "127.0.0.1:{port}"}}\n')
    redis_cli(port, "config", "set", "requirepass", "s3cret")
    refused = cli("-C", repo, "materialize-incremental", "now", check=False)
    assert refused.returncode == 1, refused.stdout + refused.stderr

    views = status_json(cli, repo)
    risk = views["risk"]
    assert risk["last_run"]["status"] == "failed"
    assert risk["last_run"]["error"] in refused.stderr, (risk["last_run"], refused.stderr)
    assert risk["recent_runs"] == 2 and risk["recent_succeeded"] == 0
    assert risk["consecutive_failures"] == 2
    assert views["risk_weekly"]["consecutive_failures"] == 2

    text = cli("-C", repo, "status")
    assert text.returncode == 0, text.stderr
    assert "0 of the last 2 runs succeeded; 2 failed in a row" in text.stdout, text.stdout
    alert = cli("-C", repo, "status", "--max-failures", "1")
    assert alert.returncode == 3, alert.stdout + alert.stderr
    assert "failing (more than 1 failed run in a row): risk (2 failed runs in a row" \
        in alert.stderr, alert.stderr
    assert cli("-C", repo, "status", "--max-failures", "2").returncode == 0
    stale = cli("-C", repo, "status", "--max-failures", "0", "--max-staleness", "1h")
    assert stale.returncode == 2, stale.stderr  # stale wins; both are named
    assert "risk (never materialized)" in stale.stderr and "failing" in stale.stderr
    machine = json.loads(cli("-C", repo, "status", "--json", "--max-failures", "0").stdout)
    assert machine["failing"] == ["risk", "risk_weekly"] and machine["max_failures"] == 0
    bad = cli("-C", repo, "status", "--max-failures", "-3")
    assert bad.returncode == 1 and "--max-failures must be 0 or more" in bad.stderr


def wait_until(predicate, what):
    for _ in range(3000):
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    pytest.fail(f"timed out waiting for {what}")


def is_zombie(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "Z"


def test_a_killed_unreaped_run_is_not_running_and_keeps_what_it_wrote(cli, granary_bin, tmp_path,
                                                                      redis):
    port, server = redis
    customers = 100_000
    repo = make_repo(cli, tmp_path, f'{{type: redis, connection_string: "127.0.0.1:{port}"}}')
    write_rows(repo / "data" / "payments" / "big.parquet", list(range(10, 10 + customers)),
               NOW - dt.timedelta(hours=2))
    proc = subprocess.Popen([str(granary_bin), "-C", str(repo), "materialize-incremental", "now",
                             "--views", "risk", "--write-threads", "1", "--write-batch-rows",
                             "200", "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            process_group=0)  # frozen below: see redis_helpers.start_redis
    try:
        # The run records its counts as it goes: wait until status shows some written. The run is
        # let go in short steps and frozen (SIGSTOP) while status looks, so that on a fast or a
        # loaded machine it cannot finish between two looks (the registry is in WAL mode: status
        # reads while the frozen run holds its lock and any open transaction).
        def running_with_counts():
            os.kill(proc.pid, signal.SIGCONT)
            time.sleep(0.02)
            os.kill(proc.pid, signal.SIGSTOP)
            assert proc.poll() is None, "the run ended before it was killed"
            risk = status_json(cli, repo)["risk"]
            return risk["running"] and risk["last_run"]["entities_written"] > 0 and risk
        running = wait_until(running_with_counts, "the run to record entities written")
        assert running["last_run"]["status"] == "running"
        server.send_signal(signal.SIGSTOP)  # the run cannot finish now...
        os.kill(proc.pid, signal.SIGKILL)  # ...and dies (kill -9) while frozen, left unreaped
        wait_until(lambda: is_zombie(proc.pid), "the killed run to become a zombie")
        server.send_signal(signal.SIGCONT)

        # The lock goes when the last thread of the killed process is gone, which may be a moment
        # after its main thread shows as a zombie; by pid (which a zombie keeps) it would never go.
        risk = wait_until(lambda: (lambda r: not r["running"] and r)(status_json(cli, repo)["risk"]),
                          "status to see the killed run's lock released")
        assert is_zombie(proc.pid)
        assert risk["last_run"]["status"] == "failed" and "interrupted" in risk["last_run"]["error"]
        assert risk["last_run"]["entities_written"] > 0

        cli("-C", repo, "materialize-incremental", "now", "--views", "risk", "-q", check=True)
        after = cli("-C", repo, "status")
        assert "running now" not in after.stdout, after.stdout
        assert is_zombie(proc.pid)  # still there, pid and all
        views = status_json(cli, repo)
        assert views["risk"]["last_run"]["status"] == "succeeded"
        last = views["risk"]["last_run"]
        assert last["entities_written"] + last["entities_skipped"] == customers + 3, last
    finally:
        server.send_signal(signal.SIGCONT)
        proc.kill()
        proc.wait(timeout=30)


def test_status_shows_the_age_of_the_newest_data_online_and_precise_durations(cli, tmp_path):
    repo = make_repo(cli, tmp_path)
    # The source's newest rows are 3 hours old, the watermark is now.
    cli("-C", repo, "materialize-incremental", "now", "-q", check=True)
    views = status_json(cli, repo)
    risk = views["risk"]
    newest = NOW - dt.timedelta(hours=3)
    assert risk["newest_event"] == rfc3339(newest)
    assert 3 * 3600 <= risk["data_age_seconds"] < 4 * 3600, risk
    assert risk["staleness_seconds"] < 3600
    assert risk["last_run"]["newest_event"] == rfc3339(newest)
    text = cli("-C", repo, "status").stdout
    # NOW was fixed when the module loaded: on a loaded machine minutes may have passed since.
    assert re.search(re.escape(f"newest data {rfc3339(newest)}") + r" \(3h[0-5][0-9]m old\)", text), text
    # Durations keep their precision: a sub-second run reads "0.4s" or "35ms", never "0s".
    finished = re.search(r"finished \S+ \(([0-9.]+)(m?s)\)", text)
    assert finished, text
    assert "." in finished.group(1) or finished.group(2) == "ms", text


PUSH_DEFINITIONS = """
entities:
  - {name: customer, join_keys: [customer_id], value_type: int64}
data_sources:
  - {name: payments, path: data/payments, timestamp_field: event_timestamp}
  - {name: payments_push, type: push, batch_source: payments}
feature_views:
  - name: risk_live
    entities: [customer]
    source: payments_push
    ttl: 2d
    schema:
      - {name: score, type: float64}
"""


def test_push_views_show_their_last_push_instead_of_never_materialized(cli, granary_bin,
                                                                       tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from test_online_data_loss import Server

    repo = tmp_path / "pushrepo"
    (repo / "data" / "payments").mkdir(parents=True)
    (repo / "granary.yaml").write_text("project: pushes\n")
    (repo / "features.yaml").write_text(PUSH_DEFINITIONS)
    pq.write_table(pa.table({
        "customer_id": pa.array([1], pa.int64()),
        "event_timestamp": pa.array([NOW - dt.timedelta(days=30)], pa.timestamp("us", tz="UTC")),
        "score": pa.array([0.5], pa.float64())}), repo / "data" / "payments" / "a.parquet")
    cli("-C", repo, "apply", check=True)
    before = cli("-C", repo, "status")
    assert "risk_live: never materialized nor pushed" in before.stdout, before.stdout

    server = Server(granary_bin, repo)
    try:
        body = json.dumps({"push_source_name": "payments_push", "to": "online",
                           "df": {"customer_id": [7, 8], "score": [1.0, 2.0],
                                  "event_timestamp": [rfc3339(NOW)] * 2}})
        conn = __import__("http.client").client.HTTPConnection("127.0.0.1", server.port,
                                                                timeout=10)
        conn.request("POST", "/push", body=body)
        res = conn.getresponse()
        assert res.status == 200, res.read()
        res.read()
        conn.close()
    finally:
        server.stop()  # writes the pushes not recorded yet

    after = cli("-C", repo, "status", "--max-staleness", "1h")
    assert after.returncode == 0, after.stdout + after.stderr
    assert "risk_live: pushed, not materialized; last push " in after.stdout, after.stdout
    assert "2 rows pushed" in after.stdout
    risk = status_json(cli, repo)["risk_live"]
    assert risk["push_view"] and risk["rows_pushed"] == 2 and risk["last_push_at"], risk
    assert risk["staleness_seconds"] < 3600
    stale = cli("-C", repo, "status", "--max-staleness", "1ms")
    assert stale.returncode == 2 and "risk_live (last push " in stale.stderr, stale.stderr
