"""Several hosts, one registry in PostgreSQL (docs/OPERATIONS.md, "Several machines"): two
repository folders stand for two hosts; they share a real PostgreSQL server (the registry) and a
real redis-server (the online store). An apply on one reaches the other's running server through
LISTEN/NOTIFY; a run on one is seen by `status` on the other; the materialization lock is a
PostgreSQL advisory lock; the database can stop under a serving server; the registry moves between
SQLite and PostgreSQL with its history."""
import datetime as dt
import json
import subprocess
import time

import pytest

import sdk_fixtures  # noqa: F401 (puts the built SDK first on sys.path)
from pg_helpers import postgres  # noqa: F401 (fixture)
from redis_helpers import free_port, redis_cli, start_redis, stop_redis
from serve_helpers import Server
from test_cli_materialize import DEFINITIONS, NOW, rfc3339, write_rows

MORE = """
  - name: risk_daily
    entities: [customer]
    source: payments
    ttl: 1d
    schema:
      - {name: score, type: float64}
"""


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory):
    port = free_port()
    proc = start_redis(port, tmp_path_factory.mktemp("redis"))
    try:
        yield port
    finally:
        stop_redis(proc)


_schemas = iter(range(1, 1000))


@pytest.fixture
def schema(redis_port):
    """A registry schema of the test's own; the shared online store starts empty."""
    redis_cli(redis_port, "flushall")
    return f"hosts_{next(_schemas)}"


def make_host(tmp_path, name, registry, redis_port):
    """One host's repository folder: the same definitions and data, the shared registry/store."""
    repo = tmp_path / name
    (repo / "data" / "payments").mkdir(parents=True)
    (repo / "granary.yaml").write_text(
        f"project: matcli\nregistry: {registry}\n"
        f"online_store: {{type: redis, connection_string: \"127.0.0.1:{redis_port}\"}}\n")
    (repo / "features.yaml").write_text(DEFINITIONS)
    write_rows(repo / "data" / "payments" / "a.parquet", [1, 2, 3], NOW - dt.timedelta(hours=3))
    return repo


def wait_until(predicate, what, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {seconds} s waiting for {what}")


def health(server):
    status, body = server.request("GET", "/health")
    return status, body


def test_an_apply_on_one_host_reaches_the_others_server_and_runs_are_shared(
        cli, tmp_path, postgres, redis_port, schema, granary_bin):
    a = make_host(tmp_path, "host_a", postgres.url(schema), redis_port)
    b = make_host(tmp_path, "host_b", postgres.url(schema), redis_port)
    applied = cli("-C", a, "apply", check=True)
    assert f"registry version 1" in applied.stdout and f"schema={schema}" in applied.stdout
    assert not (a / "postgresql:").exists()  # the URL is never taken for a folder
    assert cli("-C", b, "apply", check=True).stdout.count("No changes: registry version 1") == 1

    # B serves; polling is slowed to a minute, so only the notification can bring version 2 soon.
    server = Server(granary_bin, b, args=("--registry-poll", "60s"))
    try:
        status, body = health(server)
        assert status == 200 and body["status"] == "ok", body
        assert body["registry"]["version"] == 1 and body["registry"]["reachable"] is True
        wait_until(lambda: health(server)[1]["registry"]["listening"], "the server to LISTEN")

        (a / "features.yaml").write_text(DEFINITIONS + MORE)
        assert "registry version 2" in cli("-C", a, "apply", check=True).stdout
        wait_until(lambda: health(server)[1]["registry"]["version"] == 2,
                   "host B's server to load version 2")
        assert "now serving version 2 (was 1)" in server.log()
        status, registry = server.request("GET", "/registry")
        assert "risk_daily" in json.dumps(registry)

        # A materializes; B's status shows the run (with A's host name) and B's server reads it.
        end = NOW - dt.timedelta(minutes=30)
        run = cli("-C", a, "materialize-incremental", rfc3339(end), "-q", check=True)
        assert "3 entities: 3 written" in run.stdout, run.stdout
        views = {v["view"]: v for v in
                 json.loads(cli("-C", b, "status", "--json", check=True).stdout)["views"]}
        assert views["risk"]["last_run"]["status"] == "succeeded", views["risk"]
        assert views["risk"]["watermark"] == rfc3339(end), views["risk"]
        status, answer = server.post("/get-online-features", {
            "features": ["risk:score"], "entities": {"customer_id": [2]}})
        assert status == 200 and answer["results"][1]["values"] == [1.0], answer
    finally:
        assert server.stop() == 0


def test_a_second_scheduler_is_refused_while_the_lock_is_held_and_gets_it_when_the_holder_dies(
        cli, tmp_path, postgres, redis_port, schema):
    a = make_host(tmp_path, "host_a", postgres.url(schema), redis_port)
    b = make_host(tmp_path, "host_b", postgres.url(schema), redis_port)
    cli("-C", a, "apply", check=True)
    # Host A's scheduler, as a session that holds the repository's advisory lock the way Granary
    # takes it (and names itself in the holder table).
    holder = postgres.session()
    try:
        holder.stdin.write(
            f"SELECT pg_advisory_lock(hashtext('granary-materialize:{schema}'));\n"
            f"INSERT INTO {schema}.materialization_lock VALUES (1, 'tok-a', "
            f"'granary schedule as pid 4242 on host-a since 2026-12-05T02:00:00Z', "
            f"pg_backend_pid());\nSELECT 'held';\n")
        holder.stdin.flush()
        lines = [holder.stdout.readline().strip() for _ in range(2)]  # void, then 'held'
        assert lines[-1] == "held", (lines, holder.stderr.read() if holder.poll() else "")

        refused = cli("-C", b, "materialize-incremental", "now", check=False)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "another materialization of this repository is running (granary schedule as " \
               "pid 4242 on host-a" in refused.stderr, refused.stderr
        assert "PostgreSQL advisory lock" in refused.stderr
        # The refusal is on the record, on every host.
        runs = json.loads(cli("-C", a, "status", "--json", check=True).stdout)["views"]
        assert any(v["last_run"] and "another materialization" in v["last_run"]["error"]
                   for v in runs), runs
    finally:
        holder.kill()  # the holder dies: the database ends its session and its lock
        holder.wait(timeout=10)
    ran = wait_until(lambda: (lambda p: p if p.returncode == 0 else None)(
        cli("-C", b, "materialize-incremental", "now", "-q")),
        "the lock to be released by the database")
    assert "3 written" in ran.stdout, ran.stdout


def test_the_database_stopped_and_restarted_under_a_serving_server(
        cli, tmp_path, postgres, redis_port, schema, granary_bin):
    a = make_host(tmp_path, "host_a", postgres.url(schema), redis_port)
    b = make_host(tmp_path, "host_b", postgres.url(schema), redis_port)
    cli("-C", a, "apply", check=True)
    cli("-C", a, "materialize-incremental", "now", "-q", check=True)
    server = Server(granary_bin, b, args=("--registry-poll", "100ms"))
    try:
        postgres.stop()
        # Still serving from its snapshot; health says degraded and why.
        status, answer = server.post("/get-online-features", {
            "features": ["risk:score"], "entities": {"customer_id": [3]}})
        assert status == 200 and answer["results"][1]["values"] == [1.5], answer
        body = wait_until(lambda: (lambda h: h if h["registry"]["reachable"] is False else None)(
            health(server)[1]), "health to see the registry down")
        assert body["status"] == "degraded", body
        assert "cannot connect" in body["registry"]["error"], body
        assert health(server)[0] == 200
        # Writers fail clearly and write nothing.
        (a / "features.yaml").write_text(DEFINITIONS + MORE)
        failed = cli("-C", a, "apply", check=False)
        assert failed.returncode == 1 and "cannot connect" in failed.stderr, failed.stderr
        assert f"schema={schema}" in failed.stderr
        failed = cli("-C", a, "materialize-incremental", "now", check=False)
        assert failed.returncode == 1 and "cannot connect" in failed.stderr, failed.stderr

        postgres.start()
        wait_until(lambda: health(server)[1]["status"] == "ok", "health to recover")
        assert "registry version 2" in cli("-C", a, "apply", check=True).stdout
        wait_until(lambda: health(server)[1]["registry"]["version"] == 2,
                   "the server to load the apply made after the restart")
        wait_until(lambda: health(server)[1]["registry"]["listening"], "LISTEN to be back")
        versions = postgres.psql(f"SELECT count(*) FROM {schema}.registry_versions")
        assert versions == "2"  # the failed apply left nothing behind
    finally:
        postgres.start() if postgres.proc.poll() is not None else None
        assert server.stop() == 0


def test_concurrent_applies_from_two_hosts_give_one_version_each_or_a_conflict(
        cli, tmp_path, postgres, redis_port, schema, granary_bin):
    a = make_host(tmp_path, "host_a", postgres.url(schema), redis_port)
    b = make_host(tmp_path, "host_b", postgres.url(schema), redis_port)
    cli("-C", a, "apply", check=True)
    for round_ in range(3):
        (a / "features.yaml").write_text(DEFINITIONS + MORE.replace("1d", f"{round_ + 2}d"))
        (b / "features.yaml").write_text(DEFINITIONS + MORE.replace("1d", f"{round_ + 10}d"))
        procs = [subprocess.Popen([str(granary_bin), "-C", str(repo), "apply"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for repo in (a, b)]
        outcomes = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
        for code, out, err in outcomes:
            assert code == 0 or "another apply stored version" in err, (code, out, err)
        succeeded = sum(1 for code, _, _ in outcomes if code == 0)
        assert succeeded >= 1
    versions = postgres.psql(f"SELECT count(*), max(version) FROM {schema}.registry_versions")
    count, newest = map(int, versions.split("|"))
    assert count == newest  # no gap, no duplicate: every success is one version


def test_export_and_import_move_a_registry_with_its_history_both_ways(
        cli, tmp_path, postgres, redis_port, schema):
    # A repository on the default SQLite registry, with versions and runs.
    old = make_host(tmp_path, "sqlite_host", "data/registry.db", redis_port)
    cli("-C", old, "apply", check=True)
    cli("-C", old, "materialize-incremental", "now", "-q", check=True)
    (old / "features.yaml").write_text(DEFINITIONS + MORE)
    cli("-C", old, "apply", check=True)
    info_old = cli("-C", old, "registry", "info", check=True).stdout
    fingerprint = info_old.split("contents fingerprint: ")[1].strip()

    exported = cli("-C", old, "registry", "export", tmp_path / "backup.db", check=True)
    assert f"contents fingerprint {fingerprint}" in exported.stdout, exported.stdout
    again = cli("-C", old, "registry", "export", tmp_path / "backup.db", check=False)
    assert again.returncode == 1 and "exists" in again.stderr

    new = make_host(tmp_path, "pg_host", postgres.url(schema), redis_port)
    (new / "features.yaml").write_text(DEFINITIONS + MORE)
    imported = cli("-C", new, "registry", "import", tmp_path / "backup.db", check=True)
    assert "copied 2 versions, 2 watermarks" in imported.stdout, imported.stdout
    assert f"contents fingerprint {fingerprint}" in imported.stdout
    info_new = cli("-C", new, "registry", "info", check=True).stdout
    assert f"contents fingerprint: {fingerprint}" in info_new and "type: postgresql" in info_new
    refused = cli("-C", new, "registry", "import", tmp_path / "backup.db", check=False)
    assert refused.returncode == 1 and "is not empty" in refused.stderr, refused.stderr
    # The moved registry works: status sees the old run, materialization continues from its
    # watermark, plan sees no change.
    status = json.loads(cli("-C", new, "status", "--json", check=True).stdout)
    assert {v["view"]: v["last_run"]["status"] for v in status["views"]
            if v["last_run"]}["risk"] == "succeeded"
    assert "No changes" in cli("-C", new, "plan", check=True).stdout
    cli("-C", new, "materialize-incremental", "now", "-q", check=True)

    # And back to SQLite.
    cli("-C", new, "registry", "export", tmp_path / "back.db", check=True)
    back = make_host(tmp_path, "back_host", "data/registry.db", redis_port)
    cli("-C", back, "registry", "import", tmp_path / "back.db", check=True)
    assert cli("-C", back, "registry", "info", check=True).stdout.split(
        "contents fingerprint: ")[1].strip() == \
        cli("-C", new, "registry", "info", check=True).stdout.split(
            "contents fingerprint: ")[1].strip()


def test_an_unsupported_registry_scheme_is_an_error_naming_the_supported_ones(cli, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "granary.yaml").write_text("project: p\nregistry: mysql://u@h/db\n")
    (repo / "features.yaml").write_text(DEFINITIONS)
    out = cli("-C", repo, "apply", check=False)
    assert out.returncode == 1
    assert "granary.yaml:2" in out.stderr and "'mysql://' is not supported" in out.stderr
    assert "postgresql://" in out.stderr and "data/registry.db" in out.stderr, out.stderr
    assert not (repo / "mysql:").exists()


def test_teardown_drops_the_shared_schema_and_every_host_then_sees_no_registry(
        cli, tmp_path, postgres, redis_port, schema):
    a = make_host(tmp_path, "host_a", postgres.url(schema), redis_port)
    b = make_host(tmp_path, "host_b", postgres.url(schema), redis_port)
    cli("-C", a, "apply", check=True)
    cli("-C", a, "materialize-incremental", "now", "-q", check=True)
    down = cli("-C", b, "teardown", "--yes", check=True)
    assert f"removed the registry schema {schema}" in down.stdout, down.stdout
    assert postgres.psql(f"SELECT count(*) FROM pg_namespace WHERE nspname = '{schema}'") == "0"
    gone = cli("-C", a, "status", check=False)
    assert gone.returncode == 1 and "holds no definitions yet" in gone.stderr, gone.stderr
    assert "run 'granary apply'" in gone.stderr


def test_the_python_sdk_works_on_a_postgresql_registry(cli, tmp_path, postgres, redis_port,
                                                        schema):
    import granary
    a = make_host(tmp_path, "host_a", postgres.url(schema), redis_port)
    b = make_host(tmp_path, "host_b", postgres.url(schema), redis_port)
    sdk_a = granary.FeatureStore(a)
    assert sdk_a.registry_path == f"postgresql://granary@127.0.0.1:{postgres.port}/postgres" \
                                  f"?schema={schema}"
    with pytest.raises(granary.FailedPrecondition, match="holds no definitions yet"):
        sdk_a.list_feature_views()
    assert sdk_a.apply().applied_version == 1
    sdk_a.materialize_incremental(end_date=NOW - dt.timedelta(minutes=5))
    # Host B's SDK sees A's definitions and A's run's data.
    sdk_b = granary.FeatureStore(b)
    assert sorted(v.name for v in sdk_b.list_feature_views()) == ["risk", "risk_weekly"]
    online = sdk_b.get_online_features(features=["risk:score"],
                                       entity_rows=[{"customer_id": 3}]).to_dict()
    assert online["score"] == [1.5], online


def test_the_console_and_stats_read_the_shared_registry(cli, tmp_path, postgres, redis_port,
                                                        schema, granary_bin):
    """A host whose repository names a PostgreSQL registry has no registry file: the console's
    pages and `granary stats` read the database, as every other command does."""
    from test_console import get, start_ui
    a = make_host(tmp_path, "host_a", postgres.url(schema), redis_port)
    cli("-C", a, "apply", check=True)
    cli("-C", a, "materialize-incremental", rfc3339(NOW - dt.timedelta(minutes=30)), "-q",
        check=True)
    stats = cli("-C", a, "stats", "risk", "--json", "--sample", "0", check=True)
    assert json.loads(stats.stdout)["view"] == "risk", stats.stdout
    port, ui = start_ui(granary_bin, a)
    try:
        status, body, _ = get(port, "/api/registry")
        assert status == 200 and "risk" in body, body
        status, body, _ = get(port, "/api/freshness")
        assert status == 200, body
        views = {v["view"]: v for v in json.loads(body)["views"]}
        assert [r["status"] for r in views["risk"]["runs"]] == ["succeeded"], views["risk"]
    finally:
        assert ui.stop() == 0
    assert not list(a.glob("**/*.db")), "no SQLite registry was made beside the shared one"
