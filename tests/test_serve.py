"""granary serve end to end: a real server process on a free port of 127.0.0.1, over HTTP, on the
embedded store and on a real redis-server (stopped and restarted under it); push online and
offline (a Parquet folder and a Delta table read back by the deltalake package); every error;
the bearer token; registry reload after `granary apply`; SIGTERM.
"""
import datetime as dt
import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from redis_helpers import free_port, start_redis

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
EPOCH = "1970-01-01T00:00:00Z"


def rfc3339(t):
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


DEFS = """
entities:
  - {name: customer, join_keys: [customer_id], value_type: int64}
data_sources:
  - {name: payments, path: data/payments, timestamp_field: event_timestamp}
  - {name: payments_push, type: push, batch_source: payments}
  - {name: occupancy, type: delta, path: data/occupancy, timestamp_field: event_timestamp,
     date_partition_column: event_date}
  - {name: occupancy_push, type: push, batch_source: occupancy}
feature_views:
  - name: risk
    entities: [customer]
    source: payments_push
    ttl: 1d
    schema:
      - {name: failures, type: int64}
      - {name: rate, type: float64}
  - name: bay
    entities: [customer]
    source: occupancy_push
    schema:
      - {name: occupied, type: float64}
feature_services:
  - name: risk_v1
    features: [risk]
"""


def make_repo(cli, tmp_path, online_store=None):
    repo = tmp_path / "repo"
    (repo / "data" / "payments").mkdir(parents=True)
    config = "project: shop\n"
    if online_store:
        config += f"online_store: {online_store}\n"
    (repo / "granary.yaml").write_text(config)
    (repo / "features.yaml").write_text(DEFS)
    pq.write_table(pa.table({
        "customer_id": pa.array([1], pa.int64()),
        "event_timestamp": pa.array([dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)],
                                    pa.timestamp("us", tz="UTC")),
        "failures": pa.array([0], pa.int64()),
        "rate": pa.array([0.0], pa.float64()),
    }), repo / "data" / "payments" / "part-0.parquet")
    from deltalake import write_deltalake
    write_deltalake(str(repo / "data" / "occupancy"), pa.table({
        "customer_id": pa.array([1], pa.int64()),
        "event_timestamp": pa.array([dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)],
                                    pa.timestamp("us", tz="UTC")),
        "occupied": pa.array([0.5], pa.float64()),
        "event_date": pa.array([dt.date(2026, 1, 1)], pa.date32()),
    }), partition_by=["event_date"])
    cli("-C", repo, "apply", check=True)
    return repo


class Server:
    """A `granary serve` process; stopped (SIGTERM, then SIGKILL) by stop()."""

    def __init__(self, binary, repo, port=None, env=None, args=()):
        self.port = port or free_port()
        self.log_path = repo / f"serve-{self.port}.log"
        full_env = dict(os.environ)
        full_env.update(env or {})
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [str(binary), "-C", str(repo), "serve", "--port", str(self.port),
                 "--threads", "2", "--registry-poll", "50ms", *args],
                stdout=log, stderr=log, env=full_env)
        deadline = time.time() + 15
        while True:
            try:
                status, _ = self.request("GET", "/health")
                if status in (200, 503):
                    return
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                pytest.fail(f"granary serve did not come up:\n{self.log()}")
            time.sleep(0.02)

    def request(self, method, path, body=None, headers=None, raw=False):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
            conn.request(method, path, body=data, headers=headers or {})
            res = conn.getresponse()
            payload = res.read()
            if raw:
                return res.status, payload.decode(), dict(res.getheaders())
            ctype = res.getheader("Content-Type", "")
            return res.status, json.loads(payload) if ctype.startswith("application/json") \
                else payload.decode()
        finally:
            conn.close()

    def post(self, path, body, **kw):
        return self.request("POST", path, body, **kw)

    def log(self):
        return self.log_path.read_text()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def serve(granary_bin):
    servers = []

    def start(repo, **kw):
        server = Server(granary_bin, repo, **kw)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def push_body(customers, at, failures=None, to="online", rate=0.5):
    n = len(customers)
    return {"push_source_name": "payments_push", "to": to,
            "df": {"customer_id": customers, "event_timestamp": [rfc3339(at)] * n,
                   "failures": failures if failures is not None else list(range(n)),
                   "rate": [rate] * n}}


def test_push_and_get_online_features_in_feasts_shape(cli, tmp_path, serve):
    repo = make_repo(cli, tmp_path)
    server = serve(repo)
    fresh, stale = NOW - dt.timedelta(minutes=5), NOW - dt.timedelta(days=2)
    status, body = server.post("/push", push_body([1001, 1002], fresh, failures=[3, None]))
    assert status == 200, body
    assert body == {"push_source_name": "payments_push", "to": "online", "rows": 2,
                    "online": {"views": ["risk"], "written": 2, "skipped_older": 0}}
    assert server.post("/push", push_body([1003], stale))[0] == 200
    status, body = server.post("/get-online-features", {
        "features": ["risk:failures", "risk:rate"],
        "entities": {"customer_id": [1001, 1002, 1003, 4242]}})
    assert status == 200, body
    assert body == {
        "metadata": {"feature_names": ["customer_id", "failures", "rate"]},
        "results": [
            {"values": [1001, 1002, 1003, 4242], "statuses": ["PRESENT"] * 4,
             "event_timestamps": [EPOCH] * 4},
            {"values": [3, None, None, None],
             "statuses": ["PRESENT", "NULL_VALUE", "OUTSIDE_MAX_AGE", "NOT_FOUND"],
             "event_timestamps": [rfc3339(fresh), rfc3339(fresh), rfc3339(stale), EPOCH]},
            {"values": [0.5, 0.5, None, None],
             "statuses": ["PRESENT", "PRESENT", "OUTSIDE_MAX_AGE", "NOT_FOUND"],
             "event_timestamps": [rfc3339(fresh), rfc3339(fresh), rfc3339(stale), EPOCH]},
        ]}
    # A feature service with full feature names.
    status, body = server.post("/get-online-features", {
        "feature_service": "risk_v1", "full_feature_names": True,
        "entities": {"customer_id": [1001]}})
    assert status == 200
    assert body["metadata"]["feature_names"] == ["customer_id", "risk__failures", "risk__rate"]
    # Write-if-newer: an older push is skipped.
    status, body = server.post("/push", push_body([1001], NOW - dt.timedelta(hours=1),
                                                  failures=[99]))
    assert body["online"] == {"views": ["risk"], "written": 0, "skipped_older": 1}
    status, body = server.post("/get-online-features", {
        "features": ["risk:failures"], "entities": {"customer_id": [1001]}})
    assert body["results"][1]["values"] == [3]


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


BAD_REQUESTS = [
    # (path, body, status, part of the message)
    ("/get-online-features", "{", 400, "the request is not valid JSON: line 1, column 2"),
    ("/get-online-features", {"features": ["risk:failurs"], "entities": {"customer_id": [1]}},
     400, "feature view 'risk' has no feature 'failurs', did you mean 'failures'?"),
    ("/get-online-features", {"features": ["rsk:failures"], "entities": {"customer_id": [1]}},
     400, "unknown feature view 'rsk' in 'rsk:failures', did you mean 'risk'?"),
    ("/get-online-features", {"features": ["risk:rate"], "entities": {"customer_id": [1, "abc"]}},
     400, "entities.customer_id[1]: the string \"abc\" is not an int64"),
    ("/get-online-features", {"features": ["risk:rate"], "entities": {"customer": [1]}},
     400, "'customer' is not a join key of any entity, did you mean 'customer_id'?"),
    ("/get-online-features", {"features": ["risk:rate"], "entities": {}}, 400,
     "the request has no entities"),
    ("/get-online-features", {}, 400, "the request names no features"),
    ("/get-online-features", {"features": ["risk:rate"],
                              "entities": {"customer_id": list(range(11))}}, 400,
     "the request asks for 11 entity rows; the limit is 10 per request"),
    ("/get-online-features", {"feature_service": "risk_v2", "entities": {"customer_id": [1]}},
     400, "unknown feature service 'risk_v2', did you mean 'risk_v1'?"),
    ("/push", {"push_source_name": "payments_push", "df": {"customer_id": [1, "abc"]}}, 400,
     'df.customer_id[1]: expected int64, got "abc"'),
    ("/push", {"push_source_name": "payments_psh", "df": {"customer_id": [1]}}, 400,
     "'payments_psh' is not a data source, did you mean 'payments_push'?"),
    ("/push", {"push_source_name": "payments_push", "to": "disk", "df": {"customer_id": [1]}},
     400, "to: 'disk' is not a push target"),
    ("/push", {"push_source_name": "payments_push",
               "df": {"customer_id": [1], "event_timestamp": ["2026-01-01T00:00:00Z"]}}, 400,
     "df: missing column 'failures' (a feature of feature view 'risk'"),
    ("/push", {"push_source_name": "payments_push", "to": "offline",
               "df": {"customer_id": [1], "event_timestamp": ["2026-01-01T00:00:00Z"],
                      "colour": ["red"]}}, 400,
     "column 'colour' is not a column of data source 'payments'"),
]


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory, granary_bin):
    from conftest import Cli
    tmp = tmp_path_factory.mktemp("serve")
    repo = make_repo(Cli(granary_bin, tmp), tmp)
    server = Server(granary_bin, repo, args=("--max-entities", "10", "--body-limit-bytes",
                                             "4096"))
    yield server
    assert server.stop() == 0


@pytest.mark.parametrize("path,body,status,message", BAD_REQUESTS,
                         ids=[f"{i}-{c[0]}" for i, c in enumerate(BAD_REQUESTS)])
def test_bad_requests_are_4xx_saying_what_and_where(shared_server, path, body, status, message):
    got, answer = shared_server.post(path, body)
    assert got == status, answer
    assert answer["error"]["status"] == status
    assert answer["error"]["code"] == "invalid_argument"
    assert message in answer["error"]["message"], answer


def test_protocol_errors(shared_server):
    status, body = shared_server.request("GET", "/nope")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body, headers = shared_server.request("GET", "/push", raw=True)
    assert status == 405 and headers["Allow"] == "POST"
    status, body = shared_server.post("/get-online-features", "x" * 5000)
    assert status == 413
    assert "larger than the limit of 4096 bytes" in body["error"]["message"]
    # Garbage bytes, a truncated body: answered, and the server keeps serving.
    with socket.create_connection(("127.0.0.1", shared_server.port)) as s:
        s.sendall(b"\x00\xff GARBAGE \r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 400")
    assert shared_server.request("GET", "/health")[0] == 200


def test_concurrent_clients(shared_server):
    customers = list(range(500, 540))
    status, _ = shared_server.post("/push", {
        "push_source_name": "payments_push",
        "df": {"customer_id": customers, "event_timestamp": [rfc3339(NOW)] * len(customers),
               "failures": customers, "rate": [0.0] * len(customers)}})
    assert status == 200
    errors = []

    def client(offset):
        conn = http.client.HTTPConnection("127.0.0.1", shared_server.port, timeout=10)
        for i in range(40):
            c = customers[(offset + i) % len(customers)]
            conn.request("POST", "/get-online-features", json.dumps(
                {"features": ["risk:failures"], "entities": {"customer_id": [c]}}))
            res = conn.getresponse()
            body = json.loads(res.read())
            if res.status != 200 or body["results"][1]["values"] != [c]:
                errors.append((c, res.status, body))
        conn.close()

    threads = [threading.Thread(target=client, args=(k * 7,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_push_offline_to_a_folder_and_a_delta_table(cli, tmp_path, serve):
    repo = make_repo(cli, tmp_path)
    server = serve(repo)
    day = dt.datetime(2026, 3, 1, 12, tzinfo=dt.timezone.utc)
    status, body = server.post("/push", push_body([7, 8], day, to="offline", rate=0.25))
    assert status == 200, body
    assert "online" not in body
    [path] = body["offline"]["files"]
    assert path.startswith("data/payments/part-") and path.endswith(".parquet")
    table = pq.read_table(repo / path)
    assert table.column("customer_id").to_pylist() == [7, 8]
    # Not online: materialization (or an online push) brings it there.
    _, online = server.post("/get-online-features", {"features": ["risk:rate"],
                                                     "entities": {"customer_id": [7]}})
    assert online["results"][1]["statuses"] == ["NOT_FOUND"]

    status, body = server.post("/push", {
        "push_source_name": "occupancy_push", "to": "online_and_offline",
        "df": {"customer_id": [7, 9], "event_timestamp": [rfc3339(day), rfc3339(NOW)],
               "occupied": [0.75, 0.25]}})
    assert status == 200, body
    assert body["offline"]["delta_version"] == 1
    assert body["online"]["written"] == 2
    from deltalake import DeltaTable
    delta = DeltaTable(str(repo / "data" / "occupancy"))
    assert delta.version() == 1
    rows = sorted(delta.to_pyarrow_table().to_pylist(), key=lambda r: r["customer_id"])
    assert [(r["customer_id"], r["occupied"], r["event_date"]) for r in rows] == [
        (1, 0.5, dt.date(2026, 1, 1)), (7, 0.75, dt.date(2026, 3, 1)),
        (9, 0.25, NOW.date())]
    # The offline store reads the pushed rows too (point-in-time, through the push source).
    (repo / "entities.csv").write_text("customer_id,event_timestamp\n7,2026-03-02T00:00:00Z\n"
                                       "8,2026-03-02T00:00:00Z\n")
    out = cli("-C", repo, "get-historical-features", "--entities", repo / "entities.csv",
              "--features", "risk:rate,bay:occupied", "--output", repo / "train.parquet",
              check=True)
    rows = pq.read_table(repo / "train.parquet").to_pylist()
    assert [(r["customer_id"], r["rate"], r["occupied"]) for r in rows] == [
        (7, 0.25, 0.75), (8, 0.25, None)], out.stderr


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


def test_redis_stopped_and_restarted_under_the_server(cli, tmp_path, serve):
    port = free_port()
    redis = start_redis(port, tmp_path)
    try:
        repo = make_repo(cli, tmp_path,
                         f'{{type: redis, connection_string: "127.0.0.1:{port}"}}')
        server = serve(repo)
        assert server.post("/push", push_body([1], NOW))[0] == 200
        request = {"features": ["risk:failures"], "entities": {"customer_id": [1]}}
        status, body = server.post("/get-online-features", request)
        assert status == 200 and body["results"][1]["statuses"] == ["PRESENT"]

        redis.terminate()
        redis.wait(timeout=10)
        status, body = server.post("/get-online-features", request)
        assert status == 503, body
        assert body["error"]["code"] == "unavailable"
        assert f"the online store (redis at 127.0.0.1:{port}) is unavailable" in \
            body["error"]["message"]
        status, health = server.request("GET", "/health")
        assert status == 503 and health["store"]["reachable"] is False
        assert server.post("/push", push_body([1], NOW))[0] == 503

        redis = start_redis(port, tmp_path)  # empty: it kept nothing on disk
        deadline = time.time() + 15
        while server.post("/get-online-features", request)[0] != 200:
            assert time.time() < deadline, "the server did not recover"
            time.sleep(0.1)
        assert server.post("/push", push_body([1], NOW))[0] == 200
        status, body = server.post("/get-online-features", request)
        assert body["results"][1]["statuses"] == ["PRESENT"]
        assert server.request("GET", "/health")[0] == 200
    finally:
        redis.terminate()
        redis.wait(timeout=10)


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
    status, body = server.post("/materialize-incremental", "")
    assert status == 202, body
    assert body["status"] == "started" and sorted(body["views"]) == ["bay", "risk"]
    deadline = time.time() + 30
    while True:
        metrics = server.request("GET", "/metrics")[1]
        if 'granary_materialize_runs_total{view="bay",status="succeeded"} 1' in metrics:
            break
        assert time.time() < deadline, metrics
        time.sleep(0.05)
    for series in ('granary_materialize_runs_total{view="risk",status="succeeded"} 2',
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
