"""Shared fixtures for the end-to-end tests of the granary command line."""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
# The shared test corpora (files written by other tools, real parking data): ../shared/testdata
# beside the checkout, or $GRANARY_TESTDATA_DIR. A fresh clone has none; the tests that need them
# skip, naming what is missing (require_testdata).
TESTDATA = pathlib.Path(os.environ.get("GRANARY_TESTDATA_DIR") or ROOT.parent / "shared" / "testdata")


def require_testdata(relative):
    """The path of `relative` under the shared corpora; skips the calling test when it is absent."""
    path = TESTDATA / relative
    if not path.exists():
        pytest.skip(f"needs the shared test corpora: {path} is missing (the corpora live in "
                    "../shared/testdata beside the checkout, see the README's \"Test data\"; set "
                    "GRANARY_TESTDATA_DIR to use another folder)")
    return path


@pytest.fixture(scope="session")
def granary_bin():
    path = pathlib.Path(os.environ.get("GRANARY_BIN", ROOT / "build" / "granary"))
    if not path.exists():
        pytest.fail(f"{path} does not exist: run 'make build' first")
    return path


class Cli:
    def __init__(self, binary, cwd):
        self.binary = binary
        self.cwd = cwd

    def __call__(self, *args, env=None, check=None, timeout=120):
        full_env = dict(os.environ)
        full_env.update(env or {})
        proc = subprocess.run([str(self.binary), *map(str, args)], cwd=self.cwd, env=full_env,
                              capture_output=True, text=True, timeout=timeout)
        if check is True:
            assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        if check is False:
            assert proc.returncode != 0, f"expected failure\n{proc.stdout}\n{proc.stderr}"
        return proc


@pytest.fixture
def cli(granary_bin, tmp_path):
    return Cli(granary_bin, tmp_path)
