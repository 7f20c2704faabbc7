"""What the `granary serve` tests share (tests/test_serve_*.py): a feature repository with push
sources on a Parquet folder and a Delta table, a `granary serve` process on a free port of
127.0.0.1 stopped by pid, and the pytest fixtures that start them (`serve`: one server per test;
`shared_server`: one per module, with small limits). Import the fixtures into a test module by
name (`from serve_helpers import serve`).
"""
import datetime as dt
import http.client
import json
import os
import re
import signal
import subprocess
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest


NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


EPOCH = "1970-01-01T00:00:00Z"

# The arguments every test server gets: no bound on how long a request may wait for a worker
# (`--max-queue-delay`, 25 ms by default). On a loaded machine the default bound answers a
# test's request 503 (Retry-After: 1) although nothing is wrong; the bound itself is tested in
# src/granary/serving/http/http_server_test.cc. Tests about the other limits (connections, in
# flight, descriptors) keep them: those answers do not depend on the machine's load.
TEST_QUEUE_DELAY = ("--max-queue-delay", "0")


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

    _started = 0  # servers started by this process: each gets a log of its own

    def __init__(self, binary, repo, port=None, env=None, args=(), preexec_fn=None,
                 test_queue_delay=True):
        """`test_queue_delay`: False starts the server with the default queue bound (25 ms)."""
        # Without a port the server binds any free one (`--port 0`) and says which in its log:
        # no window between choosing a port and binding it in which another process takes it.
        self.port = port
        Server._started += 1
        self.log_path = repo / f"serve-{os.getpid()}-{Server._started}.log"
        full_env = dict(os.environ)
        full_env.update(env or {})
        threads = () if "--threads" in args else ("--threads", "2")
        poll = () if "--registry-poll" in args else ("--registry-poll", "50ms")
        # Admission control's 25 ms queue bound sheds 503s when a loaded CI machine (2 cores,
        # make -j2) delays a worker; no test here is about it (http_server_test.cc is).
        queue = () if "--max-queue-delay" in args or not test_queue_delay else TEST_QUEUE_DELAY
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [str(binary), "-C", str(repo), "serve", "--port", str(self.port or 0), *threads,
                 *poll, *queue, *args],
                stdout=log, stderr=log, env=full_env, preexec_fn=preexec_fn)
        deadline = time.time() + 15
        while True:
            if self.port is None:
                bound = re.search(r"listening on http://[^ ]*:(\d+) ", self.log())
                self.port = int(bound.group(1)) if bound else None
            try:
                if self.port is None:
                    raise ConnectionRefusedError("not listening yet")
                status, _ = self.request("GET", "/health")
                if status in (200, 503):
                    return
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                pytest.fail(f"granary serve did not come up:\n{self.log()}")
            time.sleep(0.02)

    def request(self, method, path, body=None, headers=None, raw=False, timeout=10):
        """`timeout`: seconds to wait for the answer (a waited materialization can take minutes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
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
        return stop_gracefully(self.proc)


def stop_gracefully(proc, timeout=20):
    """SIGTERM (the server drains and stops), then SIGKILL after `timeout` s; the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


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


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory, granary_bin):
    from conftest import Cli
    tmp = tmp_path_factory.mktemp("serve")
    repo = make_repo(Cli(granary_bin, tmp), tmp)
    server = Server(granary_bin, repo, args=("--max-entities", "10", "--body-limit-bytes",
                                             "4096"))
    yield server
    assert server.stop() == 0


def push_body(customers, at, failures=None, to="online", rate=0.5):
    n = len(customers)
    return {"push_source_name": "payments_push", "to": to,
            "df": {"customer_id": customers, "event_timestamp": [rfc3339(at)] * n,
                   "failures": failures if failures is not None else list(range(n)),
                   "rate": [rate] * n}}
