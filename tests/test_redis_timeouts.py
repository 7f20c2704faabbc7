"""The Redis online store's timeouts (online_store.request_timeout and connect_timeout in
granary.yaml), end to end through the CLI: a node that sends nothing while replies are due fails
a run after request_timeout with an error that names the setting, and a rerun converges; a
longer setting rides out a server that stays silent for longer than the default allows. Real
redis-server, frozen with SIGSTOP (and always resumed). Nothing here asserts on timings."""
import datetime as dt
import os
import signal
import subprocess
import time

import pytest
from test_cli_materialize import NOW, make_repo, online_scores, redis, write_rows  # noqa: F401


def redis_repo(cli, tmp_path, port, timeout):
    repo = make_repo(cli, tmp_path, f'{{type: redis, connection_string: "127.0.0.1:{port}", '
                                    f'request_timeout: {timeout}}}')
    write_rows(repo / "data" / "payments" / "rows.parquet", list(range(1, 201)),
               NOW - dt.timedelta(hours=2))
    return repo


def connected_to(pid, port):
    """True when process `pid` holds an established TCP connection to 127.0.0.1:`port` (from
    its descriptors and /proc/net/tcp; the kernel completes the handshake of a frozen server)."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
    except OSError:
        return False
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            remote, state, inode = fields[2], fields[3], fields[9]
            if state == "01" and int(remote.split(":")[1], 16) == port and inode in inodes:
                return True
    return False


def test_a_frozen_server_fails_the_run_after_request_timeout_naming_the_setting(
        cli, tmp_path, redis):  # noqa: F811
    port, proc = redis
    repo = redis_repo(cli, tmp_path, port, "300ms")
    proc.send_signal(signal.SIGSTOP)
    try:
        # The run must end (the subprocess's own timeout fails the test if it waits for ever)
        # and say why, with the setting's value rather than the 2 s default.
        run = cli("-C", repo, "materialize-incremental", "now", check=False, timeout=120)
    finally:
        proc.send_signal(signal.SIGCONT)
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    assert f"redis at 127.0.0.1:{port} sent no reply within 300 ms (its request_timeout)" \
        in output, output
    assert "if the server is only slow, raise online_store.request_timeout in granary.yaml" \
        in output, output
    # Nothing half-done that a rerun cannot finish: with the server back, the run completes.
    cli("-C", repo, "materialize-incremental", "now", check=True)
    assert [status for _, status in online_scores(cli, repo, [1, 200]).values()] == \
        ["PRESENT"] * 2


def test_a_longer_request_timeout_rides_out_a_server_silent_past_the_default(
        cli, granary_bin, tmp_path, redis):  # noqa: F811
    port, proc = redis
    repo = redis_repo(cli, tmp_path, port, "60s")
    proc.send_signal(signal.SIGSTOP)
    try:
        run = subprocess.Popen([str(granary_bin), "-C", str(repo), "materialize-incremental",
                                "now"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
        # Once the run waits on the frozen server, keep it silent for longer than the default
        # allows (2 s, and one more 2 s on a new connection): with the default the run would
        # fail; with 60 s it waits.
        for _ in range(6000):
            if connected_to(run.pid, port) or run.poll() is not None:
                break
            time.sleep(0.01)
        else:
            pytest.fail("the run never connected to the server")
        assert run.poll() is None, run.communicate()
        time.sleep(6)
        assert run.poll() is None, run.communicate()  # still waiting, not failed
    finally:
        proc.send_signal(signal.SIGCONT)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, out + err
    assert "risk: " in out and "200 entities: 200 written" in out, out
    assert [status for _, status in online_scores(cli, repo, [1, 200]).values()] == \
        ["PRESENT"] * 2
