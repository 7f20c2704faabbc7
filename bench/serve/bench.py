"""Feature server benchmark: `granary serve` under vegeta at fixed rates and at its maximum.

Feast's public benchmark shape: 25 feature views x 10 features (5 int64, 5 float64), 1M entities,
requests of 1, 10, 100 or 500 random entities for 50 features (5 views) or 250 features (all).
For each store (RocksDB, Redis) it loads the online store (bench/serve/serve_load), starts
`granary serve`, and drives it with vegeta (open loop) at fixed rates, then at its maximum
(--max-workers concurrent requests as fast as they go), reporting p50, p99, p99.9, the maximum
latency and the successful requests per second. Beside it, in the same run and at the same rates,
the raw Redis baseline (bench/serve/serve_redis_rate): the GETs Granary's server sends for the
request, and the HMGETs Feast's Redis online store would send on its own layout. The server's own floor, also in
the same run: after each fixed-rate measurement, GET /health on the same server at the same rate
(an HTTP exchange, a store probe read and a small JSON answer), with the ratio of the p99s;
--repeat N measures each pair N times and prints medians. Run it through bench/serve/run.

--overload runs the overload case instead (docs/PERFORMANCE.md, "Overload"): for the first store,
batch and feature count given, the maximum rate, the p99 unloaded (at half of it), then twice
the maximum rate for --overload-duration seconds with vegeta free to open as many connections as
it wants (open loop), and a light probe started when that load stops. It prints the p99 of the
accepted requests beside the unloaded p99, the goodput beside the maximum, and the time the
probe took to see normal latencies again.

The server also serves Feast's gRPC API (--grpc-port): after each case's HTTP maximum, the same
requests over gRPC (bench/serve/serve_grpc_load, closed loop with --max-workers callers) give
gRPC's maximum beside it, twice: "raw" (answers received but not parsed, as vegeta treats HTTP's:
the comparison of the servers) and "decode" (answers parsed into Feast's messages, as Feast's
clients do: what a client on the same 2 cores gets). First, each transport's floor: the rate of a
request with nothing to do (a GET answered 404; GetFeastServingInfo). --no-grpc skips all of it.

--form default,compact measures each fixed rate in each answer form: Feast's shape (default) and
Granary's compact form (include_statuses and include_event_timestamps false: values only,
docs/SERVING.md), alternating within each repetition. The form `grpc` measures the same requests
over Feast's gRPC API at the same rate instead of vegeta's HTTP (serve_grpc_load open loop,
answers received and not parsed; protobuf always carries the statuses and times). Beside each fixed-rate measurement, where
the time goes, as means per request: the client's latency (vegeta's), the server's own time from
its /metrics histograms (the request from its headers read to its answer handed to the socket,
of which the store read, then the send: the answer handed to the socket until the kernel took
its last byte), and the CPU time per request of the server, of vegeta and of Redis
(/proc/PID/stat and getrusage, over the measurement). The server runs with --server-timing:
each answer's Server-Timing header gives that request's own times (its wait in the socket, its
time in the server, its store read and its response JSON), so the p50 and p99 of each are
printed over the same requests as the client's, with the make-up of the client's slowest 1%
(server or outside it). The answer floor, after each form's measurement: the same answers' bytes
served by the server's own HTTP transport with no other work (build/bench/serve_answer_floor),
same requests, same rate (--no-answer-floor skips it). --server-cpus and --client-cpus pin the
server side (granary serve, redis-server, the floor) and vegeta to CPUs, to see the client's
share of the tail.
"""
import argparse
import base64
import json
import os
import platform
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

import processes
from measure import (FORMS, TIMING_METRICS, error_kinds_text, grpc_at_rate, health_targets_file,
                     percentiles_us, server_snapshot, targets_file, vegeta, vegeta_command,
                     vegeta_rows)
from processes import (FEATURES_PER_VIEW, ROOT, VIEWS, AnswerFloor, Redis, Server, make_repo,
                       parse_cpus, run)

LOAD = ROOT / "build" / "bench" / "serve_load"
REDIS_RATE = ROOT / "build" / "bench" / "serve_redis_rate"
GRPC_LOAD = ROOT / "build" / "bench" / "serve_grpc_load"


def median_of(runs, key):
    return float(np.median([r[key] for r in runs]))


def summed_kinds(runs):
    """The error kinds (measure.error_kind) of several measurements, their counts summed."""
    kinds = {}
    for r in runs:
        for kind, n in r.get("error_kinds", {}).items():
            kinds[kind] = kinds.get(kind, 0) + n
    return kinds


def errors_text(result):
    """"0", or "3 (503 --max-queue-delay 2, no answer: EOF 1)": the count and its kinds."""
    kinds = result.get("error_kinds")
    return f"{result['errors']}" + (f" ({error_kinds_text(kinds)})" if kinds else "")


def first_answer(targets):
    """The answer to the first request of a targets file (bytes)."""
    target = json.loads(Path(targets).read_text().splitlines()[0])
    req = urllib.request.Request(target["url"], data=base64.b64decode(target["body"]),
                                 headers={"Content-Type": "application/json"})
    return urllib.request.urlopen(req, timeout=30).read()


def answer_bytes(targets):
    """The size of the answer to the first request of a targets file."""
    return len(first_answer(targets))


def overload(targets, top, unloaded, args, workdir):
    """Twice the maximum rate for args.overload_duration s (vegeta may open up to 20,000
    connections), then a probe at 5% of the maximum for 5 s started as the load stops."""
    rate = int(2 * top["achieved_rate"])
    flood_out, probe_out = workdir / "overload.bin", workdir / "probe.bin"
    flood = subprocess.Popen(vegeta_command(targets, rate, args.overload_duration, flood_out,
                                            20_000), stdout=subprocess.DEVNULL)
    time.sleep(args.overload_duration)
    probe_rate = max(20, int(top["achieved_rate"] / 20))
    run(vegeta_command(targets, probe_rate, 5, probe_out, 64), stdout=subprocess.DEVNULL)
    flood.wait(timeout=120)
    rows = vegeta_rows(flood_out)
    accepted = [lat for _, code, lat in rows if code == 200]
    shed = sum(1 for _, code, _ in rows if code == 503)
    result = percentiles_us(accepted)
    result.update({"rate": rate, "ok": len(accepted), "shed_503": shed,
                   "errors": len(rows) - len(accepted) - shed,
                   "goodput": len(accepted) / args.overload_duration})
    # Recovery: from the probe's start to the first request after which every request is a 200
    # within 3x the unloaded p99.
    probe = sorted(vegeta_rows(probe_out))
    normal = 3 * unloaded["p99_us"] * 1000
    recovered_at = None
    for ts, code, latency in reversed(probe):
        if code != 200 or latency > normal:
            break
        recovered_at = ts
    result["probe_rate"] = probe_rate
    result["recovery_s"] = (None if recovered_at is None or not probe
                            else (recovered_at - probe[0][0]) / 1e9)
    return result


def overload_case(args, data):
    store = args.stores.split(",")[0]
    batch = int(args.batches.split(",")[0])
    n_features = int(args.features.split(",")[0])
    repo = data / store
    redis = Redis(data / "redis") if store == "redis" else None
    try:
        if args.keep_data and store == "rocksdb" and (repo / "data" / "online").exists():
            print(f"reusing the loaded store in {repo} (--keep-data)", flush=True)
        elif store == "redis":
            make_repo(repo, f'{{type: redis, connection_string: "127.0.0.1:{redis.port}"}}')
            run([LOAD, repo, args.entities, 0])
        else:
            make_repo(repo, "{type: rocksdb, path: data/online}")
            run([LOAD, repo, args.entities])
        server = Server(repo, args.threads, batch, args.server_args.split())
        try:
            targets = data / f"targets-{batch}-{n_features}.json"
            targets_file(targets, server.port, batch, n_features, args.entities,
                         max(200, min(20_000, 200_000 // batch)), seed=batch * 1000 + n_features)
            vegeta(targets, 0, min(2, args.duration), data, args.max_workers)  # warm
            top = vegeta(targets, 0, args.duration, data, args.max_workers)
            unloaded = vegeta(targets, max(1, int(top["achieved_rate"] / 2)), args.duration,
                              data, args.max_workers)
            print(f"{store} batch {batch} x {n_features} features; server args "
                  f"'{args.server_args}': max {top['achieved_rate']:.0f} req/s; unloaded "
                  f"({unloaded['rate']} req/s) p50 {fmt_us(unloaded['p50_us'])} p99 "
                  f"{fmt_us(unloaded['p99_us'])}", flush=True)
            o = overload(targets, top, unloaded, args, data)
            ratio = o["p99_us"] / max(1e-9, unloaded["p99_us"])
            share = o["goodput"] / max(1e-9, top["achieved_rate"])
            recovery = "never (within the 5 s probe)" if o["recovery_s"] is None \
                else f"{o['recovery_s']:.2f} s"
            print(f"overload {o['rate']} req/s (2x max) for {args.overload_duration:g} s: accepted "
                  f"p50 {fmt_us(o['p50_us'])} p99 {fmt_us(o['p99_us'])} ({ratio:.1f}x the "
                  f"unloaded p99; goal < 10x); goodput {o['goodput']:.0f} req/s ({share:.0%} of "
                  f"the maximum; goal >= 80%); 503 {o['shed_503']}, other errors {o['errors']}; "
                  f"back to normal (probe at {o['probe_rate']} req/s, p99 within 3x unloaded) "
                  f"after {recovery} (goal < 1 s)", flush=True)
            (data / "overload.json").write_text(json.dumps(
                {"max": top, "unloaded": unloaded, "overload": o}, indent=1))
        finally:
            server.stop()
    finally:
        if redis is not None:
            redis.stop()


def redis_baseline(port, mode, batch, n_features, entities, rate, duration):
    out = subprocess.run(
        [str(REDIS_RATE), "--port", str(port), "--mode", mode, "--project", "serve_bench",
         "--entities", str(entities), "--batch", str(batch), "--features", str(n_features),
         "--rate", str(rate), "--duration", str(duration), "--threads", "4"],
        capture_output=True, text=True)
    if out.returncode != 0 and not out.stdout:
        sys.exit(f"serve_redis_rate failed: {out.stderr}")
    return json.loads(out.stdout)


def grpc_max(port, batch, n_features, entities, duration, workers, mode="decode"):
    """serve_grpc_load's maximum; mode decode (responses parsed, as Feast's clients do), raw
    (received, not parsed, as vegeta treats HTTP answers) or empty (GetFeastServingInfo)."""
    out = subprocess.run([str(GRPC_LOAD), str(port), str(batch), str(n_features), str(entities),
                          str(duration), str(workers), mode], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout)


def floors(server, data, duration, workers):
    """The rate of a request with nothing to do on each transport, same callers: a GET of a path
    the server does not have (its 404, routed and answered without any work; GET /health reads
    the store and the registry) under vegeta, GetFeastServingInfo under serve_grpc_load (raw).
    No feature request can beat its transport's floor on this machine."""
    targets = data / "targets-floor.json"
    targets.write_text(json.dumps({"method": "GET",
                                   "url": f"http://127.0.0.1:{server.port}/floor"}) + "\n")
    vegeta(targets, 0, min(2, duration), data, workers, ok_code=404)  # warm
    http = vegeta(targets, 0, duration, data, workers, ok_code=404)
    grpc = grpc_max(server.grpc_port, 1, 1, 1, duration, workers, "empty")
    return http, grpc


TIMED_PREFIXES = tuple(f"{m}_p" for m in TIMING_METRICS) + ("tail_", "all_")


def timing_line(r):
    """The server's own per-request times (Server-Timing) beside the client's: p50 / p99 of
    each, and the make-up of the client's slowest 1%."""
    parts = []
    for m in TIMING_METRICS:
        if f"{m}_p99_us" in r:
            parts.append(f"{m} {fmt_us(r[f'{m}_p50_us'])} / {fmt_us(r[f'{m}_p99_us'])}")
    tail = " + ".join(f"{m} {fmt_us(r[f'tail_{m}_us'])}" for m in ("wait", "total"))
    return (f"{'':15} server p50 / p99 (Server-Timing): {', '.join(parts)} | slowest 1% "
            f"(client >= p99): client {fmt_us(r['tail_client_us'])} = {tail} (read "
            f"{fmt_us(r['tail_read_us'])}, json {fmt_us(r['tail_json_us'])}, rest "
            f"{fmt_us(r.get('tail_rest_us', 0))}) + outside "
            f"{fmt_us(r['tail_outside_us'])} (all requests: outside "
            f"{fmt_us(r['all_outside_us'])})")


def fmt_us(v):
    return f"{v / 1000:.2f} ms" if v >= 1000 else f"{v:.0f} us"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entities", type=int, default=1_000_000)
    ap.add_argument("--stores", default="rocksdb,redis")
    ap.add_argument("--batches", default="1,10,100,500")
    ap.add_argument("--features", default="250,50")
    ap.add_argument("--rates", default="1000,5000,10000",
                    help="fixed rates (req/s); a rate above 90%% of the measured maximum is "
                         "skipped (it would only measure the queue); when all are, the case is "
                         "measured at half its maximum instead")
    ap.add_argument("--duration", type=float, default=10, help="seconds per measurement")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="server workers")
    ap.add_argument("--max-workers", type=int, default=64,
                    help="vegeta's concurrent requests (at the maximum rate: this many)")
    ap.add_argument("--feast-hashes", type=int, default=100_000,
                    help="entities written in Feast's Redis layout for the HMGET baseline")
    ap.add_argument("--data", default=str(ROOT / "build" / "bench-data" / "serve"))
    ap.add_argument("--overload", action="store_true",
                    help="run the overload case (see above) instead of the rates")
    ap.add_argument("--overload-duration", type=float, default=20,
                    help="seconds at twice the maximum rate")
    ap.add_argument("--keep-data", action="store_true",
                    help="RocksDB: reuse the store a previous run loaded (same --entities), "
                         "e.g. to compare two binaries (--granary) on the same data")
    ap.add_argument("--server-args", default="",
                    help="more arguments for granary serve, e.g. '--max-connections 0' to see "
                         "the server without admission control")
    ap.add_argument("--granary", default=str(processes.GRANARY),
                    help="the granary binary to serve with (e.g. another checkout's, to compare)")
    ap.add_argument("--no-grpc", action="store_true",
                    help="skip the gRPC maximum beside each case's HTTP maximum")
    ap.add_argument("--repeat", type=int, default=1,
                    help="measurements per fixed rate (each followed by its floor); medians shown")
    ap.add_argument("--form", default="default",
                    help="answer forms measured at each fixed rate, of " + ", ".join(FORMS) +
                         ", or grpc (Feast's gRPC API, same requests and rate; e.g. "
                         "default,compact,grpc); the maximum is measured in the first HTTP "
                         "form")
    ap.add_argument("--server-cpus", default="",
                    help="CPUs (e.g. 0, or 0-1) that granary serve and redis-server may run "
                         "on; default: any")
    ap.add_argument("--client-cpus", default="",
                    help="CPUs (e.g. 1) that the load generator (vegeta) may run on; default: "
                         "any. With --server-cpus 0 it shows the client's share of the tail "
                         "(docs/PERFORMANCE.md, \"The tail of a large answer\")")
    ap.add_argument("--no-answer-floor", action="store_true",
                    help="skip the answer floor (build/bench/serve_answer_floor: the same "
                         "answers' bytes from the server's HTTP transport with no other work, "
                         "at the same rate after each fixed-rate measurement)")
    ap.add_argument("--no-floor", action="store_true",
                    help="skip the floor (GET /health at the same rate after each measurement)")
    ap.add_argument("--quick", action="store_true",
                    help="100K entities, 3 s per measurement: a smoke run, not figures")
    if "--quick" in sys.argv[1:]:
        ap.set_defaults(entities=100_000, duration=3, feast_hashes=10_000)
    args = ap.parse_args()
    processes.GRANARY = Path(args.granary)
    processes.SERVER_CPUS = parse_cpus(args.server_cpus)
    processes.CLIENT_CPUS = parse_cpus(args.client_cpus)
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    batches = [int(b) for b in args.batches.split(",")]
    feature_counts = [int(f) for f in args.features.split(",")]
    rates = [int(r) for r in args.rates.split(",")]
    forms = args.form.split(",")
    for form in forms:
        if form not in FORMS and form != "grpc":
            sys.exit(f"--form: unknown form '{form}'; the forms are {', '.join(FORMS)} and grpc")
    if not [f for f in forms if f != "grpc"]:
        sys.exit("--form: name at least one HTTP form (default or compact) beside grpc: the "
                 "case's maximum is measured in it")
    # The HTTP form first: the maximum and the targets are the first form's.
    forms = [f for f in forms if f != "grpc"] + [f for f in forms if f == "grpc"]
    vegeta_version = "v12.13.0"
    print(f"machine: {os.cpu_count()} cores, {platform.platform()}; vegeta {vegeta_version}; "
          f"{args.entities} entities x {VIEWS} views x {FEATURES_PER_VIEW} features; "
          f"{args.duration:g} s per measurement; server: {args.threads} workers"
          + (f"; server CPUs {args.server_cpus}" if processes.SERVER_CPUS else "")
          + (f"; client CPUs {args.client_cpus}" if processes.CLIENT_CPUS else ""), flush=True)
    if args.overload:
        return overload_case(args, data)

    results = []
    for store in args.stores.split(","):
        repo = data / store
        redis = Redis(data / "redis") if store == "redis" else None
        try:
            if store == "redis":
                make_repo(repo, f'{{type: redis, connection_string: "127.0.0.1:{redis.port}"}}')
                print(f"== redis {redis.version} on 127.0.0.1:{redis.port}", flush=True)
                run([LOAD, repo, args.entities, args.feast_hashes])
            elif args.keep_data and (repo / "data" / "online").exists():
                print(f"== rocksdb: reusing the loaded store in {repo} (--keep-data)", flush=True)
            else:
                make_repo(repo, "{type: rocksdb, path: data/online}")
                print("== rocksdb", flush=True)
                run([LOAD, repo, args.entities])
            server = Server(repo, args.threads, max(batches), args.server_args.split())
            try:
                if not args.no_grpc:
                    h, g = floors(server, data, args.duration, args.max_workers)
                    results.append({"store": store, "kind": "floor_http", **h})
                    results.append({"store": store, "kind": "floor_grpc", **g})
                    print(f"{'':7} floor, a request with nothing to do ({args.max_workers} "
                          f"callers): HTTP GET (404) {h['achieved_rate']:.0f} req/s (p50 "
                          f"{fmt_us(h['p50_us'])}), gRPC GetFeastServingInfo "
                          f"{g['achieved_rate']:.0f} req/s (p50 {fmt_us(g['p50_us'])})",
                          flush=True)
                for n_features in feature_counts:
                    for batch in batches:
                        case = {"store": store, "batch": batch, "features": n_features}
                        health = data / "targets-health.json"
                        health_targets_file(health, server.port)
                        count = max(200, min(20_000, 200_000 // batch))
                        form_targets = {}
                        for form in forms:
                            if form == "grpc":
                                continue
                            form_targets[form] = data / f"targets-{batch}-{n_features}-{form}.json"
                            targets_file(form_targets[form], server.port, batch, n_features,
                                         args.entities, count, seed=batch * 1000 + n_features,
                                         form=form)
                        targets = form_targets[forms[0]]
                        vegeta(targets, 0, min(2, args.duration), data, args.max_workers)  # warm
                        # With the server's counters around it: its 503s name their limit.
                        top = vegeta(targets, 0, args.duration, data, args.max_workers,
                                     snapshot=lambda: server_snapshot(server, redis))
                        results.append({**case, "kind": "max", **top})
                        print(f"{store:7} batch {batch:3} x {n_features:3} features: max "
                              f"{top['achieved_rate']:.0f} req/s (p50 {fmt_us(top['p50_us'])}, "
                              f"p99 {fmt_us(top['p99_us'])}, errors {errors_text(top)})",
                              flush=True)
                        if not args.no_grpc:
                            for mode in ("raw", "decode"):
                                g = grpc_max(server.grpc_port, batch, n_features, args.entities,
                                             args.duration, args.max_workers, mode)
                                results.append({**case, "kind": f"grpc_max_{mode}", **g})
                                print(f"{'':7} gRPC {mode:6} (same requests, "
                                      f"{args.max_workers} callers): max "
                                      f"{g['achieved_rate']:.0f} req/s (p50 "
                                      f"{fmt_us(g['p50_us'])}, p99 {fmt_us(g['p99_us'])}, errors "
                                      f"{g['errors']}; {g['achieved_rate'] / top['achieved_rate']:.2f}"
                                      f" of HTTP)", flush=True)
                        # Every case gets a latency at a rate it holds: when each fixed rate is
                        # above 90% of the maximum (large requests on few cores), half of it.
                        case_rates = [r for r in rates if r <= 0.9 * top["achieved_rate"]]
                        half = max(1, int(top["achieved_rate"] / 2))
                        # The answer floor: the same answers' bytes from the server's HTTP
                        # transport with no other work, same requests, same rates.
                        floor_server, floor_targets = None, {}
                        if not args.no_answer_floor:
                            answers = {}
                            for form in form_targets:
                                answers[form] = data / f"answer-{batch}-{n_features}-{form}.json"
                                answers[form].write_bytes(first_answer(form_targets[form]))
                            floor_server = AnswerFloor(args.threads, answers)
                            for form in form_targets:
                                floor_targets[form] = data / f"targets-floor-{form}.json"
                                targets_file(floor_targets[form], floor_server.port, batch,
                                             n_features, args.entities, count,
                                             seed=batch * 1000 + n_features, form=form,
                                             url=f"http://127.0.0.1:{floor_server.port}/{form}")
                        try:
                            measure_rates(args, case, rates + ([] if case_rates else [half]),
                                          top, forms, form_targets, floor_targets, health, data,
                                          server, redis, results)
                        finally:
                            if floor_server is not None:
                                floor_server.stop()
            finally:
                server.stop()
        finally:
            if redis is not None:
                redis.stop()
    (data / "results.json").write_text(json.dumps(results, indent=1))
    print(f"results: {data / 'results.json'}")


def measure_rates(args, case, case_rates, top, forms, form_targets, floor_targets, health, data,
                  server, redis, results):
    """The fixed-rate measurements of one case (store, batch, features), printed and appended
    to `results`."""
    store, batch, n_features = case["store"], case["batch"], case["features"]
    for rate in case_rates:
        if rate > 0.9 * top["achieved_rate"]:
            print(f"{'':7} {rate} req/s: skipped, above 90% of the maximum",
                  flush=True)
            continue
        # The floor in the same run: GET /health at the same rate, right
        # after each measurement (of every form); --repeat rounds, medians
        # printed.
        # The answer floor right after each form's measurement, same requests and rate.
        runs = {form: [] for form in forms}
        floor_runs = {form: [] for form in forms}
        health_runs = []
        for _ in range(args.repeat):
            for form in forms:
                if form == "grpc":
                    runs[form].append(grpc_at_rate(
                        GRPC_LOAD, server.grpc_port, batch, n_features, args.entities, rate,
                        args.duration, args.max_workers,
                        snapshot=lambda: server_snapshot(server, redis)))
                    continue
                runs[form].append(vegeta(
                    form_targets[form], rate, args.duration, data,
                    args.max_workers,
                    snapshot=lambda: server_snapshot(server, redis)))
                if form in floor_targets:
                    floor_runs[form].append(vegeta(floor_targets[form], rate, args.duration,
                                                   data, args.max_workers))
            if not args.no_floor:
                health_runs.append(vegeta(health, rate, args.duration, data,
                                          args.max_workers))
        h = None
        if health_runs:
            h = {k: median_of(health_runs, k) for k in
                 ("p50_us", "p99_us", "p999_us", "max_us")}
            h.update({"rate": rate, "repeats": health_runs})
        for form in forms:
            fr = runs[form]
            keys = ["p50_us", "p99_us", "p999_us", "max_us", "mean_us",
                    "achieved_rate", "handled_us", "store_read_us",
                    "send_us", "server_cpu_us", "server_sys_us",
                    "redis_cpu_us", "children_cpu_us"]
            keys += [k for k in fr[0] if k.startswith(TIMED_PREFIXES)
                     and all(k in x for x in fr)]
            r = {k: median_of(fr, k) for k in keys}
            r.update({"rate": rate, "form": form,
                      "ok": sum(x["ok"] for x in fr),
                      "errors": sum(x["errors"] for x in fr),
                      "error_kinds": summed_kinds(fr),
                      "answer_bytes": (answer_bytes(form_targets[form])
                                       if form in form_targets else 0),
                      "repeats": fr})
            results.append({**case, "kind": "rate", **r})
            name = "" if len(forms) == 1 else f" ({form})"
            line = (f"{'':7} {rate:5} req/s{name}: granary p50 "
                    f"{fmt_us(r['p50_us'])} p99 {fmt_us(r['p99_us'])} p99.9 "
                    f"{fmt_us(r['p999_us'])} max {fmt_us(r['max_us'])} "
                    f"errors {errors_text(r)}")
            if h is not None:
                ratios = [g["p99_us"] / max(1e-9, f["p99_us"])
                          for g, f in zip(fr, health_runs)]
                ratio = float(np.median(ratios))
                results.append({**case, "form": form, "kind": "health_floor",
                                **h, "p99_ratio_median": ratio})
                line += (f" | floor GET /health p50 {fmt_us(h['p50_us'])} "
                         f"p99 {fmt_us(h['p99_us'])}; granary/floor p99 "
                         f"{ratio:.2f}x")
            if args.repeat > 1:
                line += f" (medians of {args.repeat})"
            if floor_runs[form]:
                f = {k: median_of(floor_runs[form], k) for k in ("p50_us", "p99_us", "mean_us")}
                ratio = float(np.median([g["p99_us"] / max(1e-9, x["p99_us"])
                                         for g, x in zip(fr, floor_runs[form])]))
                results.append({**case, "form": form, "kind": "answer_floor", "rate": rate,
                                **f, "p99_ratio_median": ratio, "repeats": floor_runs[form]})
                line += (f" | answer floor (same bytes, HTTP only) p50 {fmt_us(f['p50_us'])} "
                         f"p99 {fmt_us(f['p99_us'])}; granary/answer floor p99 {ratio:.2f}x")
            if redis is not None and form == forms[0]:
                for mode in ("get", "hmget"):
                    if mode == "hmget" and args.feast_hashes <= 0:
                        continue
                    entities = (args.entities if mode == "get"
                                else args.feast_hashes)
                    b = redis_baseline(redis.port, mode, batch, n_features,
                                       entities, rate, args.duration)
                    results.append({**case, "kind": f"redis_{mode}", **b})
                    line += (f" | raw {mode.upper()} p50 "
                             f"{fmt_us(b['p50_us'])} p99 "
                             f"{fmt_us(b['p99_us'])} p99.9 "
                             f"{fmt_us(b['p999_us'])}")
            print(line, flush=True)
            # Where the time goes: means per request of this form.
            cpu = (f"server {fmt_us(r['server_cpu_us'])} (kernel "
                   f"{fmt_us(r['server_sys_us'])}), vegeta "
                   f"{fmt_us(r['children_cpu_us'])}")
            if redis is not None:
                cpu += f", redis {fmt_us(r['redis_cpu_us'])}"
            print(f"{'':15} means: client {fmt_us(r['mean_us'])} | server "
                  f"{fmt_us(r['handled_us'])} (store read "
                  f"{fmt_us(r['store_read_us'])}), then send "
                  f"{fmt_us(r['send_us'])} | CPU per request: {cpu}"
                  + (f" | answer {r['answer_bytes'] / 1000:.0f} KB" if r["answer_bytes"] else
                     " (gRPC: the server's time ends when the answer is handed to gRPC, which "
                     "serializes and sends it; vegeta's column is serve_grpc_load's)"),
                  flush=True)
            if "total_p99_us" in r:
                print(timing_line(r), flush=True)


if __name__ == "__main__":
    main()
