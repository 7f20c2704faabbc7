"""Real redis-server processes for the command-line and server tests: 127.0.0.1, free ports,
stopped by whoever started them. Shared by the test modules (import from here, do not copy)."""
import socket
import subprocess
import time

import pytest


def free_port():
    """A port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_cli(port, *args):
    """Runs one redis-cli command against 127.0.0.1:port; its output, stripped."""
    return subprocess.run(["redis-cli", "-p", str(port), *map(str, args)], capture_output=True,
                          text=True, timeout=10).stdout.strip()


def start_redis(port, folder):
    """Starts a redis-server without persistence in `folder` and waits until it answers.

    In a process group of its own: when pytest's group becomes orphaned (the shell that started
    it exits first) the kernel sends SIGCONT to that group, which would resume a server a test
    froze with SIGSTOP (src/granary/testing/child_process.cc)."""
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, process_group=0)
    for _ in range(500):
        if redis_cli(port, "ping") == "PONG":
            return proc
        time.sleep(0.01)
    proc.kill()
    proc.wait(timeout=10)
    pytest.fail(f"redis-server on 127.0.0.1:{port} did not start")


def stop_redis(proc):
    """Stops a server started by start_redis, also one a test paused with SIGSTOP."""
    proc.send_signal(subprocess.signal.SIGCONT)
    proc.terminate()
    proc.wait(timeout=10)
