"""Materialization with a Spark offline store through every path that runs one, against a real
Spark cluster (spark_helpers.py) and the embedded RocksDB online store: `granary materialize`
and `materialize-incremental`, the feature server's POST /materialize-incremental, a CLI run
handed to that server while it holds the store, and `granary schedule`. Each must leave the online
store as the embedded engine leaves it after the same runs, and move the watermarks the same way.
"""
import json
import signal
import subprocess

import pytest

from serve_helpers import serve  # noqa: F401  (granary serve processes, stopped by pid)
from spark_helpers import DEFS, make_repo
from spark_helpers import spark_remote  # noqa: F401  (the session's cluster)

# Views without a ttl: the 2024 rows stay readable online, and a first incremental run (or the
# scheduler's, up to now) reads every row up to its END.
NO_TTL_DEFS = DEFS.replace("ttl: 2d", "ttl: 0").replace("ttl: 6h", "ttl: 0")
FIRST_END = "2024-03-02T12:00:00Z"   # customer 4's row (2024-03-02T16:00) is after it
SECOND_END = "2024-03-03T00:00:00Z"  # ... and before this one
READ = {"feature_service": "pricing",
        "entities": {"customer_id": [1, 2, 3, 4, 5], "zone": ["a", "b", "a", "b", "a"],
                     "bay_id": [1, 7, 1, 7, 2]}}


def online(cli, repo):
    """The online answer for READ, through the CLI."""
    args = ["--feature-service", READ["feature_service"]]
    for key, values in READ["entities"].items():
        args += ["--entity", f"{key}=" + ",".join(map(str, values))]
    out = cli("-C", repo, "get-online-features", *args, check=True)
    return json.loads(out.stdout)["results"]


def watermarks(cli, repo):
    status = json.loads(cli("-C", repo, "status", "--json", check=True).stdout)
    return {v["view"]: v["watermark"] for v in status["views"]}


@pytest.fixture
def expected(cli, tmp_path):
    """The embedded engine's online answers after an incremental run to FIRST_END, then one to
    SECOND_END."""
    repo = make_repo(cli, tmp_path / "embedded", "{type: file}", defs=NO_TTL_DEFS)
    answers = []
    for end in (FIRST_END, SECOND_END):
        cli("-C", repo, "materialize-incremental", end, "--quiet", check=True)
        answers.append(online(cli, repo))
    assert answers[0] != answers[1]  # the second run brought customer 4's row
    return answers


def spark_repo(cli, root, remote):
    return make_repo(cli, root, f'{{type: spark, remote: "{remote}"}}', defs=NO_TTL_DEFS)


def test_cli_materialize_and_materialize_incremental_on_spark(cli, tmp_path, spark_remote,
                                                             expected):
    repo = spark_repo(cli, tmp_path / "spark", spark_remote)
    for end, answer in zip((FIRST_END, SECOND_END), expected):
        out = cli("-C", repo, "materialize-incremental", end, check=True)
        assert online(cli, repo) == answer
        assert watermarks(cli, repo) == {"risk": end, "bays": end}
    assert "[spark at sc://127.0.0.1:" in out.stdout, out.stdout  # the summary names the cluster
    # A second incremental run to the same END reads nothing new and changes nothing.
    cli("-C", repo, "materialize-incremental", SECOND_END, "--quiet", check=True)
    assert online(cli, repo) == expected[1]
    # `materialize START END` over the whole history writes the same values (write-if-newer
    # keeps them) and leaves the watermarks alone.
    cli("-C", repo, "materialize", "2024-03-01T00:00:00Z", SECOND_END, "--quiet", check=True)
    assert online(cli, repo) == expected[1]
    assert watermarks(cli, repo) == {"risk": SECOND_END, "bays": SECOND_END}


def test_server_endpoint_and_a_cli_run_handed_to_the_server_on_spark(cli, tmp_path, spark_remote,
                                                                     expected, serve):  # noqa: F811
    repo = spark_repo(cli, tmp_path / "spark", spark_remote)
    server = serve(repo)
    status, body = server.post("/materialize-incremental", {"end": FIRST_END, "wait": True},
                               timeout=600)
    assert status == 200, body
    assert body["status"] == "succeeded", body
    assert sorted(v["view"] for v in body["views"]) == ["bays", "risk"]
    assert all(v["watermark_after"] == FIRST_END for v in body["views"]), body
    status, answer = server.post("/get-online-features", READ)
    assert status == 200, answer
    assert answer["results"] == expected[0]

    # The server holds the RocksDB store: the CLI's run is handed to it and runs on its engine.
    out = cli("-C", repo, "materialize-incremental", SECOND_END, check=True)
    assert "holds the online store: running there" in out.stderr, out.stderr
    status, answer = server.post("/get-online-features", READ)
    assert answer["results"] == expected[1]
    assert server.stop() == 0
    assert "materialize-incremental" in server.log()
    assert watermarks(cli, repo) == {"risk": SECOND_END, "bays": SECOND_END}


def test_schedule_on_spark(granary_bin, cli, tmp_path, spark_remote, expected):
    repo = spark_repo(cli, tmp_path / "spark", spark_remote)
    proc = subprocess.Popen([str(granary_bin), "-C", str(repo), "schedule", "--cron", "0 2 * * *",
                             "--run-now", "--retries", "0", "--metrics-port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        log = []
        while True:
            line = proc.stderr.readline()
            assert line, "".join(log)
            log.append(line)
            if "schedule: next run at" in line:
                break
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, "".join(log) + err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = "".join(log)
    assert "failed" not in text, text
    for view in ("risk", "bays"):
        assert f"schedule: {view}: the first row .. " in text, text
    assert "4 entities written" in text, text  # risk: customers 1 to 4
    # Its END is now: every row of the history, as the second embedded run.
    assert online(cli, repo) == expected[1]
    marks = watermarks(cli, repo)
    assert marks["risk"] is not None and marks["risk"] > SECOND_END, marks
