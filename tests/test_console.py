"""The web console (`granary ui`, docs/CONSOLE.md) in a real headless Chromium, over the parking
example's data: every page renders, the charts hold the numbers the repository recorded, the stale
view is flagged, search finds a feature, no console error, and the bearer token is enforced.
Screenshots of each page land in <build>/console-screenshots/ for a person to look at.

The browser is Debian's chromium, driven by web/tests/console_check.mjs through playwright-core
(both installed by scripts/setup)."""
import datetime as dt
import http.client
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import time

import pytest

from conftest import ROOT, Cli
from redis_helpers import free_port
from serve_helpers import TEST_QUEUE_DELAY, stop_gracefully

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHECK_SCRIPT = ROOT / "web" / "tests" / "console_check.mjs"

# A push view beside the example's views: its last push shows on the freshness page.
LIVE_YAML = """
data_sources:
  - {name: bay_occupancy_push, type: push, batch_source: bay_occupancy}
feature_views:
  - name: bay_live
    entities: [parking_bay]
    source: bay_occupancy_push
    ttl: 1d
    description: Occupancy pushed by the bays' sensors as it changes
    schema:
      - {name: occupancy_1h, type: float64}
      - {name: price, type: float64}
"""

OK_REQUESTS = 24
BAD_REQUESTS = 3


def require_browser():
    node = shutil.which("node")
    missing = [what for what, ok in [
        ("node (Node.js 20)", node is not None),
        (CHROMIUM, os.path.exists(CHROMIUM)),
        ("web/node_modules/playwright-core", (ROOT / "web" / "node_modules" / "playwright-core").exists()),
    ] if not ok]
    if missing:
        pytest.fail("the console's browser tests need " + ", ".join(missing) +
                    ": run scripts/setup (it installs Debian's chromium and web/'s npm packages)")
    return node


def get(port, path, token=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        conn.request("GET", path, headers=headers)
        res = conn.getresponse()
        body = res.read().decode()
        return res.status, body, dict(res.getheaders())
    finally:
        conn.close()


def post(port, path, body):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        res = conn.getresponse()
        return res.status, res.read().decode()
    finally:
        conn.close()


class Process:
    """A granary server process whose log names its port; stopped by stop()."""

    def __init__(self, args, log_path, ready):
        self.log_path = log_path
        with open(log_path, "w") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log)
        deadline = time.time() + 30
        while not re.search(ready, self.log()):
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                pytest.fail(f"{args[1:4]} did not start:\n{self.log()}")
            time.sleep(0.05)

    def log(self):
        return self.log_path.read_text()

    def stop(self):
        return stop_gracefully(self.proc)


def stop_all(*processes):
    """Stops every one of `processes` (None: never started), then fails naming those that did not
    exit 0 with their logs. All are stopped before any assertion, so one that fails to stop cleanly
    cannot leave the others running."""
    failed = []
    for p in processes:
        if p is not None and p.stop() != 0:
            failed.append(f"{p.log_path.name}: exit {p.proc.returncode}\n{p.log()}")
    assert not failed, "\n".join(failed)


def start_ui(granary_bin, repo, *args):
    port = free_port()
    return port, Process([str(granary_bin), "-C", str(repo), "ui", "--port", str(port), *args],
                         repo / f"ui-{port}.log", r"console at http://127\.0\.0\.1:\d+/")


def run_browser(node, mode, port, out_dir, env=None):
    proc = subprocess.run([node, str(CHECK_SCRIPT), mode, f"http://127.0.0.1:{port}", str(out_dir)],
                          cwd=ROOT / "web", capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, CHROMIUM=CHROMIUM, **(env or {})))
    assert proc.returncode == 0, f"the browser script failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def console(granary_bin, tmp_path_factory):
    """The parking example, materialized with one view left stale, a feature server that answered
    known requests and a push, and `granary ui` over both; yields what the browser saw."""
    node = require_browser()
    tmp = tmp_path_factory.mktemp("console")
    repo = tmp / "parking"
    repo.mkdir()
    for f in (ROOT / "examples" / "parking").glob("*.yaml"):
        shutil.copy(f, repo / f.name)
    cli = Cli(granary_bin, repo)
    cli("datagen", "--scale", "tiny", "--out", "data", "-q", check=True)
    cli("apply", check=True)
    (repo / "live.yaml").write_text(LIVE_YAML)
    cli("apply", check=True)  # version 2: the push view
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    three_days_ago = (now - dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    # customer_profile stops three days ago: past the console's 1d threshold.
    cli("materialize", "2020-01-01T00:00:00Z", three_days_ago, "--views", "customer_profile", "-q",
        check=True)
    # Every other online view is materialized up to now (the window views too: their tiles).
    cli("materialize-incremental", "now", "-q", "--views",
        "customer_payments_stats,bay_demand,bay_static,customer_payment_windows,"
        "bay_occupancy_windows", check=True)
    cli("materialize-incremental", "now", "-q", "--views", "customer_payments_stats", check=True)

    serve_port = free_port()
    server = Process([str(granary_bin), "-C", str(repo), "serve", "--port", str(serve_port),
                      "--threads", "2", "--metrics-history-interval", "200ms",
                      *TEST_QUEUE_DELAY],
                     repo / "serve.log", r"listening on http://")
    ui = None
    try:
        request = {"feature_service": "customer_risk_v1", "entities": {"customer_id": [1, 2, 3]}}
        for _ in range(OK_REQUESTS):
            assert post(serve_port, "/get-online-features", request)[0] == 200
        for _ in range(BAD_REQUESTS):
            assert post(serve_port, "/get-online-features", {"features": ["nope:x"],
                                                             "entities": {"customer_id": [1]}})[0] == 400
        pushed = post(serve_port, "/push", {
            "push_source_name": "bay_occupancy_push", "to": "online",
            "df": {"parking_bay_id": [1], "event_timestamp": [now.strftime("%Y-%m-%dT%H:%M:%SZ")],
                   "occupancy_1h": [0.5], "price": [2.5]}})
        assert pushed[0] == 200, pushed
        expected_requests = OK_REQUESTS + BAD_REQUESTS + 1
        # The server's history takes a sample every 200 ms: wait until it holds every request.
        deadline = time.time() + 30
        while True:
            history = json.loads(get(serve_port, "/metrics/history")[1])
            if sum(s["requests"] for s in history["samples"]) >= expected_requests:
                break
            assert time.time() < deadline, history
            time.sleep(0.1)

        ui_port, ui = start_ui(granary_bin, repo, "--server", f"http://127.0.0.1:{serve_port}",
                               "--max-staleness", "1d")
        out_dir = pathlib.Path(granary_bin).parent / "console-screenshots"
        report = run_browser(node, "pages", ui_port, out_dir)
        stats = json.loads(cli("stats", "customer_payments_stats", "--json").stdout)
        history_after = json.loads(get(serve_port, "/metrics/history")[1])
        yield {"report": report, "stats": stats, "repo": repo, "cli": cli,
               "out_dir": out_dir, "ui_port": ui_port, "expected_requests": expected_requests,
               "server_history": history_after, "node": node, "granary_bin": granary_bin}
    finally:
        stop_all(ui, server)


def test_every_page_renders_without_a_console_error(console):
    report = console["report"]
    assert report["console_errors"] == []
    assert report["failed_requests"] == []
    # Nothing is loaded from anywhere but the console itself (no CDN).
    assert report["origins"] == [f"http://127.0.0.1:{console['ui_port']}"]
    for name in ["overview", "registry", "feature_view", "lineage", "history", "freshness",
                 "serving", "data", "search"]:
        assert (console["out_dir"] / f"{name}.png").stat().st_size > 5000, name
    pages = report["pages"]
    assert "parking" in pages["overview"]["text"]
    assert set(pages["registry"]["objects"]) >= {"feature_view:customer_payments_stats",
                                                 "entity:customer", "data_source:bay_occupancy",
                                                 "feature_service:demand_prediction_v1"}
    assert "customer_payments_stats:chargebacks_90d" in pages["feature_view"]["features"]
    # The payment windows are Granary's aggregations now, not the nightly job's columns.
    assert "customer_payments_stats:failure_rate_90d" not in pages["feature_view"]["features"]
    assert "risk-team@parking.example" in pages["feature_view"]["text"]


def test_the_stale_view_is_flagged_on_the_first_screen_and_the_freshness_page(console):
    pages = console["report"]["pages"]
    assert pages["overview"]["stale_views"] == "customer_profile"
    assert pages["overview"]["stale_rows"] == ["customer_profile"]
    cards = {c["view"]: c for c in pages["freshness"]["cards"]}
    assert cards["customer_profile"]["stale"] and cards["customer_profile"]["badge"] == "stale"
    assert not cards["customer_payments_stats"]["stale"]
    assert not cards["bay_live"]["stale"]  # pushed a moment ago
    assert "1 rows pushed" in cards["bay_live"]["last_push"]


def test_freshness_charts_hold_the_recorded_runs(console):
    charts = console["report"]["pages"]["freshness"]["charts"]
    # The run history as the registry recorded it (SQLite, read independently of Granary).
    db = sqlite3.connect(console["repo"] / "data" / "registry.db")
    try:
        for view in ["customer_payments_stats", "customer_profile", "bay_demand"]:
            runs = db.execute("SELECT rows_read, entities_written FROM materialization_runs "
                              "WHERE view = ? AND finished_at IS NOT NULL ORDER BY id",
                              (view,)).fetchall()
            chart = charts[f"runs-{view}"]
            assert chart["drawn"]
            assert chart["series"][0]["values"] == [r[0] for r in runs], view
            assert chart["series"][1]["values"] == [r[1] for r in runs], view
    finally:
        db.close()
    # customer_payments_stats ran twice; its watermark's age is under an hour now, and the
    # threshold line is the console's 1d (24 hours).
    age = charts["age-customer_payments_stats"]
    assert len(charts["runs-customer_payments_stats"]["x"]) == 2
    assert age["series"][0]["values"][-1] < 1
    assert set(age["series"][1]["values"]) == {24}
    stale_age = charts["age-customer_profile"]["series"][0]["values"][-1]
    assert 72 <= stale_age < 73


def test_serving_charts_hold_the_requests_the_server_answered(console):
    serving = console["report"]["pages"]["serving"]
    assert serving["total_requests"] == console["expected_requests"]
    requests = serving["charts"]["requests"]
    assert sum(requests["series"][0]["values"]) == console["expected_requests"]
    latency = serving["charts"]["latency"]
    p50 = [v for v in latency["series"][0]["values"] if v is not None]
    assert p50 and all(v > 0 for v in p50)
    errors = serving["charts"]["errors"]["series"][0]["values"]
    assert any(v is not None and v > 0 for v in errors)
    assert console["report"]["pages"]["overview"]["health"] == "ok"


def test_a_server_shedding_load_shows_as_overloaded_not_as_an_empty_badge(console, tmp_path):
    """A feature server at its --max-connections answers /health itself with a 503 and an error
    body (no health report): the console says "overloaded" with the server's message."""
    repo = console["repo"]
    port = free_port()
    server = Process([str(console["granary_bin"]), "-C", str(repo), "serve", "--port", str(port),
                      "--threads", "1", "--max-connections", "1", "--idle-timeout", "120s",
                      *TEST_QUEUE_DELAY],
                     tmp_path / "serve-limited.log", r"listening on http://")
    held = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    ui = None
    try:
        held.request("GET", "/health")  # admitted, kept alive: the worker is now at its limit
        held.getresponse().read()
        ui_port, ui = start_ui(console["granary_bin"], repo, "--server", f"http://127.0.0.1:{port}")
        status, body, _ = get(ui_port, "/api/serving")
        assert status == 200, body
        serving = json.loads(body)
        assert serving["reachable"] is True, serving
        assert serving["health"]["status"] == "overloaded", serving
        assert "the server is overloaded: 1 connections open on this worker" \
            in serving["health"]["message"], serving
        report = run_browser(console["node"], "overview", ui_port, tmp_path / "shots")
        assert report["pages"]["overview"]["health"] == "overloaded", report
        assert "--max-connections 1" in report["pages"]["overview"]["serving"], report
        assert report["console_errors"] == [], report
    finally:
        held.close()
        stop_all(ui, server)


def test_data_page_shows_the_statistics_granary_stats_computes(console):
    data = console["report"]["pages"]["data"]
    stats = console["stats"]
    assert data["rows"] == stats["rows"] > 0
    for f in stats["features"]:
        shown = data["features"][f["name"]]
        assert shown["count"] == f"{f['count']:,}"
        assert shown["distinct"] == f"{f['distinct_estimate']:,}"
        if f["histogram"]:
            chart = data["charts"][f"hist-{f['name']}"]
            assert chart["series"][0]["values"] == [b["count"] for b in f["histogram"]]
            assert sum(chart["series"][0]["values"]) == f["count"] - f["nulls"] - f["nan"]
    # The online sample: five customers with their current values, all present online.
    assert data["online_header"][0] == "customer_id"
    assert len(data["online_rows"]) == 5
    assert all("PRESENT" in cell for row in data["online_rows"] for cell in row[1:])


def test_search_finds_a_feature(console):
    search = console["report"]["pages"]["search"]
    # The payment windows are the aggregations of customer_payment_windows (windows.yaml).
    assert "feature:customer_payment_windows:failure_rate_90d" in search["results"]
    # Enter opens the first result's view.
    first_view = search["results"][0].split(":")[1]
    assert search["opened"] == f"feature_view:{first_view}"


def test_lineage_and_history(console):
    pages = console["report"]["pages"]
    edges = set(pages["lineage"]["edges"])
    assert "data_source:customer_payments->feature_view:customer_payments_stats" in edges
    assert "feature_view:customer_payments_stats->feature_service:customer_risk_v1" in edges
    assert "data_source:bay_occupancy_push->data_source:bay_occupancy" in edges
    versions = pages["history"]["versions"]
    assert [v["version"] for v in versions] == [2, 1]
    assert any("feature view bay_live" in c for c in versions[0]["changes"])
    assert any("data source bay_occupancy_push" in c for c in versions[0]["changes"])


def test_the_token_is_enforced_on_the_api_and_asked_for_by_the_page(console, tmp_path):
    repo, granary_bin = console["repo"], console["granary_bin"]
    port, ui = start_ui(granary_bin, repo, "--token", "s3cret")
    try:
        assert get(port, "/api/registry")[0] == 401
        assert get(port, "/api/stats?view=bay_demand", token="wrong")[0] == 401
        status, body, _ = get(port, "/api/registry", token="s3cret")
        assert status == 200 and json.loads(body)["registry"]["project"] == "parking"
        # The page itself holds no data and loads without the token, under a strict policy.
        status, page, headers = get(port, "/")
        assert status == 200 and "<div id=\"app\">" in page
        assert "default-src 'self'" in headers["Content-Security-Policy"]
        report = run_browser(console["node"], "token", port, console["out_dir"],
                             env={"TOKEN": "s3cret"})
        assert "requires a bearer token" in report["pages"]["token_form"]
        assert report["pages"]["registry_after_token"] > 5
        # The only errors are the 401s the page got before the token was typed.
        assert all("401" in e for e in report["console_errors"]), report["console_errors"]
    finally:
        stop_all(ui)


def test_the_api_answers_scripts_with_errors_that_say_what_to_fix(console):
    port = console["ui_port"]
    status, body, _ = get(port, "/api/stats")
    assert status == 400 and "?view=NAME" in body
    status, body, _ = get(port, "/api/stats?view=nope")
    assert status == 404 and "nope" in body
    status, body, _ = get(port, "/api/stats?view=bay_demand&start=tuesday")
    assert status == 400 and "?start=" in body
    status, body, _ = get(port, "/api/freshness")
    assert status == 200 and json.loads(body)["max_staleness"] == "1d"


def test_stats_cli_errors_and_range(console):
    cli = console["cli"]
    bad = cli("stats", "customer_payment_stats", check=False)
    assert "did you mean 'customer_payments_stats'" in bad.stderr
    bad = cli("stats", "bay_demand", "--features", "occupancy", check=False)
    assert "has no feature 'occupancy'" in bad.stderr
    whole = console["stats"]
    last = whole["last_event"]
    ranged = json.loads(cli("stats", "customer_payments_stats", "--json", "--start", last,
                            "--sample", "0", check=True).stdout)
    assert 0 < ranged["rows"] < whole["rows"]
    assert ranged["first_event"] == last
    human = cli("stats", "bay_static", check=True).stdout
    assert "zone_kind" in human and "top values:" in human


def stop_process_group(proc):
    """Stops a script started with start_new_session=True and everything it started: SIGTERM to
    the script (its traps stop its servers), then SIGKILL to whatever is left of its process group
    (whose id is the script's pid). True when something was still running after the script."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        return False  # the group is empty: nothing outlived the script
    return True


def test_make_demo_ui_leaves_the_console_running_until_interrupted(granary_bin, tmp_path):
    """`make demo UI=1` (scripts/demo with UI=1): the demo's steps, then the console's address,
    and both servers running until Ctrl-C; then the demo stops them and ends as usual."""
    env = dict(os.environ, GRANARY_BIN=str(granary_bin), DEMO_DIR=str(tmp_path / "demo" / "parking"),
               UI="1", UI_PORT="0")
    # Its own process group (the script's pid), so that whatever happens the test can find and
    # stop what the script started: killing the script alone would orphan its servers.
    # SIGINT at its default: a shell started with it ignored (as pytest is when it runs as a
    # background job of a non-interactive shell) can neither trap nor reset it.
    proc = subprocess.Popen([str(ROOT / "scripts" / "demo")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines = []
    out = ""
    try:
        url = None
        deadline = time.time() + 240
        while url is None and time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.match(r"Console: (http://127\.0\.0\.1:(\d+)/)", line)
            if m:
                url, port = m.group(1), int(m.group(2))
        assert url, "".join(lines)
        status, body, _ = get(port, "/api/serving")
        assert status == 200 and json.loads(body)["reachable"], body
        assert get(port, "/")[0] == 200
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        out, _ = proc.communicate(timeout=60)
    finally:
        left_running = stop_process_group(proc)
    output = "".join(lines) + out
    assert not left_running, f"the demo left processes running (stopped by the test):\n{output}"
    assert proc.returncode == 0, output
    assert "granary ui: stopped" in output and "demo: ok" in output
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "the console is still running"
