"""Request bodies that crashed `granary serve` while it parsed JSON with RapidJSON 1.1, sent over
real HTTP to a real server on 127.0.0.1: a 137-byte number (SIGSEGV), `Infe2` in a push (a read
past the buffer that stored 0.0 as PRESENT), 200,000 nested `[` (stack overflow), and nesting up
to the 4 MiB body limit. Each must be a 400 that says what is wrong, and the server must keep
serving (the same process answers /health and reads afterwards).
"""
import datetime as dt
import http.client
import json
import math
import os
import signal
import subprocess
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from redis_helpers import free_port
from serve_helpers import TEST_QUEUE_DELAY

DEFS = """
entities:
  - {name: customer, join_keys: [customer_id], value_type: int64}
data_sources:
  - {name: payments, path: data/payments, timestamp_field: event_timestamp}
  - {name: payments_push, type: push, batch_source: payments}
feature_views:
  - name: risk
    entities: [customer]
    source: payments_push
    schema:
      - {name: failures, type: int64}
      - {name: rate, type: float64}
"""

# The number that crashed RapidJSON 1.1's full-precision parser: 137 bytes, digits then e-444.
CRASH_NUMBER = "0.9995999999999" + "1" * (137 - 15 - 6) + "5e-444"
DEEP = "[" * 200_000
BODY_LIMIT = 4 << 20  # granary serve's default --body-limit-bytes
NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def push_json(rate_text, customer=1, at=NOW):
    """A push body whose `rate` value is the raw JSON text `rate_text`."""
    return ('{"push_source_name": "payments_push", "df": {"customer_id": [%d], '
            '"event_timestamp": ["%s"], "failures": [1], "rate": [%s]}}'
            % (customer, rfc3339(at), rate_text))


@pytest.fixture(scope="module")
def server(tmp_path_factory, granary_bin):
    repo = tmp_path_factory.mktemp("parsing") / "repo"
    (repo / "data" / "payments").mkdir(parents=True)
    (repo / "granary.yaml").write_text("project: shop\n")
    (repo / "features.yaml").write_text(DEFS)
    pq.write_table(pa.table({
        "customer_id": pa.array([1], pa.int64()),
        "event_timestamp": pa.array([dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)],
                                    pa.timestamp("us", tz="UTC")),
        "failures": pa.array([0], pa.int64()),
        "rate": pa.array([0.0], pa.float64()),
    }), repo / "data" / "payments" / "part-0.parquet")
    subprocess.run([str(granary_bin), "-C", str(repo), "apply"], check=True, capture_output=True,
                   timeout=120)
    port = free_port()
    log_path = repo / "serve.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([str(granary_bin), "-C", str(repo), "serve", "--port", str(port),
                                 "--threads", "2", *TEST_QUEUE_DELAY], stdout=log, stderr=log)
    srv = Server(proc, port, log_path)
    try:
        deadline = time.time() + 15
        while True:
            try:
                if srv.request("GET", "/health")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"granary serve did not come up:\n{log_path.read_text()}")
            time.sleep(0.02)
        yield srv
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class Server:
    def __init__(self, proc, port, log_path):
        self.proc, self.port, self.log_path = proc, port, log_path

    def request(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body,
                         headers={"Content-Type": "application/json"} if body else {})
            res = conn.getresponse()
            payload = res.read().decode()
            ctype = res.getheader("Content-Type", "")
            return res.status, (json.loads(payload) if ctype.startswith("application/json")
                                else payload)
        finally:
            conn.close()

    def served_rate(self, customer=1):
        status, body = self.request("POST", "/get-online-features", json.dumps(
            {"features": ["risk:rate"], "entities": {"customer_id": [customer]}}))
        assert status == 200, body
        return body["results"][1]["values"][0], body["results"][1]["statuses"][0]

    def assert_still_serving(self):
        assert self.proc.poll() is None, f"granary serve died:\n{self.log_path.read_text()}"
        status, body = self.request("GET", "/health")
        assert status == 200, body


CASES = [
    # (path, body, text the 400's message contains)
    ("/get-online-features", CRASH_NUMBER, "the request must be a JSON object"),
    ("/get-online-features",
     '{"features": ["risk:rate"], "entities": {"customer_id": [%s]}}' % CRASH_NUMBER,
     "entities.customer_id[0]: 0 is not an int64"),
    ("/get-online-features", DEEP,
     "the request is not valid JSON: line 1, column 65: arrays and objects are nested more "
     "than 64 deep"),
    ("/get-online-features", '{"features": ["risk:rate"], "entities": {"customer_id": [NaN]}}',
     "NaN and Infinity are not JSON"),
    ("/push", CRASH_NUMBER, "the request must be a JSON object"),
    ("/push", push_json("Infe2"), "NaN, Infinity and -Infinity are read only as whole values"),
    ("/push", push_json("NaNe299"), "NaN, Infinity and -Infinity are read only as whole values"),
    ("/push", DEEP, "nested more than 64 deep"),
    ("/push", push_json("1e999"), "the number 1e999 is too large for a double"),
    ("/materialize-incremental", CRASH_NUMBER, "the request must be a JSON object"),
    ("/materialize-incremental", '{"end": %s}' % CRASH_NUMBER, "end: must be a string"),
    ("/materialize-incremental", DEEP, "nested more than 64 deep"),
    ("/materialize-incremental", '{"end": "2026-01-01T00:00:00Z", "wait": Infinity}',
     "NaN and Infinity are not JSON"),
]


@pytest.mark.parametrize("path,body,message", CASES)
def test_inputs_that_crashed_the_old_parser_are_a_400_and_the_server_keeps_serving(
        server, path, body, message):
    status, reply = server.request("POST", path, body)
    assert status == 400, reply
    assert message in reply["error"]["message"], reply
    server.assert_still_serving()


def test_a_push_with_a_glued_infinity_stores_nothing(server):
    at = NOW - dt.timedelta(minutes=5)
    status, reply = server.request("POST", "/push", push_json("0.25", customer=2, at=at))
    assert status == 200, reply
    # RapidJSON read past its buffer on Infe2 and stored 0.0 as PRESENT.
    status, reply = server.request("POST", "/push", push_json("Infe2", customer=2))
    assert status == 400, reply
    assert server.served_rate(2) == (0.25, "PRESENT")


def test_the_long_number_in_a_push_is_a_correctly_rounded_zero(server):
    # Valid JSON whose value is below the smallest double: stored as 0.0, as IEEE 754 rounds it.
    status, reply = server.request("POST", "/push", push_json(CRASH_NUMBER, customer=3))
    assert status == 200, reply
    assert server.served_rate(3) == (0.0, "PRESENT")
    status, reply = server.request("POST", "/push",
                                   push_json("0.1000000000000000055511151231257827", customer=4))
    assert status == 200, reply
    assert server.served_rate(4) == (0.1, "PRESENT")


def test_nan_and_infinity_in_a_push_are_accepted_as_python_writes_them(server):
    body = json.dumps({"push_source_name": "payments_push",
                       "df": {"customer_id": [5, 6], "event_timestamp": [rfc3339(NOW)] * 2,
                              "failures": [1, 2], "rate": [float("nan"), float("-inf")]}})
    assert "NaN" in body and "-Infinity" in body
    status, reply = server.request("POST", "/push", body)
    assert status == 200, reply
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("POST", "/get-online-features", body=json.dumps(
        {"features": ["risk:rate"], "entities": {"customer_id": [5, 6]}}))
    raw = conn.getresponse().read().decode()
    conn.close()
    values = json.loads(raw)["results"][1]["values"]  # Python's json reads NaN back
    assert math.isnan(values[0]) and values[1] == float("-inf"), raw


@pytest.mark.parametrize("path", ["/get-online-features", "/push", "/materialize-incremental"])
def test_nesting_up_to_the_body_limit_is_a_400(server, path):
    for body in ("[" * BODY_LIMIT, '{"a":' * (BODY_LIMIT // 5), "[" * 64 + "]" * 63):
        status, reply = server.request("POST", path, body)
        assert status == 400, reply
        assert "the request is not valid JSON" in reply["error"]["message"], reply
    server.assert_still_serving()
    assert server.served_rate(1)[1] in ("PRESENT", "NOT_FOUND")
