"""Feast's remote offline store (its Arrow Flight client, `offline_store: {type: remote}`) against
a real `granary serve-offline`: the real feast package (pinned, in .venv-feast) builds training
sets with `get_historical_features(...).to_df()`, and the rows must be those `granary
get-historical-features` writes for the same entity rows. Malformed Flight calls from a raw
pyarrow.flight client get errors, and the server keeps serving.
"""
import datetime as dt
import json
import random
import subprocess
import time

import pyarrow as pa
import pyarrow.flight as fl
import pyarrow.parquet as pq
import pytest

from feast_helpers import FEAST_PYTHON, NOW, feast_client, make_feast_repo, require_feast
from redis_helpers import free_port
from serve_helpers import stop_gracefully

TOKEN = "s3cret-offline"
FEATURES = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate",
            "driver_hourly_stats:avg_daily_trips", "driver_hourly_stats:city"]


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def t_minus(**kw):
    return NOW - dt.timedelta(**kw)


# Entity rows: before any data (1001 at -10h), between versions, a tie on event time broken by
# the created time (1002), a null (1003), an unknown driver, a repeated row, and a column that
# passes through.
ENTITY_ROWS = [
    (1001, t_minus(hours=10), "a"),
    (1001, t_minus(hours=4), "b"),
    (1001, t_minus(minutes=30), "c"),
    (1002, t_minus(minutes=30), "d"),
    (1003, t_minus(hours=1), "e"),
    (1004, NOW, "f"),
    (9999, NOW, "g"),
    (1001, t_minus(minutes=30), "c"),
    (1005, t_minus(hours=2), "h"),
]


def entity_frame():
    return {"driver_id": [r[0] for r in ENTITY_ROWS],
            "event_timestamp": [iso(r[1]) for r in ENTITY_ROWS],
            "label": [r[2] for r in ENTITY_ROWS]}


def client_repo(path, registry, port, token=None):
    """A Feast repository whose offline store is `granary serve-offline` on `port`."""
    path.mkdir(parents=True)
    auth = f"{{type: kubernetes, user_token: {token}}}" if token else "{type: no_auth}"
    (path / "feature_store.yaml").write_text(
        "project: driver_compat\n"
        f"registry: {registry}\n"
        "provider: local\n"
        "online_store: {type: sqlite, path: online.db}\n"
        f"offline_store: {{type: remote, host: 127.0.0.1, port: {port}}}\n"
        "entity_key_serialization_version: 3\n"
        f"auth: {auth}\n")
    return path


class OfflineServer:
    """`granary serve-offline` on a free port of 127.0.0.1, stopped by pid."""

    def __init__(self, binary, repo, token=None):
        self.port = free_port()
        self.log_path = repo / f"serve-offline-{self.port}.log"
        args = [str(binary), "-C", str(repo), "serve-offline", "--port", str(self.port)]
        env = None
        if token:
            import os
            env = dict(os.environ, GRANARY_SERVE_TOKEN=token)
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log, env=env)
        deadline = time.time() + 60
        while "listening on" not in self.log_path.read_text():
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                pytest.fail(f"granary serve-offline did not start:\n{self.log_path.read_text()}")
            time.sleep(0.1)

    def client(self, token=None):
        kwargs = {}
        if token:
            class Bearer(fl.ClientMiddlewareFactory):
                def start_call(self, info):
                    class M(fl.ClientMiddleware):
                        def sending_headers(self):
                            return {"authorization": f"Bearer {token}"}
                    return M()
            kwargs["middleware"] = [Bearer()]
        return fl.FlightClient(f"grpc+tcp://127.0.0.1:{self.port}", **kwargs)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        return stop_gracefully(self.proc)


class Setup:
    pass


@pytest.fixture(scope="module")
def setup(tmp_path_factory, granary_bin):
    require_feast()
    from conftest import Cli
    tmp = tmp_path_factory.mktemp("feast_offline")
    s = Setup()
    s.feast_repo = make_feast_repo(tmp / "feast_repo")
    s.granary_repo = tmp / "granary_repo"
    s.cli = Cli(granary_bin, tmp)
    s.cli("import-feast", s.feast_repo, "--out", s.granary_repo, "--feast-python", FEAST_PYTHON,
          check=True)
    s.cli("-C", s.granary_repo, "apply", check=True)
    s.tmp = tmp
    servers = []
    try:
        s.server = OfflineServer(granary_bin, s.granary_repo)
        servers.append(s.server)
        s.secured = OfflineServer(granary_bin, s.granary_repo, token=TOKEN)
        servers.append(s.secured)
        registry = s.feast_repo / "data" / "registry.db"
        s.client_repo = client_repo(tmp / "client", registry, s.server.port)
        s.token_repo = client_repo(tmp / "client_token", registry, s.secured.port, token=TOKEN)
        s.wrong_token_repo = client_repo(tmp / "client_wrong", registry, s.secured.port,
                                         token="wrong")
        yield s
    finally:
        codes = [server.stop() for server in servers]
    assert codes == [0, 0]  # both stopped cleanly on SIGTERM


def cli_rows(s, name, *args):
    """`granary get-historical-features` on ENTITY_ROWS: (columns, rows) as Feast's to_df gives."""
    entities = s.tmp / f"{name}.parquet"
    pq.write_table(pa.table({
        "driver_id": pa.array([r[0] for r in ENTITY_ROWS], pa.int64()),
        "event_timestamp": pa.array([r[1] for r in ENTITY_ROWS], pa.timestamp("us", tz="UTC")),
        "label": pa.array([r[2] for r in ENTITY_ROWS], pa.string()),
    }), entities)
    out = s.tmp / f"{name}-out.parquet"
    s.cli("-C", s.granary_repo, "get-historical-features", "--entities", entities, "-o", out,
          "-q", *args, check=True)
    table = pq.read_table(out)
    rows = [[v.isoformat() if hasattr(v, "isoformat") else v for v in row.values()]
            for row in table.to_pylist()]
    return table.column_names, rows


def same_rows(feast_result, columns, rows):
    assert "error" not in feast_result, feast_result
    assert feast_result["columns"] == columns
    assert len(feast_result["rows"]) == len(rows)
    for got, want in zip(feast_result["rows"], rows):
        # pandas turns an integer column with a null into floats: 10.0 == 10.
        assert got == want, (got, want)


def test_feast_training_set_is_the_cli_training_set(setup):
    s = setup
    by_list, by_service = feast_client(s.client_repo, [
        {"op": "historical", "df": entity_frame(), "timestamps": ["event_timestamp"],
         "features": FEATURES},
        {"op": "historical", "df": entity_frame(), "timestamps": ["event_timestamp"],
         "feature_service": "driver_activity", "full_feature_names": True},
    ])
    columns, rows = cli_rows(s, "list", "--features", ",".join(FEATURES))
    same_rows(by_list, columns, rows)
    assert columns == ["driver_id", "event_timestamp", "label", "conv_rate", "acc_rate",
                       "avg_daily_trips", "city"]
    # Point in time: 1001 before its first row has nothing, then the version of its time; the
    # later-created duplicate of 1002 wins; 1003's null stays null; 9999 has nothing; the
    # repeated entity row is kept.
    conv = [r[3] for r in by_list["rows"]]
    assert conv == [None, 0.25, 0.5, 0.375, 0.75, 1.0, None, 0.5, 0.0625]
    assert by_list["rows"][4][4] is None and by_list["rows"][4][6] is None

    columns, rows = cli_rows(s, "service", "--feature-service", "driver_activity",
                             "--full-feature-names")
    same_rows(by_service, columns, rows)
    assert "driver_fresh_stats__conv_rate" in columns


def test_feasts_own_file_store_gives_a_subset_of_the_same_rows(setup):
    # Feast's own offline store (type file) over the same Parquet file, through the same SDK call:
    # every row it returns is one of Granary's, with the same values. It returns two rows fewer
    # (docs/FEAST.md, "Behavioural differences"): the repeated entity row (its issue #6787) and
    # the row of 1001 at -10h, an entity whose feature rows all come after the row's time
    # (Granary keeps it with null features, as it keeps the unknown driver 9999, which Feast
    # keeps too).
    s = setup
    request = {"op": "historical", "df": entity_frame(), "timestamps": ["event_timestamp"],
               "features": FEATURES}
    (feast_own,), (granary,) = feast_client(s.feast_repo, [request]), \
        feast_client(s.client_repo, [request])
    assert "error" not in feast_own, feast_own
    assert feast_own["columns"] == granary["columns"]
    key = json.dumps
    remaining = sorted(granary["rows"], key=key)
    for row in feast_own["rows"]:
        assert row in remaining, (row, remaining)
        remaining.remove(row)
    assert sorted(r[2] for r in remaining) == ["a", "c"]
    assert len(granary["rows"]) == len(ENTITY_ROWS)


def test_bearer_token_from_feasts_auth_config(setup):
    s = setup
    ok, = feast_client(s.token_repo, [
        {"op": "historical", "df": entity_frame(), "timestamps": ["event_timestamp"],
         "features": FEATURES[:1]}])
    columns, rows = cli_rows(s, "token", "--features", FEATURES[0])
    same_rows(ok, columns, rows)
    wrong, = feast_client(s.wrong_token_repo, [
        {"op": "historical", "df": entity_frame(), "timestamps": ["event_timestamp"],
         "features": FEATURES[:1]}])
    assert "missing or wrong bearer token" in wrong["error"], wrong
    with pytest.raises(fl.FlightUnauthenticatedError):
        s.secured.client().list_actions()
    assert s.secured.client(TOKEN).list_actions() == []


def command(**kw):
    base = {"command_id": "x", "api": "get_historical_features",
            "feature_view_names": ["driver_hourly_stats"], "name_aliases": [None],
            "feature_refs": ["driver_hourly_stats:conv_rate"], "project": "driver_compat",
            "full_feature_names": False}
    base.update(kw)
    return json.dumps(base).encode()


def exchange(client, cmd, table=None, descriptor=None):
    """One DoExchange as Feast's client makes it; the result table, or the error raised."""
    descriptor = descriptor or fl.FlightDescriptor.for_command(cmd)
    writer, reader = client.do_exchange(descriptor)
    if table is not None:
        writer.begin(table.schema)
        writer.write_table(table)
    writer.done_writing()
    return reader.read_all()


def entities(n=3, ids=pa.int64(), **extra):
    keys = list(range(1001, 1001 + n))
    cols = {"driver_id": pa.array([str(k) for k in keys] if ids == pa.string() else keys, ids),
            "event_timestamp": pa.array([NOW] * n, pa.timestamp("ns", tz="UTC"))}
    cols.update(extra)
    return pa.table(cols)


def expect_error(fn, kind, text):
    with pytest.raises(kind) as info:
        fn()
    assert text in str(info.value), str(info.value)


def test_malformed_flight_calls_get_errors_and_never_stop_the_server(setup):
    s = setup
    c = s.server.client()
    good = exchange(c, command(), entities())
    assert good.column_names == ["driver_id", "event_timestamp", "conv_rate"]
    assert good.num_rows == 3

    expect_error(lambda: exchange(c, b"not json", entities()), pa.ArrowInvalid, "not JSON")
    expect_error(lambda: exchange(c, b"[1]", entities()), pa.ArrowInvalid, "JSON object")
    expect_error(lambda: exchange(c, b'{"api": 3}', entities()), pa.ArrowInvalid,
                 "'api' must be a string")
    expect_error(lambda: exchange(c, command(feature_refs="x"), entities()), pa.ArrowInvalid,
                 "'feature_refs' must be a list")
    expect_error(lambda: exchange(c, command(feature_refs=["driver_hourly_stats:conv_rat"]),
                                  entities()),
                 pa.ArrowInvalid, "conv_rate")  # did you mean
    expect_error(lambda: exchange(c, command(project="other"), entities()), pa.ArrowInvalid,
                 "this server serves 'driver_compat'")
    expect_error(lambda: exchange(c, command(), pa.table({"x": [1]})), pa.ArrowInvalid,
                 "no 'event_timestamp' column")
    expect_error(lambda: exchange(c, command(), pa.table({"x": [1], "event_timestamp": [NOW]})),
                 pa.ArrowInvalid, "driver_id")
    # Join keys as strings are matched as the CLI matches them ("1001" is 1001; the entity
    # columns come back as sent); one that is not a number is an error naming the column.
    as_strings = exchange(c, command(), entities(ids=pa.string()))
    assert as_strings.column("conv_rate").equals(good.column("conv_rate"))
    expect_error(lambda: exchange(c, command(), pa.table({"driver_id": ["x"],
                                                          "event_timestamp": [NOW]})),
                 pa.ArrowInvalid, "driver_id")
    expect_error(lambda: exchange(c, command(), None), pa.ArrowInvalid, "entity rows")
    expect_error(lambda: exchange(c, command(name_aliases=["alias"]), entities()),
                 pa.ArrowNotImplementedError, "alias 'alias'")
    expect_error(lambda: exchange(c, command(), entities(),
                                  descriptor=fl.FlightDescriptor.for_path("a", "b")),
                 pa.ArrowInvalid, "not a path descriptor")
    # Feast's other apis and Flight calls Feast 0.67 does not make: UNIMPLEMENTED, naming what is
    # served.
    placeholder = pa.table({"key": ["mock_key"]})
    expect_error(lambda: exchange(c, command(api="pull_latest_from_table_or_query"), placeholder),
                 pa.ArrowNotImplementedError, "granary materialize")
    expect_error(lambda: exchange(c, command(api="no_such_api"), placeholder),
                 pa.ArrowNotImplementedError, "serves Feast's get_historical_features")
    expect_error(lambda: exchange(c, command(entity_df_sql=None), placeholder),
                 pa.ArrowNotImplementedError, "without entity_df")
    expect_error(lambda: exchange(c, command(entity_df_sql="SELECT 1"), placeholder),
                 pa.ArrowNotImplementedError, "SQL query")

    def put(api):
        writer, _ = c.do_put(fl.FlightDescriptor.for_command(command(api=api)),
                             placeholder.schema)
        writer.write_table(placeholder)
        writer.close()
    expect_error(lambda: put("offline_write_batch"), pa.ArrowNotImplementedError, "POST /push")
    expect_error(lambda: c.do_get(fl.Ticket(b"('x', 'y')")).read_all(),
                 pa.ArrowNotImplementedError, "does not serve DoGet")
    expect_error(lambda: c.get_flight_info(fl.FlightDescriptor.for_command(command())),
                 pa.ArrowNotImplementedError, "does not serve GetFlightInfo")
    expect_error(lambda: list(c.list_flights()), pa.ArrowNotImplementedError, "ListFlights")
    expect_error(lambda: list(c.do_action(fl.Action("persist", b"{}"))),
                 pa.ArrowNotImplementedError, "DoAction 'persist'")

    # Random and mutated commands: an error each, never a crash.
    rng = random.Random(17)
    valid = command()
    for i in range(300):
        if i % 2:
            cmd = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
        else:
            cmd = bytearray(valid)
            for _ in range(rng.randint(1, 8)):
                cmd[rng.randrange(len(cmd))] = rng.getrandbits(8)
            cmd = bytes(cmd)
        try:
            exchange(c, cmd, entities())
        except (pa.ArrowException, fl.FlightError):
            pass
        assert s.server.alive(), f"seed 17, case {i}: {cmd!r}\n{s.server.log_path.read_text()}"
    # A client that goes away in the middle of its upload.
    writer, reader = c.do_exchange(fl.FlightDescriptor.for_command(command()))
    writer.begin(entities().schema)
    writer.write_table(entities())
    del writer, reader
    assert s.server.alive()
    assert exchange(c, command(), entities()).equals(good)


def test_a_large_training_set_streams_in_several_messages(setup):
    # A million entity rows: the engine's result is sent in slices of about 8 MiB, so the
    # client reads the first rows before the last are sent and no message nears Flight's 2 GiB
    # limit. Every row arrives, in order.
    s = setup
    n = 1_000_000
    ids = [1001 + i % 6 for i in range(n)]
    table = pa.table({"driver_id": pa.array(ids, pa.int64()),
                      "event_timestamp": pa.array([NOW] * n, pa.timestamp("us", tz="UTC"))})
    writer, reader = s.server.client().do_exchange(fl.FlightDescriptor.for_command(command()))
    writer.begin(table.schema)
    writer.write_table(table)
    writer.done_writing()
    chunks = []
    while True:
        try:
            chunks.append(reader.read_chunk().data)
        except StopIteration:
            break
    assert len(chunks) > 1
    result = pa.Table.from_batches(chunks)
    assert result.num_rows == n
    assert result.column("driver_id").to_pylist()[:12] == ids[:12]
    latest = {1001: 0.5, 1002: 0.375, 1003: 0.75, 1004: 1.0, 1005: 0.0625, 1006: None}
    assert result.column("conv_rate").to_pylist()[-6:] == [latest[i] for i in ids[-6:]]
