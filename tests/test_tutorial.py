"""docs/TUTORIAL.md runs as written and prints what it shows, as tests/test_readme_tour.py does for
the README's tour.

The tutorial's first ```sh block makes the copy of examples/parking (in a temporary folder instead
of /tmp/parking). Every later block that starts with a `$ ` line is run: its commands (a line
ending in a backslash goes on; a here-document takes its lines up to its terminator) go, in
order, to one bash session in the copy, so that `&`, `$!` and variables carry from one command to
the next, as in the reader's terminal. Each shown output line must appear, in order, in what the
command printed, after both sides lose what the clock decides (test_readme_tour.normalize; `...`
stands for any text, a line of `...` for lines left out). A command that only reads (a `cat` or
`tail` of a log, a `curl` that reads) is tried again for up to a minute while it fails or its
output does not match yet: a server starts, writes its log and a cluster fails over in the
background while the reader would be typing. The ports are the
ones that differ: the server's 6566, the scheduler's 9464 and the Redis Cluster's 7000-7005 (and
their bus ports 17000-17005) become free ports of 127.0.0.1.
"""
import os
import re
import select
import shutil
import socket
import subprocess
import time

import pytest

from conftest import ROOT
from test_readme_tour import check_output, commands_of

TUTORIAL = ROOT / "docs" / "TUTORIAL.md"
# The first ```sh block, as the test does it instead (a copy in a temporary folder).
SETUP = ["make build",
         "export GRANARY_SRC=$PWD PATH=$PWD/build:$PATH       # the checkout; the granary command",
         "cp -r examples/parking /tmp/parking && cd /tmp/parking"]
# Commands that only read, tried again while their output does not match yet.
READ_ONLY = re.compile(r"^(cat|tail) [^>]*\.log$|^curl -s [^-]*$|^curl -s \S+ \| "
                       r"|^curl -s \S+/get-online-features -d |^redis-cli -p \d+ cluster ")
RETRY_SECONDS = 60  # a Redis Cluster failover: cluster-node-timeout (15 s) and an election
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # redis-cli colours its output
REDIS_PORTS = [7000, 7001, 7002, 7003, 7004, 7005]


def blocks():
    """(section title, language, text) of every fenced block."""
    text = TUTORIAL.read_text()
    out = []
    section = ""
    for m in re.finditer(r"^## ([^\n]*)$|^```(\w*)\n(.*?)^```", text, flags=re.S | re.M):
        if m.group(1) is not None:
            section = m.group(1)
        else:
            out.append((section, m.group(2), m.group(3)))
    return out


def free_ports(n):
    """n distinct free ports of 127.0.0.1."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_cluster_ports():
    """Six ports p whose bus ports p + 10000 are free too (Redis Cluster's rule)."""
    for _ in range(50):
        ports = [p for p in free_ports(12) if p + 10000 < 65536]
        ok = []
        for p in ports:
            try:
                with socket.socket() as a, socket.socket() as b:
                    a.bind(("127.0.0.1", p))
                    b.bind(("127.0.0.1", p + 10000))
                ok.append(p)
            except OSError:
                continue
            if len(ok) == 6 and len({len(str(p)) for p in ok}) == 1:
                return ok  # as many digits each: sorted as text as they are as numbers
    pytest.fail("no six free ports with free bus ports on 127.0.0.1")


class Shell:
    """One bash session; each command's output goes to a file of its own."""

    def __init__(self, cwd, env, out_dir):
        self.out_dir = out_dir
        self.count = 0
        self.proc = subprocess.Popen(["bash"], cwd=cwd, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # Job control, as in the reader's terminal: without it bash starts `&` jobs with SIGINT
        # ignored, and `kill -INT $scheduler` would not stop the scheduler.
        self.run("set -m")

    def run(self, command, timeout=300):
        self.count += 1
        out = self.out_dir / f"{self.count}.out"
        self.proc.stdin.write(f"{{\n{command}\n}} > {out} 2>&1 < /dev/null\n"
                              f"echo __done__ $?\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while True:
            ready, _, _ = select.select([self.proc.stdout], [], [], 1)
            if ready:
                line = self.proc.stdout.readline()
                if line.startswith("__done__ "):
                    return int(line.split()[1]), ANSI.sub("", out.read_text())
                assert line, f"bash ended during `{command}`"
            assert time.monotonic() < deadline, f"`{command}` did not end in {timeout} s"

    def close(self):
        # Whatever the tutorial left running in the background (its own cleanup already ran
        # when the test got that far): the session's jobs, by pid.
        self.proc.stdin.write("for p in $(jobs -p); do kill $p; done; wait; exit\n")
        self.proc.stdin.flush()
        self.proc.wait(timeout=60)


def test_the_tutorial_prints_what_it_shows(granary_bin, tmp_path):
    for tool in ("curl", "jq", "redis-server", "redis-cli"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: scripts/setup installs it")
    all_blocks = blocks()
    assert all_blocks[0][1] == "sh"
    assert all_blocks[0][2].strip().splitlines() == SETUP, all_blocks[0]
    folder = tmp_path / "parking"
    subprocess.run(["cp", "-r", str(ROOT / "examples" / "parking"), str(folder)], check=True)
    out_dir = tmp_path / "outputs"
    out_dir.mkdir()

    serve_port, schedule_port = free_ports(2)
    # In the same order as the tutorial's, so that its sorted listings keep their order.
    cluster = dict(zip(REDIS_PORTS, sorted(free_cluster_ports())))
    python_path = os.environ.get("GRANARY_PYTHONPATH", str(granary_bin.parent / "python"))

    def replace(text: str) -> str:
        text = (text.replace("/tmp/parking", str(folder))
                .replace("/tmp/redis-cluster", str(tmp_path / "redis-cluster"))
                .replace("$GRANARY_SRC/build/python", python_path)
                # The machine running the tests may be loaded: no shedding of requests that
                # waited for a worker (a 503 the reader's idle machine does not give).
                .replace("granary serve >",
                         f"granary serve --port {serve_port} --max-queue-delay 0 >")
                .replace("25ms waiting to be read", "no bound waiting to be read")
                .replace("--metrics-port 9464", f"--metrics-port {schedule_port}"))
        text = re.sub(r"(localhost|127\.0\.0\.1):6566", f"127.0.0.1:{serve_port}", text)
        text = re.sub(r"(localhost|127\.0\.0\.1):9464", f"127.0.0.1:{schedule_port}", text)
        # Redis ports: as a whole number (7000, -p 7000, 127.0.0.1:7000@17000), never inside
        # another number.
        for old, new in cluster.items():
            text = re.sub(rf"(?<![\d.]){old + 10000}(?!\d)", str(new + 10000), text)
            text = re.sub(rf"(?<![\d.]){old}(?![\d])", str(new), text)
        return text

    env = {"PATH": f"{granary_bin.parent}:/usr/bin:/bin", "HOME": str(tmp_path),
           "GRANARY_SRC": str(ROOT), "LANG": "C.UTF-8"}
    shell = Shell(folder, env, out_dir)
    ran = []
    try:
        for section, language, block in all_blocks[1:]:
            if language == "sh":
                # Set-up without output to check (the Redis Cluster's nodes, its clean-up).
                status, printed = shell.run(replace(block))
                assert status == 0, f"{section}: the sh block failed:\n{block}\n{printed}"
                ran.append(block.split()[0])
                continue
            if not block.startswith("$ "):
                continue  # an example (a file's content), not a command
            assert language == "", f"{section}: a block in {language}: only $ commands are run"
            for command, shown in commands_of(block):
                ran.append(command.split()[0] if command.split()[0] != "granary"
                           else " ".join(command.split()[:2]))
                deadline = time.monotonic() + RETRY_SECONDS
                while True:
                    status, printed = shell.run(replace(command))
                    try:
                        assert status == 0, f"{section}: `{command}` exited {status}:\n{printed}"
                        check_output(command, shown, printed, replace, "docs/TUTORIAL.md")
                        break
                    except AssertionError:
                        if not READ_ONLY.match(command) or time.monotonic() > deadline:
                            raise
                        time.sleep(0.3)
    finally:
        shell.close()
        # The cluster's nodes run as daemons (--daemonize yes): stopped by their pid files when
        # the tutorial's clean-up did not run (a failure on the way).
        for pid_file in (tmp_path / "redis-cluster").glob("*/redis.pid"):
            try:
                os.kill(int(pid_file.read_text().strip()), 9)
            except (ValueError, ProcessLookupError):
                pass
    # Every section ran (a block left out by the parser would otherwise pass unnoticed).
    assert [r for r in ran if r.startswith("granary")] == [
        "granary datagen", "granary plan", "granary apply", "granary list", "granary describe",
        "granary get-historical-features", "granary get-historical-features",
        "granary get-historical-features", "granary materialize-incremental",
        "granary schedule", "granary serve", "granary apply", "granary status", "granary status",
        "granary apply", "granary materialize", "granary serve",
        "granary materialize-incremental"], ran
