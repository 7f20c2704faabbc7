"""The parking example's window features online (examples/parking/windows.yaml), as `make demo`
shows them: after materialization `granary verify` finds the online values equal to the offline
ones; a declined payment pushed through the feature server counts in the windows at once; verify
then names exactly that customer as different (the raw payments do not hold the push yet), and once
the warehouse has the payment and materialization has run again, verify passes with the payment
still counted. Real CLI processes and a real feature server on 127.0.0.1."""
import datetime as dt
import json
import re
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import ROOT, Cli
from serve_helpers import serve  # noqa: F401

WINDOWS = ["payments_30d", "payment_failures_30d", "failure_rate_30d", "payments_90d",
           "spend_30d", "last_payment_method"]


def read_windows(server, customer):
    status, body = server.post("/get-online-features", {
        "features": [f"customer_payment_windows:{w}" for w in WINDOWS],
        "entities": {"customer_id": [customer]}})
    assert status == 200, body
    assert all(r["statuses"] == ["PRESENT"] for r in body["results"][1:2]), body
    return {w: r["values"][0] for w, r in zip(WINDOWS, body["results"][1:])}


def cli_windows(cli, customer):
    out = cli("get-online-features", "--features",
              ",".join(f"customer_payment_windows:{w}" for w in WINDOWS), "--entity",
              f"customer_id={customer}", check=True).stdout
    return {w: r["values"][0] for w, r in zip(WINDOWS, json.loads(out)["results"][1:])}


def test_a_pushed_payment_counts_at_once_and_verify_agrees_once_the_source_has_it(
        granary_bin, tmp_path, serve):  # noqa: F811
    repo = tmp_path / "parking"
    repo.mkdir()
    for f in (ROOT / "examples" / "parking").glob("*.yaml"):
        shutil.copy(f, repo / f.name)
    cli = Cli(granary_bin, repo)
    cli("datagen", "--scale", "tiny", "--out", "data", "-q", check=True)  # up to today 00:00
    cli("apply", check=True)
    cli("materialize-incremental", "now", "-q", check=True)

    out = cli("verify", "--sample", "20", check=True).stdout
    for view in ["customer_payment_windows", "bay_occupancy_windows", "customer_payments_stats",
                 "bay_demand"]:
        assert re.search(rf"^  {view}: at .*, 0 differ$", out, re.M), out
    assert "(now)" in out and "(watermark)" in out
    assert "verify: OK" in out

    # A customer with payments in the last 30 days (the most recent one) whose windows cannot
    # move while the test runs, whatever the time of day: no payment of theirs within 2 h of
    # where the 30 and 90 day windows start now (they start at an hour boundary, which passes
    # at read time; the reads below are minutes apart).
    payments = pq.read_table(repo / "data" / "payments.parquet")
    rows = payments.to_pylist()
    started = dt.datetime.now(dt.timezone.utc)
    edges = [started - dt.timedelta(days=d) for d in (30, 90)]
    moving = {r["customer_id"] for r in rows
              if any(abs(r["event_timestamp"] - e) < dt.timedelta(hours=2) for e in edges)}
    recent = sorted(rows, key=lambda r: r["event_timestamp"], reverse=True)
    customer = next(r["customer_id"] for r in recent if r["customer_id"] not in moving)
    assert next(r for r in recent if r["customer_id"] == customer)["event_timestamp"] > \
        started - dt.timedelta(days=2)

    server = serve(repo)
    before = read_windows(server, customer)
    assert before["payments_30d"] > 0
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    status, body = server.post("/push", {
        "push_source_name": "payments_push", "to": "online",
        "df": {"customer_id": [customer], "event_timestamp": [now.isoformat()],
               "amount": [12.5], "failed": [True], "payment_method": ["paypal"]}})
    assert status == 200, body
    assert body["online"]["views"] == ["customer_payment_windows"]
    after = read_windows(server, customer)
    assert after["payments_30d"] == before["payments_30d"] + 1
    assert after["payment_failures_30d"] == before["payment_failures_30d"] + 1
    assert after["payments_90d"] == before["payments_90d"] + 1
    assert after["failure_rate_30d"] == pytest.approx(
        after["payment_failures_30d"] / after["payments_30d"])
    assert after["spend_30d"] == pytest.approx(before["spend_30d"] + 12.5)
    assert after["last_payment_method"] == "paypal"
    assert server.stop() == 0

    # The push went online only: the raw payments do not have it, and verify says so, naming
    # that customer and no other.
    out = cli("verify", "--views", "customer_payment_windows", "--sample", "5000")
    assert out.returncode != 0, out.stdout + out.stderr
    assert "online values differ from their offline values" in out.stderr
    examples = re.findall(r"customer_id=(\d+) ", out.stdout)
    assert examples and set(examples) == {str(customer)}, out.stdout

    # The warehouse ingests the payment (as its late rows do); the next materialization rebuilds
    # the tiles from the source, which now holds it: verify passes and the payment still counts.
    template = next(r for r in rows if r["customer_id"] == customer)
    ingested = dict(template, payment_id=max(r["payment_id"] for r in rows) + 1,
                    event_timestamp=now, amount=12.5, failed=True, status="failed",
                    failure_reason="do_not_honor", payment_method="paypal", attempt=1,
                    ingested_at=now + dt.timedelta(seconds=30))
    table = pa.concat_tables([payments,
                              pa.Table.from_pylist([ingested], schema=payments.schema)])
    pq.write_table(table, repo / "data" / "payments.parquet")
    cli("materialize-incremental", "now", "-q", "--views", "customer_payment_windows",
        check=True)
    out = cli("verify", "--views", "customer_payment_windows", "--sample", "5000")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "verify: OK" in out.stdout
    assert cli_windows(cli, customer) == after
