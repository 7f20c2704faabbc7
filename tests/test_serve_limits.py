"""granary serve under abuse, end to end over real sockets on 127.0.0.1: a client dripping its
headers (cut at --read-timeout, not --idle-timeout), the idle keep-alive timeout, admission
control (--max-connections: 503 with Retry-After), running out of file descriptors (prompt
refusals, no spinning accept loop, the server serving again once they are back), the soft
descriptor limit raised at start, one server per port, the bearer scheme in any case and
--metrics-public.
"""
import resource
import socket
import time

import pytest

from serve_helpers import make_repo, serve  # noqa: F401

REQUEST = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def read_response(sock):
    """The status code and the whole response (head and body) of one answer on `sock`."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split()[1]), head.decode() + "\r\n\r\n" + body.decode()


def closed_by_server(sock):
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def cpu_seconds(pid):
    """User plus system CPU time of a process, from /proc/<pid>/stat."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / __import__("os").sysconf("SC_CLK_TCK")


def test_a_client_dripping_its_headers_is_cut_at_the_read_timeout(cli, tmp_path, serve):
    server = serve(make_repo(cli, tmp_path),
                   args=("--read-timeout", "300ms", "--idle-timeout", "60s"))
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nX-Drip: ")
        # A byte every 100 ms for up to 30 s (half the idle timeout): the server must close the
        # connection long before, which a send then reports.
        cut = False
        for _ in range(300):
            time.sleep(0.1)
            try:
                s.sendall(b"x")
            except (BrokenPipeError, ConnectionResetError):
                cut = True
                break
        assert cut, "the server kept a connection whose headers never ended"
    assert server.request("GET", "/health")[0] == 200


def test_keep_alive_idles_up_to_the_idle_timeout_not_the_read_timeout(cli, tmp_path, serve):
    repo = make_repo(cli, tmp_path)
    patient = serve(repo, args=("--read-timeout", "100ms", "--idle-timeout", "60s"))
    with socket.create_connection(("127.0.0.1", patient.port), timeout=30) as s:
        s.sendall(REQUEST)
        assert read_response(s)[0] == 200
        time.sleep(0.5)  # five read timeouts without a byte: still open
        s.sendall(REQUEST)
        assert read_response(s)[0] == 200
    patient.stop()
    strict = serve(repo, args=("--idle-timeout", "200ms"))
    with socket.create_connection(("127.0.0.1", strict.port), timeout=30) as s:
        s.sendall(REQUEST)
        assert read_response(s)[0] == 200
        assert closed_by_server(s)  # blocks until the idle timeout closes it


def test_beyond_max_connections_a_new_client_gets_503_with_retry_after(cli, tmp_path, serve):
    server = serve(make_repo(cli, tmp_path),
                   args=("--threads", "1", "--max-connections", "2"))
    held = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(2)]
    try:
        for s in held:
            s.sendall(REQUEST)
            assert read_response(s)[0] == 200
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(b"POST /get-online-features HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                      b"\r\n{}")
            status, text = read_response(s)
            assert status == 503, text
            assert "Retry-After: 1\r\n" in text
            assert "the server is overloaded: 2 connections open on this worker " \
                   "(--max-connections 2); retry after 1 s" in text
            assert closed_by_server(s)
        for s in held:  # the admitted keep being served
            s.sendall(REQUEST)
            assert read_response(s)[0] == 200
    finally:
        for s in held:
            s.close()
    # Once they are closed, a new client is served (the server sees the close a moment later).
    deadline = time.time() + 10
    while server.request("GET", "/health")[0] != 200:
        assert time.time() < deadline
        time.sleep(0.02)
    metrics = server.request("GET", "/metrics")[1]
    assert 'granary_http_shed_requests_total{limit="connections"} 1' in metrics, metrics
    assert "limits: 2 connections, 1024 requests in flight, no bound waiting to be read" \
        in server.log()  # serve_helpers.TEST_QUEUE_DELAY


def test_the_default_limits_are_printed_at_start(cli, tmp_path, serve):
    # Started as a user would: no flag (the other tests here run without the queue bound).
    server = serve(make_repo(cli, tmp_path), test_queue_delay=False)
    assert "limits: 4096 connections, 1024 requests in flight, 25ms waiting to be read " \
           "(beyond them: 503 with Retry-After)" in server.log(), server.log()


def test_out_of_file_descriptors_refuses_promptly_without_spinning(cli, tmp_path, serve):
    limit = 64

    def low_fd_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    server = serve(make_repo(cli, tmp_path),
                   args=("--max-connections", "0"), preexec_fn=low_fd_limit)
    assert f"limits: no bound connections, 1024 requests in flight, no bound waiting to be " \
           f"read (beyond them: 503 with Retry-After); {limit} file descriptors" in server.log()
    held = []
    try:
        # Idle connections (no request) until the server is out of descriptors: from then on a
        # new connection is accepted with the reserve descriptor, answered 503 and closed at
        # once, instead of waiting in the accept queue.
        for _ in range(3 * limit):
            held.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
        refused = 0
        for s in held[-limit:]:  # the last ones found no descriptor
            s.settimeout(3)
            try:
                status, text = read_response(s)
            except socket.timeout:
                # Accepted normally with a descriptor the server freed meanwhile (the store
                # closing a file): then it is an ordinary idle connection, served on request.
                s.settimeout(10)
                s.sendall(REQUEST)
                assert read_response(s)[0] == 200
                continue
            except ConnectionError as e:
                pytest.fail(f"a client beyond the descriptor limit was not answered: {e}")
            assert status == 503, text
            assert "Retry-After: 1" in text and "out of file descriptors" in text
            assert closed_by_server(s)
            refused += 1
        assert refused >= limit // 2, f"only {refused} of {limit} clients were refused"
        # Nothing waits now: the accept loop must sleep, not spin (it burnt a whole core
        # before). The server's CPU time from /proc over two seconds.
        before = cpu_seconds(server.proc.pid)
        time.sleep(2)
        assert cpu_seconds(server.proc.pid) - before < 0.5
        # A client that sends its request at once is answered too (a 503, or a reset when the
        # refusal closed the socket before the request arrived), never left waiting. A 200 is
        # fine too: a descriptor the server freed meanwhile (the store closing a file, a registry
        # read ending) serves the client normally.
        for _ in range(10):
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
                try:
                    s.sendall(REQUEST)
                    assert read_response(s)[0] in (200, 503)
                except (ConnectionResetError, BrokenPipeError):
                    pass
                except socket.timeout:
                    pytest.fail("a client beyond the descriptor limit was left waiting")
    finally:
        for s in held:
            s.close()
    deadline = time.time() + 10
    while True:  # the descriptors come back as the server sees the closes
        try:
            if server.request("GET", "/health")[0] == 200:
                break
        except OSError:
            pass
        assert time.time() < deadline, server.log()
        time.sleep(0.05)
    metrics = server.request("GET", "/metrics")[1]
    line = next(l for l in metrics.splitlines()
                if l.startswith('granary_http_refused_connections_total{reason="fd_limit"}'))
    assert int(float(line.split()[-1])) >= limit, line
    log = server.log()
    # Once per 10 s, not once per refusal.
    assert 1 <= log.count("out of file descriptors (Too many open files; the limit is 64)") <= 2
    assert "raise the limit (ulimit -n" in log


def test_the_soft_descriptor_limit_is_raised_to_the_hard_one(cli, tmp_path, serve):
    def soft_below_hard():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 4096))

    server = serve(make_repo(cli, tmp_path), preexec_fn=soft_below_hard)
    limits = open(f"/proc/{server.proc.pid}/limits").read()
    [line] = [l for l in limits.splitlines() if l.startswith("Max open files")]
    assert line.split()[3:5] == ["4096", "4096"], line
    assert "; 4096 file descriptors" in server.log()


def test_a_second_server_on_the_same_port_fails_naming_the_port(cli, tmp_path, serve,
                                                                granary_bin):
    repo = make_repo(cli, tmp_path)
    first = serve(repo, args=("--threads", "2"))
    other = tmp_path / "other"
    other.mkdir()
    second = make_repo(cli, other)
    out = cli("-C", second, "serve", "--port", first.port, "--threads", "2", check=False)
    assert out.returncode == 1
    assert f"cannot listen on 127.0.0.1:{first.port}: Address already in use; another process " \
           f"(perhaps another granary serve) listens on port {first.port}" in out.stderr, \
        out.stderr
    # The first one still has every connection.
    for _ in range(20):
        status, body = first.request("GET", "/health")
        assert status == 200 and body["registry"]["project"] == "shop"


def test_the_bearer_scheme_is_case_insensitive_and_metrics_may_be_public(cli, tmp_path, serve):
    repo = make_repo(cli, tmp_path)
    request = {"features": ["risk:rate"], "entities": {"customer_id": [1]}}
    server = serve(repo, env={"GRANARY_SERVE_TOKEN": "t0ps3cret"})
    for header in ("bearer t0ps3cret", "BEARER t0ps3cret", "Bearer  t0ps3cret"):
        assert server.post("/get-online-features", request,
                           headers={"Authorization": header})[0] == 200, header
    assert server.post("/get-online-features", request,
                       headers={"Authorization": "bearer T0PS3CRET"})[0] == 401
    assert server.request("GET", "/metrics")[0] == 401  # the token guards /metrics by default
    assert server.request("GET", "/metrics",
                          headers={"Authorization": "Bearer t0ps3cret"})[0] == 200
    server.stop()
    public = serve(repo, env={"GRANARY_SERVE_TOKEN": "t0ps3cret"}, args=("--metrics-public",))
    status, text = public.request("GET", "/metrics")
    assert status == 200 and "granary_http_requests_total" in text
    assert public.post("/get-online-features", request)[0] == 401
    assert "bearer token required (not on /metrics: --metrics-public)" in public.log()
