"""bench/serve's measurements: vegeta's targets, attacks and results, and where a request's time
went (the server's /metrics histograms, its Server-Timing headers, the CPU of each process)."""
import base64
import csv
import io
import json
import resource
import subprocess
import time
import urllib.error
import urllib.request

import numpy as np

import processes
from processes import ROOT, feature_refs, pinned_to, process_cpu_s, run

VEGETA = ROOT / ".tools" / "bin" / "vegeta"


# The answer forms --form measures: the request fields each adds (docs/SERVING.md).
FORMS = {"default": {},
         "compact": {"include_statuses": False, "include_event_timestamps": False}}


def targets_file(path, port, batch, n_features, entities, count, seed, form="default",
                 url=None):
    """vegeta targets (JSON lines), each a request for `batch` random entities, answered in
    `form` (FORMS); the same entities whatever the form. Sent to `url` when given (the answer
    floor), else to the server's /get-online-features on `port`."""
    rng = np.random.default_rng(seed)
    features = feature_refs(n_features)
    url = url or f"http://127.0.0.1:{port}/get-online-features"
    with open(path, "w") as out:
        for _ in range(count):
            ids = rng.integers(0, entities, batch).tolist()
            body = json.dumps({"features": features, "entities": {"customer_id": ids},
                               "full_feature_names": True, **FORMS[form]})
            out.write(json.dumps({"method": "POST", "url": url,
                                  "body": base64.b64encode(body.encode()).decode(),
                                  "header": {"Content-Type": ["application/json"]}}) + "\n")


def health_targets_file(path, port):
    """vegeta target of the server's own floor: GET /health on the same server (HTTP, a store
    probe read, a small JSON answer)."""
    with open(path, "w") as out:
        out.write(json.dumps({"method": "GET", "url": f"http://127.0.0.1:{port}/health"}) + "\n")


def percentiles_us(latencies_ns):
    a = np.sort(np.asarray(latencies_ns, dtype=np.float64)) / 1000.0
    if len(a) == 0:
        return {"p50_us": 0, "p99_us": 0, "p999_us": 0, "max_us": 0, "mean_us": 0}
    pick = lambda p: float(a[min(len(a) - 1, int(p * len(a)))])
    return {"p50_us": pick(0.50), "p99_us": pick(0.99), "p999_us": pick(0.999),
            "max_us": float(a[-1]), "mean_us": float(a.mean())}


def vegeta_command(targets, rate, duration, out, max_workers):
    cmd = [VEGETA, "attack", "-format=json", f"-targets={targets}", f"-duration={duration}s",
           "-max-body=0", "-timeout=10s", "-keepalive=true", f"-output={out}"]
    if rate > 0:
        cmd += [f"-rate={rate}/s", "-workers=32", f"-max-workers={max_workers}"]
    else:
        cmd += ["-rate=0", f"-max-workers={max_workers}", f"-workers={max_workers}"]
    return [str(c) for c in cmd]


def vegeta_rows(out):
    """(timestamp ns, status code, latency ns) of every request of a vegeta results file."""
    csv = subprocess.run([str(VEGETA), "encode", "-to=csv", str(out)], check=True,
                         capture_output=True, text=True).stdout
    return [(int(c[0]), int(c[1]), int(c[2])) for c in (line.split(",", 3)
                                                       for line in csv.splitlines())]


def server_timing(header_block):
    """{metric: ms} of the Server-Timing header in a vegeta result's headers (the CSV's last
    column, base64 of "Name: value" lines); {} when there is none."""
    for line in base64.b64decode(header_block).decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "server-timing":
            timing = {}
            for metric in value.split(","):
                parts = [p.strip() for p in metric.split(";")]
                for p in parts[1:]:
                    if p.startswith("dur="):
                        timing[parts[0]] = float(p[4:])
            return timing
    return {}


def vegeta_rows_timed(out):
    """(timestamp ns, status code, latency ns, Server-Timing {metric: ms}, error kind) of every
    request of a vegeta results file; the kind (error_kind) is None for a 2xx."""
    csv_text = subprocess.run([str(VEGETA), "encode", "-to=csv", str(out)], check=True,
                              capture_output=True, text=True).stdout
    return [(int(c[0]), int(c[1]), int(c[2]), server_timing(c[11]) if len(c) > 11 else {},
             None if 200 <= int(c[1]) < 300 else error_kind(int(c[1]), c[5]))
            for c in csv.reader(io.StringIO(csv_text))]


def error_kind(code, error):
    """What a failed request was, in a few words: an answer's status ("503"; vegeta keeps no
    bodies, -max-body=0, so which limit shed a 503 comes from the server's counters: shed_kinds),
    or for no answer (code 0) vegeta's error without the request's URL ("context deadline
    exceeded (Client.Timeout exceeded while awaiting headers)", "read: connection reset by
    peer")."""
    if code == 0:
        return "no answer: " + (error.rsplit('": ', 1)[-1].strip() or "unknown")
    return str(code)


# The server's admission limits (granary_http_shed_requests_total{limit=...}) and their flags.
SHED_LIMITS = {"queue_delay": "--max-queue-delay", "connections": "--max-connections",
               "in_flight": "--max-in-flight"}


def shed_kinds(kinds, before, after):
    """`kinds` with its 503s named by the limit that shed them ("503 --max-queue-delay"), from
    the server's shed counters between two snapshots; 503s no counter accounts for stay "503"."""
    out = dict(kinds)
    for limit, flag in SHED_LIMITS.items():
        n = int(after.get(f"shed_{limit}", 0) - before.get(f"shed_{limit}", 0))
        n = min(n, out.get("503", 0))
        if n > 0:
            out[f"503 {flag}"] = n
            out["503"] -= n
            if out["503"] == 0:
                del out["503"]
    return out


def error_kinds_text(kinds):
    """"503 --max-queue-delay 3, no answer: EOF 1" from {kind: count}, most frequent first."""
    return ", ".join(f"{k} {n}" for k, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))


# The Server-Timing metrics of a get-online-features answer (granary serve --server-timing):
# the wait in the socket, the whole request in the server, its store read and response JSON.
TIMING_METRICS = ("wait", "total", "read", "json")


def timing_summary(latencies_ns, timings):
    """Per-request quantiles of the server's own times (Server-Timing, in us) over the same
    requests as the client's latencies, and the tail's make-up: means over the requests at or
    above the client's p99 of their client latency, server times, and what is outside the
    server (client latency - wait - total: the send, the network, the client's own time)."""
    if not timings or not any(timings):
        return {}
    out = {}
    for m in TIMING_METRICS:
        values = [1000 * t[m] for t in timings if m in t]
        if values:
            a = np.sort(np.asarray(values))
            out[f"{m}_p50_us"] = float(a[min(len(a) - 1, int(0.50 * len(a)))])
            out[f"{m}_p99_us"] = float(a[min(len(a) - 1, int(0.99 * len(a)))])
    lat_us = np.asarray(latencies_ns, dtype=np.float64) / 1000.0
    p99 = np.sort(lat_us)[min(len(lat_us) - 1, int(0.99 * len(lat_us)))]
    tail = [i for i in range(len(lat_us)) if lat_us[i] >= p99]
    out["tail_n"] = len(tail)
    out["tail_client_us"] = float(np.mean(lat_us[tail]))
    for m in TIMING_METRICS:
        out[f"tail_{m}_us"] = float(np.mean([1000 * timings[i].get(m, 0.0) for i in tail]))
    out["tail_outside_us"] = out["tail_client_us"] - out["tail_wait_us"] - out["tail_total_us"]
    # In the server but neither the read nor the JSON: the body read, parse, resolve, and the
    # read's completion waiting its turn on the worker.
    out["tail_rest_us"] = out["tail_total_us"] - out["tail_read_us"] - out["tail_json_us"]
    # The same make-up over all requests, to compare the tail with.
    out["all_outside_us"] = float(np.mean(
        [lat_us[i] - 1000 * (timings[i].get("wait", 0.0) + timings[i].get("total", 0.0))
         for i in range(len(lat_us))]))
    return out


# Histograms of the server's /metrics whose means bench/serve prints (name: sample prefix).
SERVER_TIMES = {
    "handled": 'granary_http_request_duration_seconds_{}{{path="/get-online-features"}}',
    "store_read": "granary_online_store_read_seconds_{}{{",
    "send": 'granary_http_response_send_seconds_{}{{path="/get-online-features"}}',
    # gRPC: from the call received to its answer handed to gRPC (which then serializes and sends
    # it: not included).
    "grpc_handled": ('granary_grpc_request_duration_seconds_{}'
                     '{{method="/feast.serving.ServingService/GetOnlineFeatures"}}'),
}


def scrape_metrics(port, tries=10):
    """The server's /metrics text. A busy server sheds the scrape too (503 with Retry-After,
    --max-queue-delay): it is tried again after the Retry-After, up to `tries` times."""
    for attempt in range(tries):
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
        except urllib.error.HTTPError as e:
            if e.code != 503 or attempt == tries - 1:
                raise
            time.sleep(float(e.headers.get("Retry-After", 1)))


def server_snapshot(server, redis):
    """What the breakdown of a measurement compares before and after: the server's histogram
    sums and counts (seconds), its CPU, Redis's CPU and the load generator's (vegeta, a child
    process waited for)."""
    text = scrape_metrics(server.port)
    snap = {}
    for line in text.decode().splitlines():
        if line.startswith('granary_http_shed_requests_total{limit="'):
            limit = line.split('"', 2)[1]
            snap[f"shed_{limit}"] = float(line.rsplit(" ", 1)[1])
        for name, pattern in SERVER_TIMES.items():
            for part in ("sum", "count"):
                if line.startswith(pattern.format(part)):
                    snap[f"{name}_{part}"] = float(line.rsplit(" ", 1)[1])
    snap["server_cpu"] = process_cpu_s(server.proc.pid)
    # The kernel's part: on loopback, sending also runs the receiving side's TCP processing.
    snap["server_sys"] = process_cpu_s(server.proc.pid, system_only=True)
    snap["redis_cpu"] = process_cpu_s(redis.proc.pid) if redis is not None else 0.0
    snap["children_cpu"] = sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2])
    return snap


def breakdown(before, after, requests):
    """Means per request between two snapshots, in us: the server's own times and the CPU
    times (the /metrics scrape between them counts a few us of server CPU, nothing else)."""
    out = {}
    for name in SERVER_TIMES:
        n = after.get(f"{name}_count", 0) - before.get(f"{name}_count", 0)
        total = after.get(f"{name}_sum", 0) - before.get(f"{name}_sum", 0)
        out[f"{name}_us"] = 1e6 * total / n if n > 0 else 0.0
    for name in ("server_cpu", "server_sys", "redis_cpu", "children_cpu"):
        out[f"{name}_us"] = 1e6 * (after[name] - before[name]) / max(1, requests)
    return out


def grpc_at_rate(grpc_load, port, batch, n_features, entities, rate, duration, workers,
                 snapshot):
    """Feast's gRPC GetOnlineFeatures at a fixed rate, open loop (serve_grpc_load with a RATE:
    answers received, not parsed, as vegeta treats HTTP's), with the same breakdown as vegeta's
    (the server's gRPC time in place of its HTTP time)."""
    before = snapshot()
    out = subprocess.run([str(grpc_load), str(port), str(batch), str(n_features), str(entities),
                          str(duration), str(workers), "raw", str(rate)], check=True,
                         capture_output=True, text=True, preexec_fn=pinned_to(processes.CLIENT_CPUS))
    after = snapshot()
    result = json.loads(out.stdout)
    ok = int(round(result["achieved_rate"] * duration))
    result.update({"rate": rate, "ok": ok, "error_kinds": ({"grpc": result["errors"]}
                                                           if result["errors"] else {})})
    result.update(breakdown(before, after, ok + result["errors"]))
    result["handled_us"] = result.pop("grpc_handled_us")
    result["send_us"] = 0.0  # not measured: gRPC serializes and sends after the handler
    return result


def vegeta(targets, rate, duration, workdir, max_workers, ok_code=200, snapshot=None):
    """One vegeta attack; rate 0 means as fast as max_workers concurrent requests go. Answers
    with ok_code count as successes, the others by kind (error_kinds: error_kind, and with
    `snapshot` a 503 names the limit that shed it). With `snapshot` (a function returning
    server_snapshot), the result also has the breakdown of the attack (not of decoding its
    results) and, from the answers' Server-Timing headers, the server's own per-request times
    (timing_summary)."""
    out = workdir / "results.bin"
    before = snapshot() if snapshot else None
    run(vegeta_command(targets, rate, duration, out, max_workers), stdout=subprocess.DEVNULL,
        preexec_fn=pinned_to(processes.CLIENT_CPUS))
    after = snapshot() if snapshot else None
    latencies, timings, ok, errors, first, last = [], [], 0, 0, None, None
    kinds = {}  # error kind (error_kind) -> requests
    for ts, code, latency, timing, kind in vegeta_rows_timed(out):
        first = ts if first is None else min(first, ts)
        last = ts if last is None else max(last, ts)
        if code == ok_code:
            ok += 1
            latencies.append(latency)
            timings.append(timing)
        else:
            errors += 1
            kind = kind or str(code)  # a 2xx other than ok_code
            kinds[kind] = kinds.get(kind, 0) + 1
    elapsed = max(1e-9, (last - first) / 1e9) if first is not None else duration
    result = percentiles_us(latencies)
    result.update({"rate": rate, "ok": ok, "errors": errors, "error_kinds": kinds,
                   "achieved_rate": ok / max(elapsed, duration if rate > 0 else elapsed)})
    if snapshot:
        result["error_kinds"] = shed_kinds(kinds, before, after)
        result.update(breakdown(before, after, ok + errors))
        result.update(timing_summary(latencies, timings))
    return result
