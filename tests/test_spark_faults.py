"""The Spark Connect server dying while a training set and a materialization run (a cluster of
the test's own, killed with SIGKILL): both commands fail with a clear error naming the server,
no output file appears (the training set streams into a temporary file that only a complete run
renames), no temporary file is left behind, an older output file stays as it was, and the
materialization's watermark does not move. And a worker killed (with its executor) while a
training set runs: Spark runs the lost tasks again on the other worker, and the training set is
complete and right.

The view reads a `query:` source that sleeps on the executors for every row, so that the jobs
are still running when the server is killed; were the machine slow enough that a command had
not reached its query by then, it fails the same way (the server is gone), so the assertions
hold either way."""
import json
import subprocess
import time

import pyarrow as pa
import pyarrow.parquet as pq

from spark_helpers import DEFS, OwnCluster, make_repo

SLOW_SOURCE = """
  - name: slow_payments
    query: >-
      SELECT customer_id, event_timestamp, created, failures,
      score + 0 * coalesce(length(reflect('java.lang.Thread', 'sleep', CAST(3000 AS BIGINT))), 0)
      AS score FROM parquet.`{path}`
    timestamp_field: event_timestamp
    created_timestamp_column: created
"""
SLOW_VIEW = """
  - name: slow_risk
    entities: [customer]
    source: slow_payments
    ttl: 0
    schema:
      - {name: score, type: float64}
"""


def slow_defs(repo):
    defs = DEFS.replace("data_sources:\n",
                        "data_sources:" + SLOW_SOURCE.format(path=repo / "data" / "payments"))
    return defs.replace("feature_views:\n", "feature_views:" + SLOW_VIEW)


def test_connect_server_killed_mid_run_leaves_no_output_and_no_moved_watermark(
        granary_bin, cli, tmp_path):
    cluster = OwnCluster(tmp_path / "cluster")
    try:
        root = tmp_path / "spark"
        repo = make_repo(cli, root, f'{{type: spark, remote: "{cluster.remote}"}}',
                         defs=slow_defs(root / "repo"))
        # Yesterday's training set: a failed run must leave it as it was.
        old = pa.table({"customer_id": pa.array([9], pa.int64())})
        pq.write_table(old, repo / "train.parquet")
        command = lambda *args: subprocess.Popen(
            [str(granary_bin), "-C", str(repo), *map(str, args)], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        training = command("get-historical-features", "--entities", repo / "entities.parquet",
                           "--features", "slow_risk:score,risk:failures", "-o",
                           repo / "train.parquet")
        materialize = command("materialize-incremental", "2024-03-03T00:00:00Z", "--views",
                              "slow_risk", "--quiet")
        # Nine rows sleeping 3 s each on two 1-core workers: the jobs run for 15 s or more.
        time.sleep(6)
        assert training.poll() is None and materialize.poll() is None, \
            "a command ended before the server was killed"
        cluster.kill("connect")
        _, training_err = training.communicate(timeout=120)
        _, materialize_err = materialize.communicate(timeout=120)
    finally:
        cluster.stop()

    assert training.returncode != 0, training_err
    assert cluster.remote in training_err, training_err
    assert pq.read_table(repo / "train.parquet").equals(old)
    assert sorted(p.name for p in repo.iterdir() if "train" in p.name) == ["train.parquet"]

    assert materialize.returncode != 0, materialize_err
    assert cluster.remote in materialize_err, materialize_err
    status = json.loads(cli("-C", repo, "status", "--json", check=True).stdout)
    slow = {v["view"]: v for v in status["views"]}["slow_risk"]
    assert slow["watermark"] is None, slow
    assert slow["last_run"]["status"] == "failed", slow
    assert cluster.remote in slow["last_run"]["error"], slow


def test_worker_killed_mid_job_is_retried_and_the_result_is_right(granary_bin, cli, tmp_path):
    cluster = OwnCluster(tmp_path / "cluster")
    try:
        root = tmp_path / "spark"
        repo = make_repo(cli, root, f'{{type: spark, remote: "{cluster.remote}"}}',
                         defs=slow_defs(root / "repo"))
        # The training set of a run without the fault.
        cli("-C", repo, "get-historical-features", "--entities", repo / "entities.parquet",
            "--features", "slow_risk:score,risk:failures", "-o", repo / "expected.parquet",
            check=True, timeout=600)
        training = subprocess.Popen(
            [str(granary_bin), "-C", str(repo), "get-historical-features", "--entities",
             str(repo / "entities.parquet"), "--features", "slow_risk:score,risk:failures", "-o",
             str(repo / "train.parquet")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        # Nine rows sleeping 3 s each on two 1-core workers: the job runs for 15 s or more.
        time.sleep(8)
        assert training.poll() is None, "the training set ended before the worker was killed"
        cluster.kill("worker1")
        _, err = training.communicate(timeout=600)
        driver_log = (cluster.state / "logs" / "connect.log").read_text(errors="replace")
    finally:
        cluster.stop()
    assert training.returncode == 0, err
    assert pq.read_table(repo / "train.parquet").equals(pq.read_table(repo / "expected.parquet"))
    # The driver saw its executor go (and so ran its tasks again elsewhere).
    assert "Lost executor" in driver_log or "ExecutorLost" in driver_log, driver_log[-3000:]
