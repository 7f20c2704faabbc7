"""The built Python module beside the standard library's OpenSSL users: `import granary` followed by
`import hashlib` and `import ssl` (and the other order) must work and hash correctly.

Why: the native module links Arrow and Parquet from the pyarrow wheel, and libparquet carries its
own OpenSSL symbols. A change of the module's link order once made the interpreter's libcrypto
bind to those, and `import hashlib` after `import granary` crashed the process (c43febe). Each
case runs in a fresh interpreter, so a crash fails the test instead of killing pytest.
"""
import os
import subprocess
import sys

import pytest

from sdk_fixtures import _BUILD_PYTHON

# Exercises libcrypto (digests against known vectors, HMAC, PBKDF2), libssl (a TLS client with the
# system's CA certificates writes its ClientHello, key share included, into a memory buffer),
# Parquet through pyarrow (the library that carries the other OpenSSL), and the native module
# (the C++ core opening a repository that is not there).
USE_ALL = """
import hashlib, hmac, ssl, sys
import granary
import pyarrow as pa, pyarrow.parquet as pq
assert hashlib.md5(b"").hexdigest() == "d41d8cd98f00b204e9800998ecf8427e"
assert hashlib.sha256(b"abc").hexdigest() == (
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
assert hashlib.sha3_256(b"").hexdigest() == (
    "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a")
assert hmac.new(b"key", b"The quick brown fox jumps over the lazy dog", "sha256").hexdigest() == (
    "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8")
assert hashlib.pbkdf2_hmac("sha256", b"password", b"salt", 1).hex() == (
    "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b")
context = ssl.create_default_context()
assert context.verify_mode == ssl.CERT_REQUIRED
incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
try:
    tls.do_handshake()
    raise AssertionError("a handshake with no server cannot finish")
except ssl.SSLWantReadError:
    pass
hello = outgoing.read()
assert hello[0] == 0x16 and len(hello) > 100, hello[:8]  # a TLS handshake record
# A file on disk, not io.BytesIO: pyarrow reads a Python file object on its own threads, which
# may still release it after the interpreter has shut down and abort the process at exit
# (apache/arrow#33975 and #34314, open; pyarrow 26.0.1 does it in most runs).
pq.write_table(pa.table({"x": [1, 2, 3]}), sys.argv[2])
assert pq.read_table(sys.argv[2]).column("x").to_pylist() == [1, 2, 3]
try:
    granary.FeatureStore(sys.argv[1])
    raise AssertionError("a missing repository opened")
except granary.GranaryError as e:
    assert sys.argv[1] in str(e), e
print("ok")
"""


def run_python(source, *args):
    env = dict(os.environ)
    if (_BUILD_PYTHON / "granary").is_dir():
        env["PYTHONPATH"] = str(_BUILD_PYTHON) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", source, *map(str, args)], capture_output=True,
                          text=True, timeout=120, env=env)


@pytest.mark.parametrize("first", ["granary", "hashlib", "ssl"])
def test_openssl_users_work_beside_the_native_module(first, tmp_path):
    proc = run_python(f"import {first}\n" + USE_ALL, tmp_path / "no-repository",
                      tmp_path / "x.parquet")
    assert proc.returncode == 0, (
        f"importing {first} first, then the others: exit {proc.returncode} "
        f"(a negative exit is the signal that killed it)\n{proc.stdout}\n{proc.stderr}")
    assert proc.stdout.strip() == "ok"
