"""The embedded online store (RocksDB) and `granary serve` on one machine (docs/OPERATIONS.md,
"One machine: the server and the command line"): while a server holds the store, CLI and SDK
reads open it read-only beside the server and see its writes; `materialize` and
`materialize-incremental` (CLI and SDK) hand their runs to the server, print the same report
and exit with the same codes as a local run; without a live server (none, or one killed with
its record left behind) everything runs locally as before. Real processes on 127.0.0.1.
"""
import datetime as dt
import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from serve_helpers import TEST_QUEUE_DELAY, stop_gracefully

from sdk_fixtures import GRANARY_BIN  # noqa: F401  (imports the SDK the way the SDK tests do)

import granary

UTC = dt.timezone.utc
NOW = dt.datetime.now(UTC).replace(microsecond=0)
END = (NOW - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
START = "2000-01-01T00:00:00Z"
FEATURES = ["--features", "risk:failures", "--entity", "customer_id=1,2,3"]

DEFS = """
entities:
  - {name: customer, join_keys: [customer_id], value_type: int64}
data_sources:
  - {name: payments, path: data/payments, timestamp_field: event_timestamp}
  - {name: visits, path: data/visits, timestamp_field: event_timestamp}
feature_views:
  - name: risk
    entities: [customer]
    source: payments
    ttl: 30d
    schema:
      - {name: failures, type: int64}
  - name: visits
    entities: [customer]
    source: visits
    ttl: 30d
    schema:
      - {name: count, type: int64}
"""


def write_rows(folder, name, customers, values, column, days_ago=2):
    folder.mkdir(parents=True, exist_ok=True)
    at = NOW - dt.timedelta(days=days_ago)
    pq.write_table(pa.table({
        "customer_id": pa.array(customers, pa.int64()),
        "event_timestamp": pa.array([at] * len(customers), pa.timestamp("us", tz="UTC")),
        column: pa.array(values, pa.int64()),
    }), folder / name)


def make_repo(cli, root):
    repo = root / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "granary.yaml").write_text("project: shop\n")
    (repo / "features.yaml").write_text(DEFS)
    write_rows(repo / "data" / "payments", "part-0.parquet", [1, 2], [3, 4], "failures")
    write_rows(repo / "data" / "visits", "part-0.parquet", [1, 3], [10, 30], "count")
    cli("-C", repo, "apply", check=True)
    return repo


class Server:
    """A `granary serve` of `repo` on a free port; stopped by stop() (SIGTERM) or kill()."""

    _started = 0  # servers started by this module: each gets a log of its own

    def __init__(self, repo, env=None, args=()):
        Server._started += 1
        self.log_path = repo / f"serve-{Server._started}.log"
        threads = () if "--threads" in args else ("--threads", "2")
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [str(GRANARY_BIN), "-C", str(repo), "serve", "--port", "0",
                 *threads, "--registry-poll", "50ms", *TEST_QUEUE_DELAY, *args],
                stdout=log, stderr=log, env={**os.environ, **(env or {})})
        deadline = time.time() + 15
        # `--port 0`: the server binds a free port itself and names it in its log.
        while (bound := re.search(r"listening on http://[^ ]*:(\d+) ", self.log())) is None:
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                pytest.fail(f"granary serve did not come up:\n{self.log()}")
            time.sleep(0.02)
        self.port = int(bound.group(1))

    def log(self):
        return self.log_path.read_text()

    def stop(self):
        return stop_gracefully(self.proc)

    def kill(self):
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def serve():
    servers = []

    def start(repo, **kw):
        servers.append(Server(repo, **kw))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def repo(cli, tmp_path):
    return make_repo(cli, tmp_path / "served")


@pytest.fixture
def twin(cli, tmp_path):
    """A second, identical repository that no server holds: the local run to compare with."""
    return make_repo(cli, tmp_path / "local")


def online_values(cli, repo):
    out = cli("-C", repo, "get-online-features", *FEATURES, check=True)
    result = json.loads(out.stdout)["results"][1]
    return result["values"], result["statuses"]


def comparable(stdout):
    """A report's lines without what differs between two runs: the time each line was printed
    (not on a terminal), durations and rates."""
    stdout = re.sub(r"(?m)^\d{4}-\d\d-\d\dT[0-9:.]+Z ", "", stdout)
    return re.sub(r"in [0-9.]+s \([^)]*entities/s\)", "in Xs", stdout)


def test_cli_reads_while_serving_see_the_servers_writes(cli, repo, serve):
    server = serve(repo)
    assert online_values(cli, repo) == ([None] * 3, ["NOT_FOUND"] * 3)
    # The server writes (a run handed to it); a new reader process sees the values.
    cli("-C", repo, "materialize-incremental", END, "--views", "risk", check=True)
    assert online_values(cli, repo) == ([3, 4, None], ["PRESENT", "PRESENT", "NOT_FOUND"])
    assert "materialize-incremental starting" in server.log()
    # Still served, and the server still holds the store for writing.
    assert server.proc.poll() is None
    assert server.stop() == 0
    assert online_values(cli, repo) == ([3, 4, None], ["PRESENT", "PRESENT", "NOT_FOUND"])


def test_cli_materialize_incremental_while_serving_prints_what_a_local_run_prints(
        cli, repo, twin, serve):
    server = serve(repo)
    handed = cli("-C", repo, "materialize-incremental", END, "-q", check=True)
    local = cli("-C", twin, "materialize-incremental", END, "-q", check=True)
    assert "holds the online store: running there" in handed.stderr
    assert f"pid {server.proc.pid}" in handed.stderr
    assert "running there" not in local.stderr
    assert comparable(handed.stdout) == comparable(local.stdout)
    assert "risk: " in handed.stdout and "2 entities: 2 written, 0 skipped" in handed.stdout
    # The run is the server's, recorded as such.
    runs = json.loads(cli("-C", repo, "status", "--json", check=True).stdout)
    assert "materialize-incremental up to" in server.log()
    # Again: nothing new, "up to date", as locally.
    handed = cli("-C", repo, "materialize-incremental", END, "-q", check=True)
    local = cli("-C", twin, "materialize-incremental", END, "-q", check=True)
    assert comparable(handed.stdout) == comparable(local.stdout)
    assert "up to date" in handed.stdout
    assert runs  # status reads the same registry while the server runs


def test_cli_materialize_an_interval_while_serving(cli, repo, twin, serve):
    server = serve(repo)
    args = ["materialize", START, END, "--views", "visits", "-q"]
    handed = cli("-C", repo, *args, check=True)
    local = cli("-C", twin, *args, check=True)
    assert "running there" in handed.stderr
    assert comparable(handed.stdout) == comparable(local.stdout)
    assert "visits: 2000-01-01T00:00:00" in handed.stdout
    assert "materialize starting, from 2000-01-01T00:00:00" in server.log()
    values = json.loads(cli("-C", repo, "get-online-features", "--features", "visits:count",
                            "--entity", "customer_id=1,3", check=True).stdout)
    assert values["results"][1]["values"] == [10, 30]


def test_a_failing_handed_off_run_exits_as_a_failing_local_run(cli, repo, twin, serve):
    for r in (repo, twin):
        (r / "data" / "visits" / "part-1.parquet").write_bytes(b"not a parquet file")
    serve(repo)
    handed = cli("-C", repo, "materialize", START, END, "-q", check=False)
    local = cli("-C", twin, "materialize", START, END, "-q", check=False)
    assert handed.returncode == local.returncode == 1
    assert comparable(handed.stdout).replace(str(repo), "REPO") == \
        comparable(local.stdout).replace(str(twin), "REPO")
    assert "FAILED: " in handed.stdout and "part-1.parquet" in handed.stdout
    error = [line for line in handed.stderr.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and "part-1.parquet" in error[0], handed.stderr
    # Refused before any view runs: a view that does not exist, as locally.
    handed = cli("-C", repo, "materialize-incremental", END, "--views", "rsik", check=False)
    local = cli("-C", twin, "materialize-incremental", END, "--views", "rsik", check=False)
    assert handed.returncode == local.returncode == 1
    assert "'rsik'" in handed.stderr and "did you mean 'risk'" in handed.stderr, handed.stderr
    # Another run holds the repository: the server's 409, exit 1, naming the holder.
    with open(repo / "data" / "registry.db.materialize.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write("a test holding the lock\n")
        lock.flush()
        held = cli("-C", repo, "materialize-incremental", END, check=False)
    assert held.returncode == 1
    assert "another materialization of this repository is running (a test holding the lock" \
        in held.stderr, held.stderr


def test_the_servers_token_is_needed_to_hand_a_run_over(cli, repo, serve):
    serve(repo, env={"GRANARY_SERVE_TOKEN": "s3cret"})
    without = cli("-C", repo, "materialize-incremental", END, env={"GRANARY_SERVE_TOKEN": ""},
                  check=False)
    assert without.returncode == 1
    assert "requires a bearer token: set GRANARY_SERVE_TOKEN" in without.stderr
    wrong = cli("-C", repo, "materialize-incremental", END, "--token", "nope", check=False)
    assert wrong.returncode == 1 and "refused the bearer token" in wrong.stderr
    right = cli("-C", repo, "materialize-incremental", END, "-q",
                env={"GRANARY_SERVE_TOKEN": "s3cret"}, check=True)
    assert "2 entities: 2 written" in right.stdout
    # Reads need no token: they open the store read-only, not through the server.
    assert online_values(cli, repo)[1] == ["PRESENT", "PRESENT", "NOT_FOUND"]


def hold_a_connection(port):
    """A keep-alive connection to the server that has been answered once (GET /health): it
    counts against --max-connections until closed."""
    held = socket.create_connection(("127.0.0.1", port), timeout=10)
    held.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        data += held.recv(4096)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    while len(body) < length:
        body += held.recv(4096)
    assert head.startswith(b"HTTP/1.1 200"), head
    return held


RETRY_LINE = ("is overloaded and did not start the run (503: the server is overloaded: 1 "
              "connections open on this worker (--max-connections 1); retry after 1 s); "
              "sending it again in 1 s (retry {} of 5)")


def test_a_run_shed_by_an_overloaded_server_is_sent_again_after_its_retry_after(
        cli, repo, serve):
    # One worker that admits one connection, held by this test: the handed run gets the 503 of
    # admission control until the test lets go of it.
    server = serve(repo, args=("--threads", "1", "--max-connections", "1"))
    held = hold_a_connection(server.port)
    try:
        run = subprocess.Popen([str(GRANARY_BIN), "-C", str(repo), "materialize-incremental",
                                END, "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
        said = []
        while not said or RETRY_LINE.format(1) not in said[-1]:
            line = run.stderr.readline()
            assert line, ("the run ended without a retry", said, run.communicate())
            said.append(line)
    finally:
        held.close()
    out, err = run.communicate(timeout=120)
    err = "".join(said) + err
    assert run.returncode == 0, out + err
    assert f"the feature server at http://127.0.0.1:{server.port} (pid {server.proc.pid}) " \
        + RETRY_LINE.format(1) in err, err
    assert err.count("holds the online store: running there") == 1, err  # said once
    assert "risk: " in out and "2 entities: 2 written, 0 skipped" in out, out
    assert "materialize-incremental up to" in server.log()
    assert online_values(cli, repo)[1] == ["PRESENT", "PRESENT", "NOT_FOUND"]


def test_a_run_the_server_keeps_shedding_fails_after_five_retries_not_started(cli, repo, serve):
    server = serve(repo, args=("--threads", "1", "--max-connections", "1"))
    held = hold_a_connection(server.port)
    try:
        run = cli("-C", repo, "materialize-incremental", END, check=False)
    finally:
        held.close()
    assert run.returncode == 1, run.stdout + run.stderr
    retries = [line for line in run.stderr.splitlines() if "sending it again in" in line]
    assert [RETRY_LINE.format(i) in line for i, line in enumerate(retries, 1)] == [True] * 5, \
        run.stderr
    error = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert len(error) == 1, run.stderr
    assert f"the server at http://127.0.0.1:{server.port} (pid {server.proc.pid}) is " \
           "overloaded: it answered 503 to each of 6 attempts (5 retries" in error[0], error
    assert "the run was not started: try again later, or start the server with a higher " \
           "--max-connections or --max-in-flight" in error[0], error
    # Nothing ran: nothing online, no run in the server's log.
    assert "materialize-incremental up to" not in server.log()
    assert online_values(cli, repo) == ([None] * 3, ["NOT_FOUND"] * 3)


def test_the_sdk_while_serving(cli, repo, serve):
    server = serve(repo)
    with granary.FeatureStore(repo) as store:
        def failures():
            response = store.get_online_features(["risk:failures"],
                                                 entities={"customer_id": [1, 2, 3]})
            return response.to_dict()["failures"], response.statuses["failures"]

        assert failures() == ([None] * 3, ["NOT_FOUND"] * 3)
        report = store.materialize_incremental(END, feature_views=["risk"])
        assert report.ok and report["risk"].entities_written == 2
        assert report["risk"].watermark_after == dt.datetime.fromisoformat(END[:-1] + "+00:00")
        # The same FeatureStore (its read-only store follows the server) sees the server's writes.
        assert failures() == ([3, 4, None], ["PRESENT", "PRESENT", "NOT_FOUND"])
        report = store.materialize(START, END, feature_views=["visits"])
        assert report.ok and report["visits"].entities_written == 2
        assert server.log().count("starting, ") == 2
        # A failure raises the error of its code, with the report, as a local run does.
        with pytest.raises(granary.InvalidArgument, match="no feature view 'rsik'"):
            store.materialize_incremental(END, feature_views=["rsik"])
        (repo / "data" / "visits" / "part-1.parquet").write_bytes(b"not a parquet file")
        with pytest.raises(granary.GranaryError) as failed:
            store.materialize(START, END, feature_views=["visits"])
        assert failed.value.report["visits"].status == "failed"
        assert "part-1.parquet" in failed.value.report["visits"].error
    # The SDK held no lock: the server stops cleanly and a local run opens the store.
    assert server.stop() == 0


def test_without_a_live_server_runs_are_local(cli, repo, serve):
    # Never served: local, as before.
    local = cli("-C", repo, "materialize-incremental", END, "--views", "risk", "-q", check=True)
    assert "running there" not in local.stderr and "2 written" in local.stdout
    record = repo / "data" / "registry.db.server"
    assert not record.exists()
    # A server writes its record and removes it when it stops.
    server = serve(repo)
    assert f"pid={server.proc.pid}" in record.read_text()
    assert f"url=http://127.0.0.1:{server.port}" in record.read_text()
    assert server.stop() == 0
    assert not record.exists()
    # A server killed outright leaves its record, but no lock: judged dead, the run is local.
    server = serve(repo)
    server.kill()
    assert record.exists()
    local = cli("-C", repo, "materialize", START, END, "--views", "visits", "-q", check=True)
    assert "running there" not in local.stderr and "2 written" in local.stdout
    # And a new server replaces the stale record.
    server = serve(repo)
    assert f"pid={server.proc.pid}" in record.read_text()
    assert server.stop() == 0
