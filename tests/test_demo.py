"""scripts/demo (`make demo`) when a step fails: it says which step, exits non-zero and still
stops the feature server it started. (The successful run is CI's `make demo`.)"""
import os
import re
import socket
import subprocess

from conftest import ROOT


def test_a_failing_step_exits_non_zero_and_stops_the_server(granary_bin, tmp_path):
    # The real granary, except that `granary status` (step 12, while the server runs) fails.
    wrapper = tmp_path / "granary"
    wrapper.write_text("#!/bin/sh\n"
                       "if [ \"$1\" = status ]; then echo 'error: status failed' >&2; exit 3; fi\n"
                       f"exec '{granary_bin}' \"$@\"\n")
    wrapper.chmod(0o755)
    env = dict(os.environ, GRANARY_BIN=str(wrapper), DEMO_DIR=str(tmp_path / "demo" / "parking"))
    proc = subprocess.run([str(ROOT / "scripts" / "demo")], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "demo: FAILED at step 12 (exit 3)" in proc.stderr
    assert "error: status failed" in proc.stderr
    # The steps before it ran: both training sets (with the window features), materialization,
    # both queries, verify, a pushed declined payment counted at once.
    assert "training/customer_risk.parquet: 3487 rows x 20 columns" in proc.stdout
    assert "training/demand_prediction.parquet: 3000 rows x 20 columns" in proc.stdout
    assert "entity rows with events in their 90d window" in proc.stderr
    assert proc.stdout.count("values PRESENT; latency") == 2
    assert re.search(r"^  customer_payment_windows: at .* \(now\): .*, 0 differ$", proc.stdout, re.M)
    assert "verify: OK" in proc.stdout
    before = re.search(r"customer 1 before: payments_30d (\d+), payment_failures_30d (\d+)",
                       proc.stdout)
    after = re.search(r"customer 1 after:  payments_30d (\d+), payment_failures_30d (\d+)",
                      proc.stdout)
    assert before and after, proc.stdout
    assert int(after.group(1)) == int(before.group(1)) + 1
    assert int(after.group(2)) == int(before.group(2)) + 1
    assert "demo: ok" not in proc.stdout

    port = int(re.search(r"listening on http://127\.0\.0\.1:(\d+)", proc.stdout).group(1))
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "the feature server is still running"
    log = (tmp_path / "demo" / "parking" / "serve.log").read_text()
    assert "granary serve: stopped" in log
