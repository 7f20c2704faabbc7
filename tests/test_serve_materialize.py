"""granary serve end to end, POST /materialize-incremental: waited for and started in the
background, refused while another materialization holds the lock, its metrics, its 400s, and
SIGTERM during a run.
"""
import datetime as dt
import re
import time

import pyarrow as pa
import pyarrow.parquet as pq

from serve_helpers import NOW, make_repo, rfc3339, serve  # noqa: F401


def finished_runs(metrics):
    """{view: runs finished, whatever their result} from the text of GET /metrics."""
    runs = {}
    for m in re.finditer(r'^granary_materialize_runs_total\{view="([^"]+)",result="[a-z_]+"\} '
                         r'(\d+)$', metrics, re.MULTILINE):
        runs[m.group(1)] = runs.get(m.group(1), 0) + int(m.group(2))
    return runs


def test_materialize_incremental_through_the_server(cli, tmp_path, serve):
    import fcntl
    repo = make_repo(cli, tmp_path)
    pq.write_table(pa.table({
        "customer_id": pa.array([7, 8], pa.int64()),
        "event_timestamp": pa.array([NOW - dt.timedelta(hours=1)] * 2, pa.timestamp("us", tz="UTC")),
        "failures": pa.array([70, 80], pa.int64()),
        "rate": pa.array([0.7, 0.8], pa.float64()),
    }), repo / "data" / "payments" / "part-1.parquet")
    server = serve(repo)
    read = {"features": ["risk:failures"], "entities": {"customer_id": [7, 8]}}
    assert server.post("/get-online-features", read)[1]["results"][1]["statuses"] == \
        ["NOT_FOUND", "NOT_FOUND"]

    # Another process holds the repository's materialization lock (as `granary materialize`
    # does while it runs): refused at once with 409, nothing run.
    with open(repo / "data" / "registry.db.materialize.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write("materialize (a test)\n")
        lock.flush()
        status, body = server.post("/materialize-incremental", {"wait": True})
        assert status == 409, body
        assert "another materialization of this repository is running (materialize (a test)" \
            in body["error"]["message"]
        fcntl.flock(lock, fcntl.LOCK_UN)

    status, body = server.post("/materialize-incremental",
                               {"end": rfc3339(NOW), "views": ["risk"], "wait": True})
    assert status == 200, body
    assert body["status"] == "succeeded" and body["end"] == rfc3339(NOW)
    [view] = body["views"]
    assert view["view"] == "risk" and view["status"] == "succeeded"
    assert (view["rows_in_range"], view["entities_written"], view["entities_skipped"]) == (2, 2, 0)
    assert view["watermark_after"] == rfc3339(NOW)
    results = server.post("/get-online-features", read)[1]["results"]
    assert results[1]["values"] == [70, 80] and results[1]["statuses"] == ["PRESENT", "PRESENT"]

    # Without "wait": 202 with what was started (every online view, up to now).
    runs_before = finished_runs(server.request("GET", "/metrics")[1])
    status, body = server.post("/materialize-incremental", "")
    assert status == 202, body
    assert body["status"] == "started" and sorted(body["views"]) == ["bay", "risk"]
    # The run has ended when each of its views has counted one more finished run. The views run
    # one after another in name order (bay, then risk), so one view's count alone says nothing
    # of the others: on a loaded machine risk was still running when bay's count appeared.
    deadline = time.time() + 30
    while True:
        metrics = server.request("GET", "/metrics")[1]
        runs = finished_runs(metrics)
        if all(runs.get(v, 0) == runs_before.get(v, 0) + 1 for v in body["views"]):
            break
        assert time.time() < deadline, metrics
        time.sleep(0.05)
    for series in ('granary_materialize_runs_total{view="risk",result="succeeded"} 2',
                   'granary_materialize_entities_written_total{view="risk"} 2',
                   'granary_materialize_watermark_timestamp_seconds{view="risk"} ',
                   'granary_materialize_staleness_seconds{view="bay"} ',
                   'granary_materialize_running{view="risk"} 0',
                   'granary_http_requests_total{path="/materialize-incremental",code="409"} 1',
                   'granary_http_requests_total{path="/materialize-incremental",code="202"} 1'):
        assert series in metrics, series

    # A bad body: 400 saying what and where.
    status, body = server.post("/materialize-incremental", {"views": ["rsik"]})
    assert status == 400
    assert body["error"]["message"].startswith(
        "views[0]: no feature view 'rsik', did you mean 'risk'?")
    status, body = server.post("/materialize-incremental", '{"end": "2026-11-25", "wait": tru}')
    assert status == 400
    assert body["error"]["message"].startswith("the request is not valid JSON: line 1, column ")
    assert server.stop() == 0
    assert "materialize-incremental starting" in server.log()


def test_sigterm_cancels_and_joins_a_materialization_before_stopping(cli, tmp_path, serve):
    repo = make_repo(cli, tmp_path)
    n = 200_000  # enough rows that the run is usually still going when SIGTERM arrives
    pq.write_table(pa.table({
        "customer_id": pa.array(range(n), pa.int64()),
        "event_timestamp": pa.array([NOW - dt.timedelta(hours=1)] * n,
                                    pa.timestamp("us", tz="UTC")),
        "failures": pa.array(range(n), pa.int64()),
        "rate": pa.array([0.5] * n, pa.float64()),
    }), repo / "data" / "payments" / "part-1.parquet")
    server = serve(repo)
    status, body = server.post("/materialize-incremental", {"views": ["risk"]})
    assert status == 202, body
    assert server.stop() == 0
    log = server.log()
    # Cancelled or finished, the run ended (its thread joined) before the server stopped.
    end = log.index("materialize-incremental up to")
    assert end < log.index("granary serve: stopped"), log
    assert "SIGTERM: draining" in log
