"""The README's "Five-minute tour" runs as written and prints what it shows.

Its first ```sh block makes the copy of examples/parking (in a temporary folder instead of
/tmp/parking; `make build` is this build). Each later block holds `$ command` lines (a line
ending in a backslash goes on) with their output. The commands run in order in the copy, with
the build's granary first in PATH; `granary serve &` runs the server on a free port of 127.0.0.1,
which the curl commands then ask instead of 6566. Each shown output line must appear, in order,
in what the command printed. Before comparing, both sides lose what the clock decides: log
timestamps at the start of a line, instants with fractions of a second (when a run finished),
durations, rates, ages and peak memory. `...` in a shown line stands for any text; a line of `...` for lines
left out. A block that does not start with a `$ ` line is an example, not run.
"""
import re
import shutil
import socket
import subprocess
import time

import pytest

from conftest import ROOT
from serve_helpers import TEST_QUEUE_DELAY

# What the clock (and the threads' timing) decides, each replaced by a token on both sides.
VOLATILE = [
    (re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z "), ""),  # a log line's timestamp
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z"), "<INSTANT>"),
    (re.compile(r"\(((\d+d)?(\d+h)?(\d+m)?(\d+(\.\d+)?s)?|\d+ms) (ago|old)\)"), "(<AGE>)"),
    (re.compile(r"\(\d+(\.\d+)?(ms|s)\)"), "(<DURATION>)"),
    (re.compile(r"in \d+(\.\d+)?(ms|s)"), "in <DURATION>"),
    (re.compile(r"\(\d+(\.\d+)?[KM]? (rows|entities)/s\)"), "(<RATE>)"),
    (re.compile(r"peak Arrow memory \d+ MiB"), "peak Arrow memory <MEMORY>"),  # threads' timing
]


def normalize(line: str) -> str:
    for pattern, token in VOLATILE:
        line = pattern.sub(token, line)
    return line.rstrip()


def tour_blocks():
    text = (ROOT / "README.md").read_text()
    start = text.index("\n## Five-minute tour\n")
    section = text[start:text.index("\n## ", start + 1)]
    return re.findall(r"```(\w*)\n(.*?)```", section, flags=re.S)


def commands_of(block: str):
    """(command, [shown output lines]) for each `$ ` line of a block; a heredoc's body belongs
    to its command (the tutorial writes files this way)."""
    out = []
    lines = block.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.startswith("$ "):
            if line.strip():
                out[-1][1].append(line)
            continue
        command = line[2:]
        while command.endswith("\\"):
            command = command[:-1].rstrip() + " " + lines[i].strip()
            i += 1
        heredoc = re.search(r"<<'?(\w+)'?", command)
        if heredoc:
            body = []
            while lines[i] != heredoc.group(1):
                body.append(lines[i])
                i += 1
            i += 1
            command = "\n".join([command, *body, heredoc.group(1)])
        out.append((command, []))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_output(command: str, shown, printed: str, replace, document: str = "the README") -> None:
    got = [normalize(line) for line in printed.splitlines() if line.strip()]
    at = 0
    for line in shown:
        if line.strip() == "...":
            continue
        parts = [re.escape(p) for p in normalize(replace(line)).split("...")]
        want = re.compile(".*".join(parts) + r"\Z")
        while at < len(got) and not want.match(got[at]):
            at += 1
        assert at < len(got), (f"`{command}`: {document} shows\n  {line}\nwhich is not in what "
                               f"it printed (in order):\n" + "\n".join(got))
        at += 1


def test_the_five_minute_tour_prints_what_the_readme_shows(granary_bin, tmp_path):
    if shutil.which("curl") is None:
        pytest.fail("curl is missing: scripts/setup installs it")
    blocks = tour_blocks()
    assert blocks[0][0] == "sh", blocks[0]
    setup = blocks[0][1].strip().splitlines()
    assert setup == ["make build && export PATH=$PWD/build:$PATH",
                     "cp -r examples/parking /tmp/parking && cd /tmp/parking"], setup
    folder = tmp_path / "parking"
    subprocess.run(["cp", "-r", str(ROOT / "examples" / "parking"), str(folder)], check=True)

    port = free_port()
    env_path = f"{granary_bin.parent}:/usr/bin:/bin"

    def replace(text: str) -> str:
        return (text.replace("/tmp/parking", str(folder))
                .replace("localhost:6566", f"127.0.0.1:{port}")
                .replace("127.0.0.1:6566", f"127.0.0.1:{port}"))

    server = None
    ran = []
    try:
        for language, block in blocks[1:]:
            if not block.startswith("$ "):
                continue  # an example, not a command (the definitions' errors)
            assert language == "", f"a tour block in {language}: only $ commands are run"
            for command, shown in commands_of(block):
                ran.append(command)
                if command == "granary serve &":
                    log = open(folder / "serve.log", "w")
                    # The README's server, without the queue bound a loaded machine trips
                    # (serve_helpers.TEST_QUEUE_DELAY).
                    server = subprocess.Popen([str(granary_bin), "serve", "--port", str(port),
                                               *TEST_QUEUE_DELAY],
                                              cwd=folder, stdout=log, stderr=subprocess.STDOUT)
                    deadline = time.monotonic() + 30
                    while "listening on" not in (folder / "serve.log").read_text():
                        assert server.poll() is None, (folder / "serve.log").read_text()
                        assert time.monotonic() < deadline, "the server did not start in 30 s"
                        time.sleep(0.1)
                    printed = (folder / "serve.log").read_text()
                else:
                    proc = subprocess.run(["bash", "-c", replace(command)], cwd=folder,
                                          env={"PATH": env_path, "HOME": str(tmp_path)},
                                          capture_output=True, text=True, timeout=300)
                    assert proc.returncode == 0, f"`{command}`\n{proc.stdout}\n{proc.stderr}"
                    printed = proc.stdout + proc.stderr
                check_output(command, shown, printed, replace)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    assert [c.split()[1] for c in ran] == [
        "datagen", "apply", "get-historical-features", "materialize-incremental", "serve",
        "-s", "status"], ran
