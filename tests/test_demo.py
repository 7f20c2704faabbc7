"""scripts/demo (`make demo`) when a step fails: it says which step, exits non-zero and still
stops the feature server it started. (The successful run is CI's `make demo`.)"""
import os
import re
import socket
import subprocess

from conftest import ROOT


def test_a_failing_step_exits_non_zero_and_stops_the_server(granary_bin, tmp_path):
    # The real granary, except that `granary status` (step 10, while the server runs) fails.
    wrapper = tmp_path / "granary"
    wrapper.write_text("#!/bin/sh\n"
                       "if [ \"$1\" = status ]; then echo 'error: status failed' >&2; exit 3; fi\n"
                       f"exec '{granary_bin}' \"$@\"\n")
    wrapper.chmod(0o755)
    env = dict(os.environ, GRANARY_BIN=str(wrapper), DEMO_DIR=str(tmp_path / "demo" / "parking"))
    proc = subprocess.run([str(ROOT / "scripts" / "demo")], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "demo: FAILED at step 10 (exit 3)" in proc.stderr
    assert "error: status failed" in proc.stderr
    # The steps before it ran: both training sets, materialization, both queries.
    assert "training/customer_risk.parquet: 3487 rows x 16 columns" in proc.stdout
    assert "training/demand_prediction.parquet: 3000 rows x 15 columns" in proc.stdout
    assert proc.stdout.count("values PRESENT; latency") == 2
    assert "demo: ok" not in proc.stdout

    port = int(re.search(r"listening on http://127\.0\.0\.1:(\d+)", proc.stdout).group(1))
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "the feature server is still running"
    log = (tmp_path / "demo" / "parking" / "serve.log").read_text()
    assert "granary serve: stopped" in log
