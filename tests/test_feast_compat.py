"""Feast's clients, unchanged, against `granary serve`: the real feast package (pinned, in
.venv-feast) runs its SDK with `online_store: {type: remote}` and its gRPC types against a real
`granary serve` and, over the same data, against Feast's own `feast serve`; the answers must be
the same, apart from the documented improvements (docs/FEAST.md, "Behavioural differences").
"""
import datetime as dt
import json

import pytest

from feast_helpers import (FEAST_PYTHON, NOW, FeastServer, feast, feast_client, make_feast_repo,
                           require_feast)
from redis_helpers import free_port
from serve_helpers import Server

START = "2020-01-01T00:00:00"
END = NOW.strftime("%Y-%m-%dT%H:%M:%S")
DRIVERS = [1001, 1002, 1003, 1004, 1005]


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def client_repo(path, registry, url):
    """A Feast repository whose online store is the server at `url` (Feast's remote store)."""
    path.mkdir(parents=True)
    (path / "feature_store.yaml").write_text(
        "project: driver_compat\n"
        f"registry: {registry}\n"
        "provider: local\n"
        f"online_store: {{type: remote, path: '{url}'}}\n"
        "offline_store: {type: file}\n"
        "entity_key_serialization_version: 3\n"
        "auth: {type: no_auth}\n")
    return path


def t_minus(**kw):
    return iso(NOW - dt.timedelta(**kw))


# Every scenario through Feast's SDK, in this order, in one client process per server (importing
# feast takes seconds): reads, then writes and pushes, then reads of what they wrote.
SCENARIOS = [
    ("by_feature_list", [
        {"op": "get", "features": ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate",
                                   "driver_hourly_stats:avg_daily_trips",
                                   "driver_hourly_stats:city"],
         "entity_rows": [{"driver_id": d} for d in DRIVERS]}]),
    ("in_another_order", [
        {"op": "get", "features": ["driver_hourly_stats:city", "driver_hourly_stats:conv_rate"],
         "entity_rows": [{"driver_id": 1004}, {"driver_id": 9999}]}]),
    ("service_and_full_names", [
        {"op": "get", "feature_service": "driver_activity", "full_feature_names": True,
         "entity_rows": [{"driver_id": d} for d in DRIVERS]},
        {"op": "get", "features": ["driver_hourly_stats:conv_rate",
                                   "driver_hourly_stats:avg_daily_trips"],
         "entity_rows": [{"driver_id": 1001}, {"driver_id": 1004}],
         "full_feature_names": True, "include_feature_view_version_metadata": True}]),
    ("ambiguous_names", [
        # conv_rate is in both views of the service: both servers refuse it without full names.
        {"op": "get", "feature_service": "driver_activity",
         "entity_rows": [{"driver_id": 1001}]}]),
    ("write_then_read", [
        {"op": "write", "feature_view_name": "driver_hourly_stats",
         "df": {"driver_id": [2001, 1004],
                "event_timestamp": [t_minus(minutes=30), iso(NOW)],
                "created": [t_minus(minutes=30), iso(NOW)], "conv_rate": [0.5, 0.875],
                "acc_rate": [0.25, None], "avg_daily_trips": [4, 5], "city": ["Metz", "Nice"]},
         "timestamps": ["event_timestamp", "created"]},
        {"op": "get", "features": ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate",
                                   "driver_hourly_stats:city"],
         "entity_rows": [{"driver_id": 2001}, {"driver_id": 1004}]}]),
    ("push_then_read", [
        {"op": "push", "push_source_name": "driver_stats_push",
         "df": {"driver_id": [3001, 3002],
                "event_timestamp": [t_minus(minutes=10), t_minus(minutes=10)],
                "created": [t_minus(minutes=10), t_minus(minutes=10)], "conv_rate": [0.25, 0.75],
                "acc_rate": [0.5, 0.5], "avg_daily_trips": [1, 2], "city": ["A", "B"]},
         "timestamps": ["event_timestamp", "created"]},
        {"op": "get", "features": ["driver_fresh_stats:conv_rate",
                                   "driver_fresh_stats:avg_daily_trips"],
         "entity_rows": [{"driver_id": 3001}, {"driver_id": 3002}, {"driver_id": 3003}]}]),
    ("older_write", [
        {"op": "write", "feature_view_name": "driver_hourly_stats",
         "df": {"driver_id": [1001], "event_timestamp": [t_minus(days=1)],
                "created": [t_minus(days=1)], "conv_rate": [0.0], "acc_rate": [0.0],
                "avg_daily_trips": [0], "city": ["Old"]},
         "timestamps": ["event_timestamp", "created"]},
        {"op": "get", "features": ["driver_hourly_stats:city"],
         "entity_rows": [{"driver_id": 1001}]}]),
]


class Pair:
    """Both servers, and the results of SCENARIOS through Feast's SDK against each."""

    def __init__(self, feast_client_repo, granary_client_repo, feast_server, granary_server,
                 granary_grpc_port, feast_grpc_port):
        self.feast_repo = feast_client_repo
        self.granary_repo = granary_client_repo
        self.feast_server = feast_server
        self.granary = granary_server
        self.granary_grpc = f"127.0.0.1:{granary_grpc_port}"
        self.feast_grpc = f"127.0.0.1:{feast_grpc_port}"
        operations = [op for _, ops in SCENARIOS for op in ops]
        feast_results = feast_client(self.feast_repo, operations)
        granary_results = feast_client(self.granary_repo, operations)
        self.results = {}
        i = 0
        for name, ops in SCENARIOS:
            self.results[name] = (feast_results[i:i + len(ops)], granary_results[i:i + len(ops)])
            i += len(ops)


@pytest.fixture(scope="module")
def pair(tmp_path_factory, granary_bin):
    require_feast()
    from conftest import Cli
    tmp = tmp_path_factory.mktemp("feast_compat")
    # Feast's side: its repository, applied and materialized into its sqlite online store.
    feast_repo = make_feast_repo(tmp / "feast_repo")
    feast(feast_repo, "materialize", START, END)
    # Granary's side: the same repository imported (granary import-feast), the same Parquet file.
    granary_repo = tmp / "granary_repo"
    cli = Cli(granary_bin, tmp)
    cli("import-feast", feast_repo, "--out", granary_repo, "--feast-python", FEAST_PYTHON,
        check=True)
    cli("-C", granary_repo, "apply", check=True)
    cli("-C", granary_repo, "materialize", START, END, check=True)

    grpc_port = free_port()
    started = []  # stopped in the end even when a later one fails to start
    try:
        granary = Server(granary_bin, granary_repo, args=("--grpc-port", str(grpc_port)))
        started.append(granary)
        feast_server = FeastServer(feast_repo)
        started.append(feast_server)
        feast_grpc = FeastServer(feast_repo, grpc=True)
        started.append(feast_grpc)
        registry = feast_repo / "data" / "registry.db"
        yield Pair(client_repo(tmp / "client_feast", registry, feast_server.url),
                   client_repo(tmp / "client_granary", registry,
                               f"http://127.0.0.1:{granary.port}"),
                   feast_server, granary, grpc_port, feast_grpc.port)
    finally:
        codes = [server.stop() for server in started]
    assert codes[0] == 0  # granary serve drained and stopped cleanly


def same(feast_result, granary_result):
    assert "error" not in feast_result, feast_result
    assert "error" not in granary_result, granary_result
    assert granary_result == feast_result


def test_get_online_features_by_feature_list(pair):
    (f,), (g,) = pair.results["by_feature_list"]
    same(f, g)
    # The latest row per driver, the later-created one on a tie (1002), nulls kept (1003).
    assert g["driver_id"] == DRIVERS
    assert g["conv_rate"] == [0.5, 0.375, 0.75, 1.0, 0.0625]
    assert g["acc_rate"][2] is None and g["city"][2] is None
    (f,), (g,) = pair.results["in_another_order"]
    same(f, g)  # dicts: equal whatever the order of their keys
    # Documented: Granary answers in the requested order; Feast's order of features varies
    # from run to run (a Python set of names on its server).
    assert list(g) == ["driver_id", "city", "conv_rate"]


def test_feature_service_full_names_and_version_metadata(pair):
    feast_results, granary_results = pair.results["service_and_full_names"]
    for f, g in zip(feast_results, granary_results):
        same(f, g)
    assert sorted(granary_results[0]) == [
        "driver_fresh_stats__avg_daily_trips", "driver_fresh_stats__conv_rate",
        "driver_hourly_stats__avg_daily_trips", "driver_hourly_stats__conv_rate", "driver_id"]
    assert sorted(granary_results[1]) == ["driver_hourly_stats__avg_daily_trips",
                                          "driver_hourly_stats__conv_rate", "driver_id"]
    # Both refuse two features of one name; Feast with a 500 (its client retries, then fails),
    # Granary with a 400 saying what to do.
    (f,), (g,) = pair.results["ambiguous_names"]
    assert "500" in f["error"]
    assert "400" in g["error"] and "set full_feature_names to true" in g["error"]


def test_write_to_online_store_then_read_back(pair):
    feast_results, granary_results = pair.results["write_then_read"]
    assert feast_results[0] == granary_results[0] == {"ok": True}
    same(feast_results[1], granary_results[1])
    assert granary_results[1]["conv_rate"] == [0.5, 0.875]


def test_push_through_the_sdk_then_read_back(pair):
    feast_results, granary_results = pair.results["push_then_read"]
    assert feast_results[0] == granary_results[0] == {"ok": True}
    same(feast_results[1], granary_results[1])
    assert granary_results[1]["conv_rate"] == [0.25, 0.75, None]


def test_an_older_write_does_not_replace_a_newer_row_in_granary(pair):
    # Documented improvement: Feast's sqlite store overwrites with whatever comes last; Granary
    # writes if newer by (event_timestamp, created), as materialization does.
    feast_results, granary_results = pair.results["older_write"]
    assert granary_results[1]["city"] == ["Lyon"]
    assert feast_results[1]["city"] == ["Old"]


def test_raw_http_answers_match_apart_from_documented_statuses(pair):
    body = {"features": ["driver_hourly_stats:conv_rate", "driver_hourly_stats:city"],
            "entities": {"driver_id": [1003, 9999, 1002]}, "full_feature_names": False,
            "include_feature_view_version_metadata": True}
    fs, f = pair.feast_server.post("/get-online-features", body)
    gs, g = pair.granary.post("/get-online-features", body)
    assert (fs, gs) == (200, 200), (f, g)
    assert g["metadata"]["feature_names"] == ["driver_id", "conv_rate", "city"]  # as requested
    assert sorted(g["metadata"]["feature_names"]) == sorted(f["metadata"]["feature_names"])
    assert g["metadata"]["feature_view_metadata"] == f["metadata"]["feature_view_metadata"]
    # Columns compared by name: Feast's order varies (see above).
    fcols = dict(zip(f["metadata"]["feature_names"], f["results"]))
    g = {"results": [g["results"][0], g["results"][1], g["results"][2]]}
    f = {"results": [fcols["driver_id"], fcols["conv_rate"], fcols["city"]]}
    assert len(g["results"]) == len(f["results"]) == 3
    for fc, gc in zip(f["results"], g["results"]):
        assert gc["values"] == fc["values"]
        assert gc["event_timestamps"] == fc["event_timestamps"]
        # Documented: a null value of a present row (1003's city) is NULL_VALUE in Granary;
        # Feast says PRESENT with a null value.
        assert gc["statuses"] == ["NULL_VALUE" if s == "PRESENT" and v is None else s
                                  for v, s in zip(fc["values"], fc["statuses"])]
    assert (g["results"][2]["statuses"][0], f["results"][2]["statuses"][0]) == \
        ("NULL_VALUE", "PRESENT")
    # A missing entity (9999) is NOT_FOUND in both (Feast 0.67).
    assert [c["statuses"][1] for c in g["results"][1:]] == ["NOT_FOUND", "NOT_FOUND"]


def test_granary_rejects_unknown_fields_naming_the_known_ones(pair):
    status, body = pair.granary.post("/get-online-features", {
        "features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1]},
        "full_feature_name": True})
    assert status == 400
    assert "unknown request field 'full_feature_name', did you mean 'full_feature_names'?" in \
        json.dumps(body)
    assert "include_feature_view_version_metadata" in json.dumps(body)
    status, body = pair.granary.post("/write-to-online-store", {
        "feature_view_name": "driver_hourly_stats", "df": {"driver_id": [1]}, "allow_cache": 1})
    assert status == 400
    assert "the fields are feature_view_name, df, allow_registry_cache and transform_on_write" \
        in json.dumps(body)


def by_name(response):
    """A gRPC response (MessageToDict) as {column: (values, statuses, event_timestamps)}."""
    names = response["metadata"]["featureNames"]["val"]
    return {name: (r["values"], r["statuses"], r.get("eventTimestamps"))
            for name, r in zip(names, response["results"])}


def test_grpc_get_online_features_matches_feasts_grpc_server(pair):
    ops = []
    features = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:city",
                "driver_hourly_stats:avg_daily_trips"]
    for target, service in ((pair.feast_grpc, "GrpcFeatureServer"),
                            (pair.granary_grpc, "ServingService")):
        ops.append({"op": "grpc_get", "target": target, "service": service,
                    "features": features, "entities": {"driver_id": [1005, 1002, 1003]}})
        ops.append({"op": "grpc_get", "target": target, "service": service,
                    "feature_service": "driver_activity", "full_feature_names": True,
                    "entities": {"driver_id": [1002, 1005]}})
    results = feast_client(pair.granary_repo, ops)
    feast_list, feast_service, granary_list, granary_service = results
    for f, g in ((feast_list, granary_list), (feast_service, granary_service)):
        assert "error" not in f and "error" not in g, (f, g)
        feast_columns = by_name(f)
        # Documented: Feast says PRESENT for a null value of a present row, Granary NULL_VALUE.
        for name, (values, statuses, times) in feast_columns.items():
            statuses[:] = ["NULL_VALUE" if s == "PRESENT" and v == {} else s
                           for v, s in zip(values, statuses)]
        assert by_name(g) == feast_columns
    # Documented: the requested order (Feast's servers use the view's schema order).
    assert granary_list["metadata"]["featureNames"]["val"] == \
        ["driver_id", "conv_rate", "city", "avg_daily_trips"]
    assert by_name(granary_list)["conv_rate"][0][0] == {"floatVal": 0.0625}
    assert by_name(granary_list)["city"][1][2] == "NULL_VALUE"
