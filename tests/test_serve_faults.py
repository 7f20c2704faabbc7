"""Faults on the feature server's path (issue 15, section 5), over real HTTP: pushes from the
future, `"end": "now"`, the 404 listing every endpoint, starting while Redis is down or refuses the
password, and partial answers. Redis Cluster node failures are tested in C++
(src/granary/online/redis/redis_cluster_test.cc), against a real cluster."""
import datetime as dt
import subprocess

import pytest

from redis_helpers import free_port, redis_cli, start_redis, stop_redis

try:  # tests/test_serve.py's helpers, moved to serve_helpers.py when the module was split
    from serve_helpers import NOW, make_repo, push_body, rfc3339, serve  # noqa: F401
except ImportError:
    from test_serve import NOW, make_repo, push_body, rfc3339, serve  # noqa: F401


def wait_for(predicate, seconds=30, step=0.05):
    import time
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def read_failures(server, customers, **extra):
    return server.post("/get-online-features", {
        "features": ["risk:failures"], "entities": {"customer_id": customers}, **extra})


def test_a_push_from_the_future_is_400_naming_the_row_and_writes_nothing(cli, tmp_path, serve):
    server = serve(make_repo(cli, tmp_path))
    body = push_body([1, 2], NOW - dt.timedelta(minutes=1), to="online_and_offline")
    body["df"]["event_timestamp"][1] = "2036-01-01T00:00:00Z"
    status, answer = server.post("/push", body)
    assert status == 400, answer
    message = answer["error"]["message"]
    assert message.startswith("df.event_timestamp[1]: 2036-01-01T00:00:00Z is in the future"), \
        message
    assert "--push-max-clock-skew" in message
    status, answer = read_failures(server, [1, 2])
    assert status == 200 and answer["results"][1]["statuses"] == ["NOT_FOUND"] * 2
    assert sorted(p.name for p in (tmp_path / "repo" / "data" / "payments").iterdir()) == \
        ["part-0.parquet"]
    # A producer a minute ahead is within the default tolerance (5 minutes).
    status, answer = server.post("/push", push_body([1], NOW + dt.timedelta(minutes=1)))
    assert status == 200, answer


def test_the_clock_skew_tolerance_is_a_flag(cli, tmp_path, serve):
    server = serve(make_repo(cli, tmp_path), args=("--push-max-clock-skew", "2d"))
    status, answer = server.post("/push", push_body([1], NOW + dt.timedelta(days=1)))
    assert status == 200, answer
    status, answer = server.post("/push", push_body([1], NOW + dt.timedelta(days=3)))
    assert status == 400 and "at most 2d ahead" in answer["error"]["message"], answer


def test_materialize_incremental_takes_end_now(cli, tmp_path, serve):
    server = serve(make_repo(cli, tmp_path))
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    status, answer = server.post("/materialize-incremental",
                                 {"end": "now", "views": ["risk"], "wait": True})
    assert status == 200, answer
    assert answer["status"] == "succeeded"
    end = dt.datetime.fromisoformat(answer["end"].replace("Z", "+00:00"))
    assert before <= end <= dt.datetime.now(dt.timezone.utc)
    status, answer = server.post("/materialize-incremental", {"end": "later"})
    assert status == 400 and "or write 'now'" in answer["error"]["message"], answer


def test_an_unknown_path_lists_every_endpoint(cli, tmp_path, serve):
    server = serve(make_repo(cli, tmp_path))
    status, answer = server.request("GET", "/nope")
    assert status == 404
    message = answer["error"]["message"]
    for endpoint in ["GET /health", "GET /metrics", "GET /registry", "POST /get-online-features",
                     "POST /push", "POST /materialize-incremental"]:
        assert endpoint in message, message
    status, answer = server.post("/get-online-feature", {})
    assert status == 404
    assert "did you mean '/get-online-features'?" in answer["error"]["message"], answer


def redis_repo(cli, tmp_path, port, password=None):
    connection = f"127.0.0.1:{port}" + (f",password={password}" if password else "")
    return make_repo(cli, tmp_path, online_store=f"{{type: redis, connection_string: '{connection}'}}")


def test_serve_starts_while_redis_is_down_and_serves_once_it_is_up(cli, tmp_path, serve):
    port = free_port()
    server = serve(redis_repo(cli, tmp_path, port))
    status, health = server.request("GET", "/health")
    assert status == 503 and health["store"]["reachable"] is False
    assert "is not open yet" in health["store"]["error"], health
    status, answer = read_failures(server, [1])
    assert status == 503 and answer["error"]["code"] == "unavailable", answer
    status, answer = server.post("/push", push_body([1], NOW))
    assert status == 503, answer
    assert server.request("GET", "/registry")[0] == 200
    assert "starting without it" in server.log()

    redis = start_redis(port, tmp_path)
    try:
        assert wait_for(lambda: server.request("GET", "/health")[0] == 200), server.log()
        status, answer = server.post("/push", push_body([1], NOW, failures=[7]))
        assert status == 200, answer
        status, answer = read_failures(server, [1])
        assert answer["results"][1]["values"] == [7], answer
        assert "is open" in server.log()
    finally:
        assert server.stop() == 0
        stop_redis(redis)


def test_a_refused_password_stops_the_start_unless_always(cli, tmp_path, granary_bin, serve):
    port = free_port()
    redis = start_redis(port, tmp_path)
    try:
        redis_cli(port, "CONFIG", "SET", "requirepass", "right")
        repo = redis_repo(cli, tmp_path, port, password="wrong")
        run = subprocess.run([str(granary_bin), "-C", str(repo), "serve", "--port",
                              str(free_port())], capture_output=True, text=True, timeout=60)
        assert run.returncode == 1, run.stderr
        assert "refused the credentials" in run.stderr, run.stderr

        server = serve(repo, args=("--start-without-store", "always"))
        status, health = server.request("GET", "/health")
        assert status == 503 and "refused the credentials" in health["store"]["error"], health
        # The password the server has is set on Redis: it opens and serves.
        redis_cli(port, "-a", "right", "CONFIG", "SET", "requirepass", "wrong")
        assert wait_for(lambda: server.request("GET", "/health")[0] == 200), server.log()
        assert server.stop() == 0
    finally:
        stop_redis(redis)


def test_partial_is_a_request_field(cli, tmp_path, serve):
    port = free_port()
    redis = start_redis(port, tmp_path)
    try:
        server = serve(redis_repo(cli, tmp_path, port))
        assert server.post("/push", push_body([1], NOW, failures=[4]))[0] == 200
        status, answer = read_failures(server, [1, 2], partial=True)
        assert status == 200, answer
        assert answer["results"][1]["statuses"] == ["PRESENT", "NOT_FOUND"]
        status, answer = read_failures(server, [1], partial="yes")
        assert status == 400, answer
        assert "partial: must be true or false" in answer["error"]["message"]
        # One node, down: nothing can be read, so even a partial request is 503.
        stop_redis(redis)
        redis = None
        status, answer = read_failures(server, [1, 2], partial=True)
        assert status == 503, answer
        assert server.stop() == 0
    finally:
        if redis is not None:
            stop_redis(redis)
