"""Lost online data is detected and repaired, end to end: after FLUSHALL on a real redis-server, or
the RocksDB folder deleted, `granary status` says so (and --max-staleness alerts), a running
`granary serve` reports /health "degraded" and granary_online_data_lost in /metrics, and the next
materialize-incremental reloads the view over its ttl window, saying why. (The Redis Cluster case,
one master restarted empty, is in src/granary/materialize/materializer_test.cc.)"""
import http.client
import json
import os
import shutil
import signal
import subprocess
import time

import pytest
from serve_helpers import TEST_QUEUE_DELAY, stop_gracefully

from redis_helpers import free_port, redis_cli, start_redis, stop_redis
from test_cli_materialize import make_repo, online_scores


@pytest.fixture
def redis(tmp_path):
    port = free_port()
    proc = start_redis(port, tmp_path)
    try:
        yield port
    finally:
        stop_redis(proc)


class Server:
    """A `granary serve` process on a free port of 127.0.0.1, stopped by stop()."""

    def __init__(self, binary, repo):
        self.port = free_port()
        self.log_path = repo / "serve.log"
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [str(binary), "-C", str(repo), "serve", "--port", str(self.port), "--threads",
                 "2", *TEST_QUEUE_DELAY], stdout=log, stderr=log)
        deadline = time.time() + 15
        while True:
            try:
                self.get("/health")
                return
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                pytest.fail(f"granary serve did not come up:\n{self.log_path.read_text()}")
            time.sleep(0.02)

    def get(self, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path)
            res = conn.getresponse()
            body = res.read().decode()
            return res.status, body
        finally:
            conn.close()

    def stop(self):
        stop_gracefully(self.proc)


def health_when(server, status, seconds=15):
    """/health once it says `status`: the server reuses its verdict on the online data for up to
    1 s (docs/SERVING.md), so a loss or a repair made by another process shows within that."""
    deadline = time.time() + seconds
    while True:
        code, body = server.get("/health")
        health = json.loads(body)
        if health["status"] == status or time.time() > deadline:
            return code, body, health
        time.sleep(0.05)


def status_json(cli, repo, *args):
    out = cli("-C", repo, "status", "--json", *args)
    return out.returncode, json.loads(out.stdout)


def views_of(status):
    return {v["view"]: v for v in status["views"]}


def test_flushall_is_detected_by_status_health_and_metrics_and_repaired(cli, granary_bin,
                                                                        tmp_path, redis):
    repo = make_repo(cli, tmp_path, f'{{type: redis, connection_string: "127.0.0.1:{redis}"}}')
    cli("-C", repo, "materialize-incremental", "now", "-q", check=True)
    code, status = status_json(cli, repo, "--max-staleness", "1h")
    assert code == 0, status
    assert views_of(status)["risk"]["online_data"] == {
        "state": "intact", "reason": "", "lost_shards": []}

    server = Server(granary_bin, repo)
    try:
        code, body = server.get("/health")
        health = json.loads(body)
        assert code == 200 and health["status"] == "ok", body
        assert health["online_data"] == {"checked": True, "lost": []}, body

        assert redis_cli(redis, "flushall") == "OK"
        assert online_scores(cli, repo, [1, 2]) == {1: (None, "NOT_FOUND"),
                                                    2: (None, "NOT_FOUND")}

        # The server: degraded (it still answers), naming the views and the shard.
        code, body, health = health_when(server, "degraded")
        assert code == 200 and health["status"] == "degraded", body
        lost = {v["view"]: v for v in health["online_data"]["lost"]}
        assert set(lost) == {"risk", "risk_weekly"}, body
        assert lost["risk"]["shards"] == [f"redis at 127.0.0.1:{redis}"]
        assert "no marker on redis at 127.0.0.1:" in lost["risk"]["reason"]
        _, metrics = server.get("/metrics")
        assert 'granary_online_data_lost{view="risk"} 1' in metrics, metrics
        assert "granary_online_markers_up 1" in metrics

        # The CLI: lost, and stale under --max-staleness however recent the watermark.
        code, status = status_json(cli, repo, "--max-staleness", "1h")
        assert code == 2, status
        assert status["stale"] == ["risk", "risk_weekly"]
        risk = views_of(status)["risk"]
        assert risk["online_data"]["state"] == "lost"
        assert risk["online_data"]["lost_shards"] == [f"redis at 127.0.0.1:{redis}"]
        text = cli("-C", repo, "status", "--max-staleness", "1h")
        assert "ONLINE DATA LOST: online data lost: no marker on redis at" in text.stdout, \
            text.stdout
        assert "risk (online data lost" in text.stderr, text.stderr

        # The next incremental run reloads both views over their ttl window and says why.
        run = cli("-C", repo, "materialize-incremental", "now", "-q", check=True)
        assert run.stdout.count("(reloaded: online data lost: no marker on") == 2, run.stdout
        assert "3 entities: 3 written" in run.stdout, run.stdout
        assert online_scores(cli, repo, [1, 2]) == {1: (0.5, "PRESENT"), 2: (1.0, "PRESENT")}
        code, status = status_json(cli, repo, "--max-staleness", "1h")
        assert code == 0, status
        risk = views_of(status)["risk"]
        assert risk["online_data"]["state"] == "intact"
        assert risk["last_run"]["note"].startswith(
            "reload over the ttl window: online data lost: no marker on"), risk["last_run"]
        assert "reload over the ttl window" in cli("-C", repo, "status").stdout

        code, body, health = health_when(server, "ok")
        assert code == 200 and health["status"] == "ok", body
        _, metrics = server.get("/metrics")
        assert 'granary_online_data_lost{view="risk"} 0' in metrics, metrics
    finally:
        server.stop()


def test_a_deleted_rocksdb_folder_is_detected_and_repaired(cli, tmp_path):
    repo = make_repo(cli, tmp_path)
    cli("-C", repo, "materialize-incremental", "now", "-q", check=True)
    _, status = status_json(cli, repo)
    assert views_of(status)["risk"]["online_data"]["state"] == "intact"

    shutil.rmtree(repo / "data" / "online")
    code, status = status_json(cli, repo, "--max-staleness", "1h")
    assert code == 2, status
    risk = views_of(status)["risk"]
    assert risk["online_data"]["state"] == "lost", risk
    assert "no marker on rocksdb" in risk["online_data"]["reason"]

    run = cli("-C", repo, "materialize-incremental", "now", "--views", "risk", "-q", check=True)
    assert "(reloaded: online data lost: no marker on rocksdb at" in run.stdout, run.stdout
    assert online_scores(cli, repo, [1, 3]) == {1: (0.5, "PRESENT"), 3: (1.5, "PRESENT")}
    _, status = status_json(cli, repo)
    assert views_of(status)["risk"]["online_data"]["state"] == "intact"
    # risk_weekly was not run: still lost, and still said so.
    assert views_of(status)["risk_weekly"]["online_data"]["state"] == "lost"


def test_a_store_that_cannot_be_checked_is_said_so_not_alerted(cli, tmp_path):
    down = free_port()
    repo = make_repo(cli, tmp_path, f'{{type: redis, connection_string: "127.0.0.1:{down}"}}')
    out = cli("-C", repo, "status")
    assert out.returncode == 0, out.stderr
    assert f"online data not checked: " in out.stdout and f"127.0.0.1:{down}" in out.stdout, \
        out.stdout
    _, status = status_json(cli, repo)
    assert views_of(status)["risk"]["online_data"]["state"] == "not_checked"
