"""bench/serve's processes: the feature repository of Feast's benchmark shape, granary serve,
redis-server and the answer floor (build/bench/serve_answer_floor), started on free ports of
127.0.0.1 (pinned to --server-cpus when given), and what they cost in CPU. bench.py sets GRANARY,
SERVER_CPUS and CLIENT_CPUS from its options before it starts any."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GRANARY = ROOT / "build" / "granary"
ANSWER_FLOOR = ROOT / "build" / "bench" / "serve_answer_floor"
VIEWS, FEATURES_PER_VIEW = 25, 10


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def definitions():
    lines = ["entities:", "  - {name: customer, join_keys: [customer_id], value_type: int64}",
             "data_sources:",
             "  - {name: src, path: data/src, timestamp_field: event_timestamp}",
             "feature_views:"]
    for v in range(VIEWS):
        lines += [f"  - name: view_{v:02}", "    entities: [customer]", "    source: src",
                  "    schema:"]
        for f in range(FEATURES_PER_VIEW):
            kind = "int64" if f < FEATURES_PER_VIEW // 2 else "float64"
            lines.append(f"      - {{name: f{f:02}, type: {kind}}}")
    return "\n".join(lines) + "\n"


def feature_refs(n_features):
    return [f"view_{v:02}:f{f:02}" for v in range(n_features // FEATURES_PER_VIEW)
            for f in range(FEATURES_PER_VIEW)]


# --server-cpus / --client-cpus: the CPUs granary serve and redis-server (server side) and
# vegeta (client side) may run on; None: any (the default, as the machine schedules them).
SERVER_CPUS = None
CLIENT_CPUS = None


def pinned_to(cpus):
    """A preexec_fn that restricts the child to `cpus` (None: no restriction)."""
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def run(cmd, **kw):
    return subprocess.run([str(c) for c in cmd], check=True, **kw)


def wait_for_port(port, proc, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{what} did not listen on {port}")


class Redis:
    def __init__(self, workdir):
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=pinned_to(SERVER_CPUS))
        wait_for_port(self.port, self.proc, "redis-server")
        self.version = subprocess.run(["redis-server", "--version"], capture_output=True,
                                      text=True).stdout.split()[2].removeprefix("v=")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def make_repo(path, store_yaml):
    if path.exists():
        shutil.rmtree(path)
    (path / "data").mkdir(parents=True)
    (path / "granary.yaml").write_text(f"project: serve_bench\nonline_store: {store_yaml}\n")
    (path / "features.yaml").write_text(definitions())
    run([GRANARY, "-C", path, "apply"], capture_output=True)


class Server:
    def __init__(self, repo, threads, max_entities, extra_args=()):
        self.port = free_port()
        self.grpc_port = free_port()
        self.log = open(repo / "serve.log", "w")
        self.proc = subprocess.Popen(
            [str(GRANARY), "-C", str(repo), "serve", "--port", str(self.port), "--threads",
             str(threads), "--max-entities", str(max_entities), "--body-limit-bytes",
             str(16 << 20), "--grpc-port", str(self.grpc_port), "--server-timing",
             *extra_args],
            stdout=self.log, stderr=self.log, preexec_fn=pinned_to(SERVER_CPUS))
        wait_for_port(self.port, self.proc, "granary serve")
        wait_for_port(self.grpc_port, self.proc, "granary serve (gRPC)")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        self.log.close()


class AnswerFloor:
    """build/bench/serve_answer_floor: the server's HTTP transport answering POST /<form> with
    the bytes of that form's first answer, no other work (the floor of an answer that large)."""

    def __init__(self, threads, answers):
        self.port = free_port()
        cmd = [str(ANSWER_FLOOR), "--port", str(self.port), "--threads", str(threads)]
        for form, path in answers.items():
            cmd += ["--answer", f"/{form}={path}"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                     preexec_fn=pinned_to(SERVER_CPUS))
        wait_for_port(self.port, self.proc, "serve_answer_floor")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


def process_cpu_s(pid, system_only=False):
    """User + system (or only system) CPU seconds of a running process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[12]) if system_only else int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def parse_cpus(text):
    """'0', '0-1' or '0,2' as a set of CPU numbers; None for ''."""
    if not text:
        return None
    cpus = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        try:
            cpus.update(range(int(first), int(last or first) + 1))
        except ValueError:
            sys.exit(f"CPU list '{text}': write e.g. 0, 0-1 or 0,1")
    bad = cpus - os.sched_getaffinity(0)
    if bad:
        sys.exit(f"CPU list '{text}': CPUs {sorted(bad)} are not available here (this process "
                 f"may use {sorted(os.sched_getaffinity(0))})")
    return cpus
