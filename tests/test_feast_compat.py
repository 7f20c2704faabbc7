"""Feast's clients, unchanged, against `granary serve`: the real feast package (pinned, in
.venv-feast) runs its SDK with `online_store: {type: remote}` and its gRPC types against a real
`granary serve` and, over the same data, against Feast's own `feast serve`; the answers must be
the same, apart from the documented improvements (docs/FEAST.md, "Behavioural differences").
"""
import datetime as dt
import json
import shutil

import pytest

from feast_helpers import (GRANARY_DEFINITIONS, NOW, FeastServer, feast, feast_client,
                           make_feast_repo, require_feast)
from redis_helpers import free_port
from serve_helpers import Server

START = "2020-01-01T00:00:00"
END = (NOW + dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
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


class Pair:
    """The same operations through Feast's SDK against both servers."""

    def __init__(self, feast_client_repo, granary_client_repo, feast_server, granary_server,
                 granary_grpc_port, feast_grpc_port):
        self.feast_repo = feast_client_repo
        self.granary_repo = granary_client_repo
        self.feast_server = feast_server
        self.granary = granary_server
        self.granary_grpc = f"127.0.0.1:{granary_grpc_port}"
        self.feast_grpc = f"127.0.0.1:{feast_grpc_port}"

    def run(self, operations):
        return feast_client(self.feast_repo, operations), feast_client(self.granary_repo,
                                                                       operations)


@pytest.fixture(scope="module")
def pair(tmp_path_factory, granary_bin):
    require_feast()
    from conftest import Cli
    tmp = tmp_path_factory.mktemp("feast_compat")
    # Feast's side: its repository, applied and materialized into its sqlite online store.
    feast_repo = make_feast_repo(tmp / "feast_repo")
    feast(feast_repo, "materialize", START, END)
    # Granary's side: the same definitions and the same Parquet file.
    granary_repo = tmp / "granary_repo"
    (granary_repo / "data").mkdir(parents=True)
    shutil.copy(feast_repo / "data" / "driver_stats.parquet", granary_repo / "data")
    (granary_repo / "granary.yaml").write_text("project: driver_compat\n")
    (granary_repo / "features.yaml").write_text(GRANARY_DEFINITIONS)
    cli = Cli(granary_bin, tmp)
    cli("-C", granary_repo, "apply", check=True)
    cli("-C", granary_repo, "materialize", START, END, check=True)

    grpc_port = free_port()
    granary = Server(granary_bin, granary_repo, args=("--grpc-port", str(grpc_port)))
    feast_server = FeastServer(feast_repo)
    feast_grpc = FeastServer(feast_repo, grpc=True)
    registry = feast_repo / "data" / "registry.db"
    try:
        yield Pair(client_repo(tmp / "client_feast", registry, feast_server.url),
                   client_repo(tmp / "client_granary", registry,
                               f"http://127.0.0.1:{granary.port}"),
                   feast_server, granary, grpc_port, feast_grpc.port)
    finally:
        feast_server.stop()
        feast_grpc.stop()
        assert granary.stop() == 0


def same(feast_result, granary_result):
    assert "error" not in feast_result, feast_result
    assert "error" not in granary_result, granary_result
    assert granary_result == feast_result


def test_get_online_features_by_feature_list(pair):
    ops = [{"op": "get", "features": ["driver_hourly_stats:conv_rate",
                                      "driver_hourly_stats:acc_rate",
                                      "driver_hourly_stats:avg_daily_trips",
                                      "driver_hourly_stats:city"],
            "entity_rows": [{"driver_id": d} for d in DRIVERS]}]
    (f,), (g,) = pair.run(ops)
    same(f, g)
    # The latest row per driver, the later-created one on a tie (1002), nulls kept (1003).
    assert g["driver_id"] == DRIVERS
    assert g["conv_rate"] == [0.5, 0.375, 0.75, 1.0, 0.0625]
    assert g["acc_rate"][2] is None and g["city"][2] is None


def test_feature_service_full_names_and_version_metadata(pair):
    ops = [{"op": "get", "feature_service": "driver_activity",
            "entity_rows": [{"driver_id": d} for d in DRIVERS]},
           {"op": "get", "features": ["driver_hourly_stats:conv_rate",
                                      "driver_hourly_stats:avg_daily_trips"],
            "entity_rows": [{"driver_id": 1001}, {"driver_id": 1004}],
            "full_feature_names": True, "include_feature_view_version_metadata": True}]
    feast_results, granary_results = pair.run(ops)
    for f, g in zip(feast_results, granary_results):
        same(f, g)
    assert sorted(granary_results[1]) == ["driver_hourly_stats__avg_daily_trips",
                                          "driver_hourly_stats__conv_rate", "driver_id"]


def test_raw_http_answers_match_apart_from_documented_statuses(pair):
    body = {"features": ["driver_hourly_stats:conv_rate", "driver_hourly_stats:city"],
            "entities": {"driver_id": [1004, 9999, 1001]}, "full_feature_names": False,
            "include_feature_view_version_metadata": True}
    fs, f = pair.feast_server.post("/get-online-features", body)
    gs, g = pair.granary.post("/get-online-features", body)
    assert (fs, gs) == (200, 200), (f, g)
    assert g["metadata"] == f["metadata"]
    assert len(g["results"]) == len(f["results"]) == 3
    for fc, gc in zip(f["results"], g["results"]):
        assert gc["values"] == fc["values"]
        assert gc["event_timestamps"] == fc["event_timestamps"]
    # Documented: a missing entity (9999) is NOT_FOUND in Granary; Feast reports it otherwise.
    assert [c["statuses"][1] for c in g["results"][1:]] == ["NOT_FOUND", "NOT_FOUND"]
    assert [c["statuses"][0] for c in g["results"][1:]] == \
        [c["statuses"][0] for c in f["results"][1:]] == ["PRESENT", "PRESENT"]


def test_write_to_online_store_then_read_back(pair):
    t = NOW - dt.timedelta(minutes=30)
    ops = [{"op": "write", "feature_view_name": "driver_hourly_stats",
            "df": {"driver_id": [2001, 1004], "event_timestamp": [iso(t), iso(NOW)],
                   "created": [iso(t), iso(NOW)], "conv_rate": [0.5, 0.875],
                   "acc_rate": [0.25, None], "avg_daily_trips": [4, 5],
                   "city": ["Metz", "Nice"]},
            "timestamps": ["event_timestamp", "created"]},
           {"op": "get", "features": ["driver_hourly_stats:conv_rate",
                                      "driver_hourly_stats:acc_rate",
                                      "driver_hourly_stats:city"],
            "entity_rows": [{"driver_id": 2001}, {"driver_id": 1004}]}]
    feast_results, granary_results = pair.run(ops)
    assert feast_results[0] == granary_results[0] == {"ok": True}
    same(feast_results[1], granary_results[1])
    assert granary_results[1]["conv_rate"] == [0.5, 0.875]


def test_push_through_the_sdk_then_read_back(pair):
    t = NOW - dt.timedelta(minutes=10)
    ops = [{"op": "push", "push_source_name": "driver_stats_push",
            "df": {"driver_id": [3001, 3002], "event_timestamp": [iso(t), iso(t)],
                   "created": [iso(t), iso(t)], "conv_rate": [0.25, 0.75],
                   "acc_rate": [0.5, 0.5], "avg_daily_trips": [1, 2], "city": ["A", "B"]},
            "timestamps": ["event_timestamp", "created"]},
           {"op": "get", "features": ["driver_fresh_stats:conv_rate",
                                      "driver_fresh_stats:avg_daily_trips"],
            "entity_rows": [{"driver_id": 3001}, {"driver_id": 3002}, {"driver_id": 3003}]}]
    feast_results, granary_results = pair.run(ops)
    assert feast_results[0] == granary_results[0] == {"ok": True}
    same(feast_results[1], granary_results[1])
    assert granary_results[1]["conv_rate"] == [0.25, 0.75, None]


def test_an_older_write_does_not_replace_a_newer_row_in_granary(pair):
    # Documented improvement: Feast's sqlite store overwrites with whatever comes last; Granary
    # writes if newer by (event_timestamp, created), as materialization does.
    old = NOW - dt.timedelta(days=1)
    ops = [{"op": "write", "feature_view_name": "driver_hourly_stats",
            "df": {"driver_id": [1001], "event_timestamp": [iso(old)], "created": [iso(old)],
                   "conv_rate": [0.0], "acc_rate": [0.0], "avg_daily_trips": [0],
                   "city": ["Old"]},
            "timestamps": ["event_timestamp", "created"]},
           {"op": "get", "features": ["driver_hourly_stats:city"],
            "entity_rows": [{"driver_id": 1001}]}]
    feast_results, granary_results = pair.run(ops)
    assert granary_results[1]["city"] == ["Lyon"]
    assert feast_results[1]["city"] == ["Old"]


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


def test_grpc_get_online_features_matches_feasts_grpc_server(pair):
    ops = []
    for target in (pair.feast_grpc, pair.granary_grpc):
        ops.append({"op": "grpc_get", "target": target,
                    "features": ["driver_hourly_stats:conv_rate", "driver_hourly_stats:city",
                                 "driver_hourly_stats:avg_daily_trips"],
                    "entities": {"driver_id": [1001, 1002, 1003]}})
        ops.append({"op": "grpc_get", "target": target, "feature_service": "driver_activity",
                    "full_feature_names": True, "entities": {"driver_id": [1002, 1004]}})
    results = feast_client(pair.granary_repo, ops)
    feast_list, feast_service, granary_list, granary_service = results
    for f, g in ((feast_list, granary_list), (feast_service, granary_service)):
        assert "error" not in f and "error" not in g, (f, g)
        assert g["metadata"] == f["metadata"]
        assert [r["values"] for r in g["results"]] == [r["values"] for r in f["results"]]
        assert [r["statuses"] for r in g["results"]] == [r["statuses"] for r in f["results"]]
        assert [r.get("eventTimestamps") for r in g["results"][1:]] == \
            [r.get("eventTimestamps") for r in f["results"][1:]]
    assert granary_list["results"][1]["values"][0] == {"floatVal": 0.5}
