"""The HTTP/1.1 server itself: framing, limits, timeouts, workers and a graceful stop, over raw sockets."""

import json
import signal
import socket
import subprocess
import sys
import time

import pytest
from http_servers import Responses, free_port, start_server

pytestmark = pytest.mark.slow  # starts server processes

IMAGE = json.dumps({"instances": [[[[0]] * 8] * 8]}).encode()


def _request(method: str, path: str, body: bytes = b"", extra: str = "") -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


@pytest.fixture(scope="module")
def server(digits_export, no_tensorflow_env):
    process, port = start_server(
        digits_export,
        no_tensorflow_env,
        "--request-timeout",
        "1",
        "--keep-alive",
        "2",
        "--max-connections",
        "6",
        "--max-body-bytes",
        "5000",
    )
    yield port
    process.terminate()
    process.communicate(timeout=20)


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def _live(port: int) -> bool:
    with _connect(port) as sock:
        sock.sendall(_request("GET", "/v2/health/live"))
        return Responses(sock).next()[0] == 200


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
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")


def test_a_stalled_body_gets_408_and_others_are_served_meanwhile(server):
    with _connect(server) as slow:
        slow.sendall(_request("POST", "/v1/models/digits:predict", IMAGE)[:-20])  # 20 bytes short, then nothing
        started = time.monotonic()
        assert _live(server)  # the server answers others while one client stalls
        status, _, body = Responses(slow).next()
        waited = time.monotonic() - started
    assert (status, json.loads(body)) == (408, {"error": "request not received within 1 s."})
    assert 0.9 <= waited <= 3


def test_malformed_http_is_400_and_the_connection_closes(server):
    with _connect(server) as sock:
        sock.sendall(b"GARBAGE\x00 / HTTP/1.1\r\n\r\n")
        responses = Responses(sock)
        status, _, body = responses.next()
        assert (status, json.loads(body)) == (400, {"error": "malformed HTTP request."}) and responses.closed()
    assert _live(server)


def test_connections_over_the_limit_get_503(server):
    idle = [_connect(server) for _ in range(6)]
    try:
        time.sleep(0.2)
        with _connect(server) as extra:
            status, _, body = Responses(extra).next()
        assert (status, json.loads(body)) == (503, {"error": "too many connections; retry later."})
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.2)
    assert _live(server)


def test_an_idle_connection_is_closed_after_keep_alive(server):
    with _connect(server) as sock:
        sock.sendall(_request("GET", "/v2/health/live"))
        responses = Responses(sock)
        assert responses.next()[0] == 200
        started = time.monotonic()
        assert responses.closed(timeout=5)
        assert 1.5 <= time.monotonic() - started <= 4


def test_sigterm_finishes_the_request_in_flight_then_exits_0(digits_export, no_tensorflow_env):
    process, port = start_server(digits_export, no_tensorflow_env)
    with _connect(port) as sock:
        request = _request("POST", "/v1/models/digits:predict", IMAGE)
        sock.sendall(request[:-10])  # in flight: the body is not all there
        time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        with pytest.raises(OSError):  # no new connections once stopping
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        sock.sendall(request[-10:])
        status, headers, body = Responses(sock).next()
    assert status == 200 and len(json.loads(body)["predictions"][0]) == 10
    assert headers["connection"] == "close"
    _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_while_the_workers_still_load_the_model_exits_0(digits_export, no_tensorflow_env, workers):
    # The socket listens before the model is loaded: stop as soon as it does, mid-load.
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
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err


def test_two_workers_share_the_port_and_stop_together(digits_export, no_tensorflow_env):
    process, port = start_server(digits_export, no_tensorflow_env, "--workers", "2")
    try:
        statuses = []
        for _ in range(20):
            with _connect(port) as sock:
                sock.sendall(_request("POST", "/v1/models/digits:predict", IMAGE))
                statuses.append(Responses(sock).next()[0])
        assert statuses == [200] * 20
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err


def test_a_client_hanging_up_mid_body_is_one_info_line(digits_export, no_tensorflow_env):
    process, port = start_server(digits_export, no_tensorflow_env)
    with _connect(port) as sock:
        sock.sendall(_request("POST", "/v1/models/digits:predict", IMAGE)[:-10])
        time.sleep(0.2)
    time.sleep(0.3)
    assert _live(port)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=20)
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "closed the connection" in line]
    assert len(lines) == 1 and "INFO" in lines[0], err


def test_a_port_in_use_is_one_line_and_exit_2(digits_export, no_tensorflow_env):
    with socket.socket() as taken:
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
    assert last.startswith(f"python -m serve: error: cannot listen on 127.0.0.1:{port} ("), last


def test_a_decompression_bomb_request_is_refused_at_once_and_the_server_stays_live(server):
    import base64

    from test_serve_limits import bomb_png

    body = json.dumps({"instances": [{"b64": base64.b64encode(bomb_png()).decode()}] * 5}).encode()
    started = time.monotonic()
    with _connect(server) as sock:
        sock.sendall(_request("POST", "/v1/models/digits:predict", body))
        status, _, answer = Responses(sock).next()
    assert status == 400 and "exceeds the limit of 4,000,000" in json.loads(answer)["error"]
    assert time.monotonic() - started < 1
    assert _live(server)
