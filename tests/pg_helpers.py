"""A real PostgreSQL server for the tests (Debian's postgresql, installed by scripts/setup):
initdb in a temporary folder, `postgres` on a free port of 127.0.0.1, trust authentication for the
superuser "granary", stopped by pid. PostgreSQL refuses to run as root: as root (CI), initdb and
postgres run as the "postgres" system user the package creates, with the folder given to it."""
import glob
import os
import pathlib
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from redis_helpers import free_port


def find_bindir():
    env = os.environ.get("GRANARY_PG_BINDIR")
    if env:
        return pathlib.Path(env)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                   key=lambda p: int(pathlib.Path(p).parent.parent.name))
    return pathlib.Path(found[-1]).parent if found else None


class PostgresServer:
    def __init__(self, folder):
        self.bindir = find_bindir()
        if self.bindir is None:
            pytest.skip("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/postgres): run "
                        "scripts/setup, which installs Debian's postgresql, or set GRANARY_PG_BINDIR")
        self.folder = pathlib.Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.data = self.folder / "data"
        self.port = free_port()
        self.proc = None
        self.user = None
        if os.geteuid() == 0:
            self.user = pwd.getpwnam("postgres")
            os.chown(self.folder, self.user.pw_uid, self.user.pw_gid)
        self._run([self.bindir / "initdb", "-D", self.data, "-U", "granary", "--auth=trust",
                   "-E", "UTF8", "--no-locale", "--no-sync"])
        self.start()

    def _demote(self):
        if self.user is not None:
            os.setgroups([])
            os.setgid(self.user.pw_gid)
            os.setuid(self.user.pw_uid)

    def _run(self, args):
        proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120,
                              preexec_fn=self._demote)
        assert proc.returncode == 0, f"{args[0]} failed:\n{proc.stdout}\n{proc.stderr}"

    def start(self):
        log = open(self.folder / "postgres.log", "a")
        self.proc = subprocess.Popen(
            [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.folder}",
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "max_connections=200"],
            stdout=log, stderr=log, preexec_fn=self._demote)
        log.close()
        deadline = time.time() + 30
        while True:
            ready = subprocess.run([str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p",
                                    str(self.port), "-U", "granary", "-d", "postgres"],
                                   capture_output=True)
            if ready.returncode == 0:
                return
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                pytest.fail("postgres did not start:\n" + (self.folder / "postgres.log").read_text())
            time.sleep(0.05)

    def stop(self):
        """Fast shutdown (SIGINT), waited for; SIGKILL after 20 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def url(self, schema):
        return f"postgresql://granary@127.0.0.1:{self.port}/postgres?schema={schema}"

    def psql(self, sql):
        """Runs SQL as the superuser; its output (unaligned, tuples only)."""
        proc = subprocess.run([str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port),
                               "-U", "granary", "-d", "postgres", "-At", "-v", "ON_ERROR_STOP=1",
                               "-c", sql], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    def session(self):
        """A psql process reading SQL from stdin: a client whose session the test holds open."""
        return subprocess.Popen(
            [str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "granary",
             "-d", "postgres", "-At", "-q"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def postgres():
    # Not under pytest's tmp_path: as root that is a 0700 folder the postgres user cannot enter.
    folder = tempfile.mkdtemp(prefix="granary-pg-")
    try:
        server = PostgresServer(folder)
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
