"""The foundation's command line end to end: init, apply, plan, list, describe, teardown."""
import json
import os
import pty
import shutil
import subprocess

import pyarrow as pa
import pyarrow.parquet as pq

from conftest import ROOT


def test_init_scaffolds_a_repository_that_applies_as_is(cli, tmp_path):
    cli("init", "shop", check=True)
    repo = tmp_path / "shop"
    assert (repo / "granary.yaml").exists()
    table = pq.read_table(repo / "data" / "customer_stats.parquet")
    assert table.num_rows == 15
    assert table.schema.field("event_timestamp").type == pa.timestamp("us", tz="UTC")

    out = cli("-C", repo, "apply", check=True)
    assert "Applied: registry version 1" in out.stdout
    assert out.stderr == ""  # the sample data exists, so no warnings

    again = cli("-C", repo, "apply", check=True)
    assert "No changes: registry version 1" in again.stdout

    listed = cli("-C", repo, "list", "feature-views", check=True).stdout.splitlines()
    assert listed[0].split() == ["NAME", "ENTITIES", "SOURCE", "TTL", "ONLINE", "FEATURES"]
    assert listed[1].split() == ["customer_stats", "customer", "customer_stats_source", "90d", "yes", "3"]

    described = cli("-C", repo, "describe", "feature-view", "customer_stats", check=True).stdout
    assert "ttl: 90d" in described and "{name: tenure_days, type: int64}" in described


def test_init_refuses_a_non_empty_folder(cli, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    out = cli("init", "taken", check=False)
    assert "exists and is not empty" in out.stderr


def test_plan_shows_changes_without_writing(cli, tmp_path):
    cli("init", "p", check=True)
    repo = tmp_path / "p"
    plan = cli("-C", repo, "plan", check=True)
    assert "+ feature view customer_stats" in plan.stdout
    assert not (repo / "data" / "registry.db").exists()
    cli("-C", repo, "apply", check=True)

    text = (repo / "features.yaml").read_text().replace("ttl: 90d", "ttl: 30d")
    (repo / "features.yaml").write_text(text)
    plan = cli("-C", repo, "plan", check=True)
    assert "~ feature view customer_stats (ttl)" in plan.stdout
    assert "0 to add, 1 to change, 0 to remove." in plan.stdout
    applied = cli("-C", repo, "apply", check=True)
    assert "registry version 2" in applied.stdout


def test_a_schema_change_warns_and_keeps_serving_the_features_it_keeps(cli, tmp_path):
    cli("init", "s", check=True)
    repo = tmp_path / "s"
    cli("-C", repo, "apply", check=True)
    cli("-C", repo, "materialize-incremental", "now", "--quiet", check=True)
    kept = ["get-online-features", "--features",
            "customer_stats:payment_failures_30d,customer_stats:failure_rate_90d",
            "--entity", "customer_id=1001"]
    before = json.loads(cli("-C", repo, *kept, check=True).stdout)
    assert before["results"][1]["statuses"] == ["PRESENT"]
    assert before["results"][2]["statuses"] == ["PRESENT"]

    # A description or a ttl changes no stored value: no warning.
    text = (repo / "features.yaml").read_text()
    (repo / "features.yaml").write_text(text.replace("ttl: 90d", "ttl: 60d"))
    assert "warning" not in cli("-C", repo, "plan", check=True).stderr

    # Removing a feature changes the view's online schema, but blanks none of the others.
    tenure = "      - {name: tenure_days, type: int64}\n"
    (repo / "features.yaml").write_text(text.replace(tenure, ""))
    warning = ("warning: feature view 'customer_stats': its online schema changes and its values "
               "stored online keep serving its features, but ")
    command = "run 'granary materialize-incremental now --views customer_stats'"
    plan = cli("-C", repo, "plan", check=True)
    assert warning + "once applied, 'granary status' counts" in plan.stderr, plan.stderr
    assert command in plan.stderr
    applied = cli("-C", repo, "apply", check=True)
    assert warning + "from now on 'granary status' counts" in applied.stderr, applied.stderr
    after = json.loads(cli("-C", repo, *kept, check=True).stdout)
    assert after["results"] == before["results"]

    # Adding a feature (a new column of the source) reads it NOT_FOUND until the view is
    # materialized; the stored values still serve the others.
    data = repo / "data" / "customer_stats.parquet"
    table = pq.read_table(data)
    pq.write_table(table.append_column("visits", pa.array(range(table.num_rows), pa.int64())),
                   data)
    (repo / "features.yaml").write_text(
        text.replace(tenure, "      - {name: visits, type: int64}\n"))
    applied = cli("-C", repo, "apply", check=True)
    assert ("its values stored online keep serving the features it keeps, but from now on "
            "visits (added or retyped) read NOT_FOUND") in applied.stderr, applied.stderr
    ask = kept[:2] + [kept[2] + ",customer_stats:visits"] + kept[3:]
    added = json.loads(cli("-C", repo, *ask, check=True).stdout)
    assert added["results"][1:3] == before["results"][1:3]
    assert added["results"][3]["statuses"] == ["NOT_FOUND"]
    assert added["results"][3]["values"] == [None]
    cli("-C", repo, "materialize-incremental", "now", "--views", "customer_stats", "--quiet",
        check=True)
    filled = json.loads(cli("-C", repo, *ask, check=True).stdout)
    assert filled["results"][3]["statuses"] == ["PRESENT"]
    assert filled["results"][1:3] == before["results"][1:3]


def test_teardown_removes_registry_and_online_data(cli, tmp_path):
    cli("init", "t", check=True)
    repo = tmp_path / "t"
    cli("-C", repo, "apply", check=True)
    cli("-C", repo, "materialize-incremental", "now", "--quiet", check=True)
    lock = repo / "data" / "registry.db.materialize.lock"
    assert lock.exists() and (repo / "data" / "online").exists()

    # Not on a terminal (as here): nothing is asked and nothing is removed without --yes.
    refused = cli("-C", repo, "teardown", check=False)
    assert "stdin is not a terminal" in refused.stderr and "--yes" in refused.stderr
    assert (repo / "data" / "registry.db").exists() and (repo / "data" / "online").exists()

    out = cli("-C", repo, "teardown", "--yes", check=True)
    assert "registry.db" in out.stdout
    assert not lock.exists()
    assert not (repo / "data" / "registry.db").exists()
    assert not (repo / "data" / "online").exists()
    assert (repo / "data" / "customer_stats.parquet").exists()  # source data is never touched
    listed = cli("-C", repo, "list", "entities", check=False)
    assert "run 'granary apply'" in listed.stderr


def teardown_on_a_terminal(granary_bin, repo, answer):
    """Runs teardown with a pseudo-terminal as stdin and types `answer`."""
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.Popen([str(granary_bin), "-C", str(repo), "teardown"], stdin=secondary,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        os.write(primary, answer.encode() + b"\n")
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(primary)
        os.close(secondary)
    return proc.returncode, out, err


def test_teardown_asks_on_a_terminal(cli, granary_bin, tmp_path):
    cli("init", "asked", check=True)
    repo = tmp_path / "asked"
    cli("-C", repo, "apply", check=True)
    code, out, _ = teardown_on_a_terminal(granary_bin, repo, "n")
    assert "Continue? [y/N]" in out and "Nothing was removed." in out
    assert code == 0 and (repo / "data" / "registry.db").exists()
    code, out, err = teardown_on_a_terminal(granary_bin, repo, "y")
    assert code == 0, err
    assert "removed" in out and not (repo / "data" / "registry.db").exists()


def test_a_mistyped_command_gets_a_suggestion(cli):
    out = cli("aply", check=False)
    assert out.returncode != 0
    assert "unknown command 'aply', did you mean 'apply'?" in out.stderr
    out = cli("materialize-incremntal", "now", check=False)
    assert "did you mean 'materialize-incremental'?" in out.stderr
    out = cli(check=False)  # no command at all: CLI11's own message
    assert "A subcommand is required" in out.stderr


def test_commands_outside_a_repository_say_how_to_fix(cli, tmp_path):
    out = cli("apply", check=False)
    assert "granary.yaml not found" in out.stderr and "granary init" in out.stderr
    out = cli("list", "widgets", check=False)
    assert out.returncode != 0


def test_the_example_parking_repository_applies(cli, tmp_path):
    repo = tmp_path / "parking"
    shutil.copytree(ROOT / "examples" / "parking", repo, ignore=shutil.ignore_patterns("data"))
    out = cli("-C", repo, "apply", check=True)
    assert "2 entities, 6 data sources, 6 feature views, 2 feature services" in out.stdout
    # The generated data comes later: every source warns that its columns were not checked.
    assert out.stderr.count("warning:") == 5
    services = cli("-C", repo, "list", "feature-services", check=True).stdout
    assert "customer_risk_v1" in services and "demand_prediction_v1" in services


def test_redis_settings_take_secrets_from_the_environment(cli, tmp_path):
    cli("init", "r", check=True)
    repo = tmp_path / "r"
    (repo / "granary.yaml").write_text(
        "project: r\nonline_store: {type: redis, connection_string: "
        "\"127.0.0.1:6379,password=${GRANARY_TEST_PW}\"}\n")
    out = cli("-C", repo, "apply", check=False, env={"GRANARY_TEST_PW": ""} and {})
    assert "GRANARY_TEST_PW is not set" in out.stderr
    assert "granary.yaml:2" in out.stderr
    cli("-C", repo, "apply", env={"GRANARY_TEST_PW": "s3cret"}, check=True)
