"""`serve http` on its engine (granian), over raw sockets: framing, limits, hostile clients, workers, stops.

Waits are for events (an answer, a close, a log line), each bounded by a deadline a
loaded 2-core machine always meets; no test asserts how fast something happened,
only that it did, and never before it may.
"""

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from http_servers import Responses, StderrLines, free_port, start_server, worker_pids

pytestmark = pytest.mark.slow  # starts server processes

IMAGE = json.dumps({"instances": [[[[0]] * 8] * 8]}).encode()
TIMEOUT = 1  # --request-timeout of the shared server


def _request(method: str, path: str, body: bytes = b"", extra: str = "", version: str = "1.1") -> bytes:
    return (
        f"{method} {path} HTTP/{version}\r\nhost: test\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


@pytest.fixture(scope="module")
def server(digits_export, no_tensorflow_env):
    process, port = start_server(
        digits_export,
        no_tensorflow_env,
        "--request-timeout",
        str(TIMEOUT),
        "--max-connections",
        "6",
        "--max-body-bytes",
        "5000",
    )
    yield port
    process.terminate()
    process.communicate(timeout=30)


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=20)


def _live(port: int) -> bool:
    with _connect(port) as sock:
        sock.sendall(_request("GET", "/v2/health/live"))
        return Responses(sock).next()[0] == 200


class Prober:
    """Asks /v2/health/live every 0.1 s in a thread; the slowest answer, and whether any failed."""

    def __init__(self, port: int):
        self.port, self.slowest, self.failures, self._stop = port, 0.0, [], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                ok = _live(self.port)
            except OSError as e:
                ok, error = False, e
            else:
                error = None
            self.slowest = max(self.slowest, time.monotonic() - started)
            if not ok:
                self.failures.append(error)
            self._stop.wait(0.1)

    def stop(self) -> "Prober":
        self._stop.set()
        self.thread.join(timeout=30)
        return self


def test_pipelined_requests_are_answered_in_order_on_one_connection(server):
    with _connect(server) as sock:
        sock.sendall(
            _request("GET", "/v2/health/live")
            + _request("POST", "/v1/models/digits:predict", IMAGE)
            + _request("GET", "/v2/models/nope")
            + _request("GET", "/v2/models/digits/ready")
        )
        responses = Responses(sock)
        answers = [responses.next() for _ in range(4)]
    assert [status for status, _, _ in answers] == [200, 200, 404, 200]
    assert json.loads(answers[0][2]) == {"live": True}
    assert len(json.loads(answers[1][2])["predictions"][0]) == 10
    assert json.loads(answers[3][2]) == {"name": "digits", "ready": True}
    assert all("date" in headers for _, headers, _ in answers)


def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(server):
    with _connect(server) as sock:
        sock.sendall(b"POST /v1/models/digits:predict HTTP/1.1\r\nhost: t\r\ncontent-length: 999999\r\n\r\n")
        responses = Responses(sock)
        status, headers, body = responses.next()
        assert (status, json.loads(body)) == (413, {"error": "request body of 999999 bytes exceeds the limit of 5000."})
        assert headers["connection"] == "close" and responses.closed()


def test_a_chunked_body_over_the_limit_is_refused(server):
    with _connect(server) as sock:
        sock.sendall(b"POST /v1/models/digits:predict HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n")
        for _ in range(3):
            sock.sendall(b"800\r\n" + b" " * 0x800 + b"\r\n")
        status, _, body = Responses(sock).next()
        assert (status, json.loads(body)) == (413, {"error": "request body exceeds the limit of 5000 bytes."})


def test_expect_100_continue_gets_its_interim_response(server):
    with _connect(server) as sock:
        head = _request("POST", "/v1/models/digits:predict", IMAGE, extra="expect: 100-continue\r\n")[: -len(IMAGE)]
        sock.sendall(head)
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n")
        sock.sendall(IMAGE)
        assert Responses(sock).next()[0] == 200


def test_a_stalled_body_gets_408_and_others_are_served_meanwhile(server):
    with _connect(server) as slow:
        slow.sendall(_request("POST", "/v1/models/digits:predict", IMAGE)[:-20])  # 20 bytes short, then nothing
        started = time.monotonic()
        assert _live(server)  # the server answers others while one client stalls
        status, headers, body = Responses(slow).next()
        waited = time.monotonic() - started
    assert (status, json.loads(body)) == (408, {"error": f"request not received within {TIMEOUT} s."})
    assert headers["connection"] == "close" and waited >= TIMEOUT  # never before its time


def test_malformed_http_is_400_and_the_connection_closes(server):
    with _connect(server) as sock:
        sock.sendall(b"GARBAGE\x00 / HTTP/1.1\r\n\r\n")
        responses = Responses(sock)
        assert responses.next()[0] == 400 and responses.closed()
    assert _live(server)


@pytest.mark.parametrize(
    "name, data, trickle",
    [
        ("a 1 MB URL", b"GET /" + b"a" * 1_000_000 + b" HTTP/1.1\r\nhost: a\r\n\r\n", False),
        ("10 MB of headers at once", b"GET / HTTP/1.1\r\nhost: a\r\nx-h: " + b"b" * 10_000_000 + b"\r\n\r\n", False),
        ("10 MB of headers trickled", b"GET / HTTP/1.1\r\nhost: a\r\n" + b"x-h: " + b"b" * 1000 + b"\r\n", True),
    ],
)
def test_oversized_urls_and_headers_get_431_and_the_server_stays_live(server, name, data, trickle):
    prober = Prober(server)
    with _connect(server) as sock:
        try:
            if trickle:
                for _ in range(10_000):  # ~10 MB, 1 KB a header line
                    sock.sendall(data[-1006:] if _ else data)
            else:
                sock.sendall(data)
        except OSError:
            pass  # the server answered and closed while we were still sending: as it should
        sock.settimeout(20)
        reply = sock.recv(200)
    prober.stop()
    assert reply.startswith(b"HTTP/1.1 431 ") or reply == b"", name
    assert prober.failures == [] and prober.slowest < 1.0, (name, prober.slowest)


def test_ten_thousand_pipelined_requests_never_read_keep_memory_bounded(server):
    (worker,) = worker_pids(server)
    before = _rss_mb(worker)
    sockets = []
    for _ in range(4):
        sock = _connect(server)
        sock.setblocking(False)
        data, sent, deadline = _request("GET", "/v2/health/live") * 10_000, 0, time.monotonic() + 10
        while sent < len(data) and time.monotonic() < deadline:
            try:
                sent += sock.send(data[sent:])
            except BlockingIOError:
                time.sleep(0.01)  # the server stopped reading: its writes are not being taken
        sockets.append(sock)
    assert _live(server)
    during = _rss_mb(worker)
    for sock in sockets:
        sock.close()
    assert during - before < 50, (before, during)  # not 2 GB, as before the engine


def _rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def test_http_1_0_with_and_without_keep_alive(server):
    with _connect(server) as sock:
        sock.sendall(_request("GET", "/v2/health/live", version="1.0"))
        responses = Responses(sock)
        assert responses.next()[0] == 200 and responses.closed()
    with _connect(server) as sock:
        sock.sendall(_request("GET", "/v2/health/live", extra="connection: keep-alive\r\n", version="1.0"))
        responses = Responses(sock)
        status, headers, _ = responses.next()
        assert status == 200 and headers["connection"] == "keep-alive"  # kept, and said so
        sock.sendall(_request("GET", "/v2/health/live", extra="connection: keep-alive\r\n", version="1.0"))
        assert responses.next()[0] == 200


def test_head_options_and_405_say_what_is_allowed(server):
    with _connect(server) as sock:
        sock.sendall(_request("HEAD", "/v2/models/digits"))
        sock.settimeout(5)
        head = sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 200 ") and head.endswith(b"\r\n\r\n")  # no body after a HEAD's head
    with _connect(server) as sock:
        sock.sendall(_request("OPTIONS", "/v2/models/digits/infer") + _request("GET", "/v2/models/digits/infer"))
        responses = Responses(sock)
        status, headers, _ = responses.next()
        assert (status, headers["allow"]) == (204, "POST, OPTIONS")
        status, headers, body = responses.next()
        assert (status, headers["allow"], json.loads(body)) == (405, "POST, OPTIONS", {"error": "Method Not Allowed"})


def test_ambiguous_body_lengths_are_refused_or_closed(server):
    both = (
        b"POST /v2/health/live HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"
    )
    with _connect(server) as sock:
        sock.sendall(both)
        responses = Responses(sock)
        status, headers, _ = responses.next()
        # Transfer-Encoding wins (RFC 9112), and the connection closes: nothing smuggled after it.
        assert status in (400, 405) and headers.get("connection") == "close" and responses.closed()
    twice = b"POST /v2/health/live HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!"
    with _connect(server) as sock:
        sock.sendall(twice)
        responses = Responses(sock)
        assert responses.next()[0] == 400 and responses.closed()
    assert _live(server)


def test_an_idle_connection_is_closed_after_the_request_timeout(server):
    with _connect(server) as sock:
        sock.sendall(_request("GET", "/v2/health/live"))
        responses = Responses(sock)
        assert responses.next()[0] == 200
        started = time.monotonic()
        assert responses.closed(timeout=20)
        assert time.monotonic() - started >= TIMEOUT * 0.9  # the engine's timer; never much before it


def test_past_max_connections_clients_wait_and_are_then_served(server):
    idle = [_connect(server) for _ in range(6)]  # the cap: 6 connections, none sending
    try:
        with _connect(server) as waiting:
            waiting.sendall(_request("GET", "/v2/health/live"))
            started = time.monotonic()
            status = Responses(waiting).next()[0]  # queued until an idle one times out
        assert status == 200 and time.monotonic() - started < 20
    finally:
        for sock in idle:
            sock.close()


def test_a_client_hanging_up_mid_body_is_one_info_line(digits_export, no_tensorflow_env):
    process, port = start_server(digits_export, no_tensorflow_env, "--drain-seconds", "0")
    log = StderrLines(process)
    with _connect(port) as sock:
        sock.sendall(_request("POST", "/v1/models/digits:predict", IMAGE)[:-10])
    line = log.wait_for("closed the connection")  # the server read on, and met the end of the connection
    assert "INFO" in line and _live(port)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    err = log.text()
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if "closed the connection" in line]) == 1, err


def test_sigterm_drains_then_finishes_the_request_in_flight_and_exits_0(digits_export, no_tensorflow_env):
    process, port = start_server(digits_export, no_tensorflow_env, "--drain-seconds", "2")
    with _connect(port) as kept, _connect(port) as flight:
        kept.sendall(_request("GET", "/v2/health/live"))
        kept_answers = Responses(kept)
        assert kept_answers.next()[1].get("connection") is None  # kept alive
        request = _request("POST", "/v1/models/digits:predict", IMAGE)
        flight.sendall(request[:-10])  # in flight: the body is not all there
        process.send_signal(signal.SIGTERM)
        # While draining: not ready, and the next answer on a kept-alive connection says Connection: close.
        deadline = time.monotonic() + 20
        while True:
            kept.sendall(_request("GET", "/v2/health/ready"))
            status, headers, _ = kept_answers.next()
            if status == 503 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert (status, headers["connection"]) == (503, "close") and kept_answers.closed()
        flight.sendall(request[-10:])
        status, headers, body = Responses(flight).next()
    assert status == 200 and len(json.loads(body)["predictions"][0]) == 10
    assert headers["connection"] == "close"
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    with pytest.raises(OSError):  # stopped: nothing listens
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def _wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_while_the_workers_still_load_the_model_exits_0(digits_export, no_tensorflow_env, workers):
    # Stop as soon as the port listens: the workers are still loading the model then.
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "serve", "http", str(digits_export), "--port", str(port), "--workers", workers],
        env=no_tensorflow_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                # Polling a free port can connect to itself (TCP simultaneous open): not the server.
                if probe.getsockname() != probe.getpeername():
                    break
        except OSError:
            pass
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err


def test_two_workers_share_the_port_a_dead_one_is_replaced_and_they_stop_together(digits_export, no_tensorflow_env):
    process, port = start_server(digits_export, no_tensorflow_env, "--workers", "2", "--drain-seconds", "0")
    try:
        first = worker_pids(port)
        assert len(first) == 2
        statuses = []
        for _ in range(20):
            with _connect(port) as sock:
                sock.sendall(_request("POST", "/v1/models/digits:predict", IMAGE))
                statuses.append(Responses(sock).next()[0])
        assert statuses == [200] * 20
        signal_killed = first[0]
        subprocess.run(["kill", "-9", str(signal_killed)], check=True)
        assert _wait_for(lambda: len(worker_pids(port)) == 2 and signal_killed not in worker_pids(port), 30)
        assert _live(port)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "Respawning worker" in err


@pytest.mark.parametrize("reuseport", [False, True], ids=["plain", "SO_REUSEPORT"])
def test_a_port_in_use_is_one_line_and_exit_2(digits_export, no_tensorflow_env, reuseport):
    """Whoever listens there, as a plain listener or with SO_REUSEPORT (as granian's workers bind, which would let
    a second server share the port): the port is theirs."""
    with socket.socket() as taken:
        if reuseport:
            taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "serve", "http", str(digits_export), "--port", str(port)],
            env=no_tensorflow_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert (
        last == f"python -m serve: error: cannot listen on 127.0.0.1:{port}: another process serves it; choose "
        "another --port."
    ), last
    assert "Traceback" not in result.stderr and "backtrace" not in result.stderr


def test_a_decompression_bomb_request_is_refused_and_the_server_stays_live(server):
    import base64

    from test_serve_limits import bomb_png

    body = json.dumps({"instances": [{"b64": base64.b64encode(bomb_png()).decode()}] * 5}).encode()
    with _connect(server) as sock:
        sock.sendall(_request("POST", "/v1/models/digits:predict", body))
        status, _, answer = Responses(sock).next()
    assert status == 400 and "exceeds the limit of 4,000,000" in json.loads(answer)["error"]
    assert _live(server)


def test_the_banner_names_the_page_and_each_models_own_urls(digits_export, no_tensorflow_env):
    process, port = start_server(digits_export, no_tensorflow_env, "--drain-seconds", "0")
    process.terminate()
    out, _ = process.communicate(timeout=30)
    base = f"http://127.0.0.1:{port}"
    assert out.splitlines()[:2] == [
        f"serving at {base}; the page: {base}/, the API: {base}/openapi.json",
        f"  digits (version 1): {base}/v1/models/digits:predict, {base}/v2/models/digits/infer, an image upload to "
        f"{base}/models/digits/classify",
    ]
    assert "NAME" not in out
