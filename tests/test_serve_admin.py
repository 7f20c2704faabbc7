"""granary serve end to end, the operator's side: /health, /metrics, /registry, registry reload
after `granary apply`, the bearer token, SIGTERM, a
repository without definitions.
"""
import os
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from redis_helpers import free_port
from serve_helpers import DEFS, NOW, make_repo, serve  # noqa: F401


def test_health_metrics_and_registry(cli, tmp_path, serve):
    repo = make_repo(cli, tmp_path)
    server = serve(repo)
    status, body = server.request("GET", "/health")
    assert status == 200
    assert body["status"] == "ok"
    assert body["store"]["type"] == "rocksdb" and body["store"]["reachable"] is True
    assert body["registry"]["version"] == 1 and body["registry"]["project"] == "shop"
    server.post("/get-online-features", {"features": ["risk:rate"],
                                         "entities": {"customer_id": [1, 2, 3]}})
    server.post("/get-online-features", "{not json")
    status, text, headers = server.request("GET", "/metrics", raw=True)
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    for line in ['granary_http_requests_total{path="/get-online-features",code="200"} 1',
                 'granary_http_requests_total{path="/get-online-features",code="400"} 1',
                 'granary_serving_errors_total{path="/get-online-features",kind="invalid_argument"} 1',
                 'granary_serving_entities_per_request_sum 3',
                 'granary_online_store_read_seconds_count{store="rocksdb"} 1',
                 'granary_registry_version 1',
                 '# TYPE granary_http_request_duration_seconds histogram']:
        assert line in text, text
    status, body = server.request("GET", "/registry")
    assert status == 200
    assert body["project"] == "shop" and body["version"] == 1
    assert [s["name"] for s in body["data_sources"]] == ["occupancy", "occupancy_push", "payments",
                                                        "payments_push"]
    assert body["data_sources"][3] == {"name": "payments_push", "type": "push",
                                       "batch_source": "payments"}
    assert body["feature_views"][1]["schema"] == [{"name": "failures", "type": "int64"},
                                                  {"name": "rate", "type": "float64"}]


def test_an_apply_while_serving_is_picked_up(cli, tmp_path, serve):
    repo = make_repo(cli, tmp_path)
    server = serve(repo)
    request = {"features": ["risk:score"], "entities": {"customer_id": [1]}}
    assert server.post("/get-online-features", request)[0] == 400
    (repo / "features.yaml").write_text(
        DEFS.replace("      - {name: rate, type: float64}",
                     "      - {name: rate, type: float64}\n      - {name: score, type: float64}"))
    pq.write_table(pa.table({
        "customer_id": pa.array([1], pa.int64()),
        "event_timestamp": pa.array([NOW], pa.timestamp("us", tz="UTC")),
        "failures": pa.array([0], pa.int64()), "rate": pa.array([0.0], pa.float64()),
        "score": pa.array([0.0], pa.float64())}), repo / "data" / "payments" / "part-0.parquet")
    cli("-C", repo, "apply", check=True)
    deadline = time.time() + 10
    while server.post("/get-online-features", request)[0] != 200:
        assert time.time() < deadline, server.log()
        time.sleep(0.05)
    assert server.request("GET", "/health")[1]["registry"]["version"] == 2
    assert "registry: now serving version 2 (was 1)" in server.log()


def test_bearer_token(cli, tmp_path, serve):
    repo = make_repo(cli, tmp_path)
    server = serve(repo, env={"GRANARY_SERVE_TOKEN": "t0ps3cret"})
    request = {"features": ["risk:rate"], "entities": {"customer_id": [1]}}
    status, body = server.post("/get-online-features", request)
    assert status == 401 and body["error"]["code"] == "unauthenticated"
    assert server.post("/get-online-features", request,
                       headers={"Authorization": "Bearer wrong"})[0] == 401
    assert server.post("/get-online-features", request,
                       headers={"Authorization": "Bearer t0ps3cret"})[0] == 200
    assert server.request("GET", "/metrics")[0] == 401
    assert server.request("GET", "/health")[0] == 200
    assert server.stop() == 0
    assert "bearer token required" in server.log()
    assert "t0ps3cret" not in server.log()


def test_sigterm_drains_and_exits_cleanly(cli, tmp_path, serve):
    repo = make_repo(cli, tmp_path)
    server = serve(repo)
    assert server.request("GET", "/health")[0] == 200
    assert server.stop() == 0
    log = server.log()
    assert "SIGTERM: draining" in log and "granary serve: stopped" in log


def test_serve_refuses_a_repository_without_definitions(cli, tmp_path, granary_bin):
    repo = tmp_path / "empty"
    repo.mkdir()
    (repo / "granary.yaml").write_text("project: empty\n")
    out = cli("-C", repo, "serve", "--port", str(free_port()), check=False)
    assert out.returncode == 1
    assert "error:" in out.stderr and ("granary apply" in out.stderr), out.stderr


def thp_enabled(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("THP_enabled:"):
            return line.split()[1]
    return None


def test_the_cli_turns_transparent_huge_pages_off_unless_told(cli, tmp_path, serve):
    # Arrow's allocator would fault back whole 2 MiB pages after each purge, zeroed by the kernel
    # (docs/PERFORMANCE.md, "Wall time, threads and huge pages"); MIMALLOC_ALLOW_THP leaves the
    # choice to mimalloc.
    if thp_enabled(os.getpid()) is None:
        pytest.skip("this kernel does not report THP_enabled in /proc/PID/status")
    repo = make_repo(cli, tmp_path)
    server = serve(repo)
    assert server.request("GET", "/health")[0] == 200
    assert thp_enabled(server.proc.pid) == "0"
    server.stop()
    allowed = serve(repo, env={"MIMALLOC_ALLOW_THP": "1"})
    assert allowed.request("GET", "/health")[0] == 200
    assert thp_enabled(allowed.proc.pid) == "1"
