"""granary serve end to end, the read path: POST /get-online-features in Feast's shape on the
embedded store and on a real redis-server (stopped and restarted under the server), every 4xx
of the request, HTTP protocol errors, concurrent clients.
"""
import datetime as dt
import http.client
import json
import socket
import threading
import time

import pytest

from redis_helpers import free_port, start_redis
from serve_helpers import (EPOCH, NOW, make_repo, push_body, rfc3339, serve,  # noqa: F401
                           shared_server)


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


def test_the_compact_form_has_the_values_of_feasts_shape(cli, tmp_path, serve):
    """include_statuses / include_event_timestamps false: each result keeps only its values,
    which are those of the default answer (null where the status is not PRESENT); the default
    answer does not change."""
    repo = make_repo(cli, tmp_path)
    server = serve(repo)
    fresh, stale = NOW - dt.timedelta(minutes=5), NOW - dt.timedelta(days=2)
    assert server.post("/push", push_body([1001, 1002], fresh, failures=[3, None]))[0] == 200
    assert server.post("/push", push_body([1003], stale))[0] == 200
    request = {"features": ["risk:failures", "risk:rate"], "full_feature_names": True,
               "entities": {"customer_id": [1001, 1002, 1003, 4242]}}
    status, full = server.post("/get-online-features", request)
    assert status == 200, full
    assert all(set(r) == {"values", "statuses", "event_timestamps"} for r in full["results"])
    forms = {(False, False): {"values"}, (True, False): {"values", "statuses"},
             (False, True): {"values", "event_timestamps"}}
    for (statuses, times), keys in forms.items():
        status, body = server.post("/get-online-features", {
            **request, "include_statuses": statuses, "include_event_timestamps": times})
        assert status == 200, body
        assert body["metadata"] == full["metadata"]
        assert [set(r) for r in body["results"]] == [keys] * 3
        for got, want in zip(body["results"], full["results"]):
            assert {k: got[k] for k in keys} == {k: want[k] for k in keys}
    status, body = server.post("/get-online-features", {
        **request, "include_statuses": False, "include_event_timestamps": False})
    assert body["results"] == [{"values": [1001, 1002, 1003, 4242]},
                               {"values": [3, None, None, None]},
                               {"values": [0.5, 0.5, None, None]}]


BAD_REQUESTS = [
    # (path, body, status, part of the message)
    ("/get-online-features", "{", 400, "the request is not valid JSON: line 1, column 2"),
    ("/get-online-features", {"features": ["risk:rate"], "entities": {"customer_id": [1]},
                              "include_statuses": "false"}, 400,
     "include_statuses: must be true or false, not a string"),
    ("/get-online-features", {"features": ["risk:rate"], "entities": {"customer_id": [1]},
                              "include_event_timestamps": None}, 400,
     "include_event_timestamps: must be true or false, not null"),
    ("/get-online-features", {"features": ["risk:rate"], "entities": {"customer_id": [1]},
                              "include_timestamps": False}, 400,
     "unknown request field 'include_timestamps'"),
    ("/get-online-features", {"features": ["risk:rate"], "entities": {"customer_id": [1]},
                              "partial": True, "include_statuses": False}, 400,
     "partial: true needs the statuses"),
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
