"""What an outside probe found a client, a folder or a kill could do to `serve http`, each held to its fix.

Metrics that a client could grow without bound; log lines a path could forge; bodies
cut short answered as if whole; an 8 MB JSON body that stalled health; a killed main
process whose workers served on; two servers on one port; CORS answers that mixed
origins. Every test here failed on the server before the fix (issue 24).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest
from http_servers import Responses, StderrLines, free_port, start_server, worker_pids

pytestmark = pytest.mark.slow  # server processes

IMAGE = json.dumps({"instances": [[[[0]] * 8] * 8]}).encode()


def _request(method: str, path: str, body: bytes = b"", extra: str = "") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n"
    return (head + (f"content-length: {len(body)}\r\n" if body else "") + extra + "\r\n").encode() + body


def _stop(process) -> str:
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    return err


@pytest.fixture(scope="module")
def logged(digits_export, no_tensorflow_env):
    """A server with the access log on, its stderr read as it comes."""
    process, port = start_server(digits_export, no_tensorflow_env, "--access-log", "--drain-seconds", "0")
    lines = StderrLines(process)
    yield port, lines
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)


def _answer(port: int, raw: bytes, half_close: bool = False) -> tuple[int, dict, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(raw)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        return Responses(sock).next()


CHUNKED = "transfer-encoding: chunked\r\n"


@pytest.mark.parametrize(
    "raw, half_close, error",
    [
        (  # a valid chunk, then the connection half-closed without the last chunk: was a 200
            _request("POST", "/v1/models/digits:predict", extra=CHUNKED) + f"{len(IMAGE):x}\r\n".encode() + IMAGE,
            True,
            "request body is incomplete: its chunked encoding ended before the last chunk, or was malformed "
            "(or carried trailers, which this server does not take).",
        ),
        (  # a valid chunk, then a chunk size that does not parse: was a 200
            _request("POST", "/v1/models/digits:predict", extra=CHUNKED)
            + f"{len(IMAGE):x}\r\n".encode()
            + IMAGE
            + b"\r\nzz\r\n",
            False,
            "request body is incomplete: its chunked encoding ended before the last chunk, or was malformed "
            "(or carried trailers, which this server does not take).",
        ),
        (  # a Content-Length body cut short, then half-closed: was the engine's empty 500, uncounted
            _request("POST", "/v1/models/digits:predict", IMAGE)[:-10],
            True,
            "request body ended before its declared length; send it whole.",
        ),
    ],
    ids=["chunked, half-closed", "chunked, garbage size", "content-length, half-closed"],
)
def test_a_body_cut_short_is_never_processed_and_gets_a_json_400(logged, raw, half_close, error):
    port, lines = logged
    status, headers, body = _answer(port, raw, half_close)
    assert (status, json.loads(body)) == (400, {"error": error})
    assert headers["content-type"] == "application/json"


def test_a_content_length_past_63_bits_is_a_json_413_and_counted(logged):
    # A count past 63 bits means nothing here, and Python refuses to convert more than 4,300 digits (a bare 500,
    # uncounted, before). The engine itself answers an empty 400 to one past 64 bits (hyper reads it as a u64).
    port, _ = logged
    raw = _request("POST", "/v1/models/digits:predict", extra="content-length: " + "9" * 19 + "\r\n")
    status, headers, body = _answer(port, raw)
    assert (status, json.loads(body)) == (
        413,
        {"error": f"request body of more than {2**63 - 1:,} bytes exceeds the limit of {8 * 2**20}."},
    )
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert re.search(r'kerasreg_requests_total\{[^}]*protocol="v1"[^}]*status="413"[^}]*\} 1\.0', metrics), metrics


def test_the_complete_chunked_body_is_still_served(logged):
    port, _ = logged
    raw = _request("POST", "/v1/models/digits:predict", extra=CHUNKED) + f"{len(IMAGE):x}\r\n".encode() + IMAGE
    status, _, body = _answer(port, raw + b"\r\n0\r\n\r\n")
    assert status == 200 and len(json.loads(body)["predictions"][0]) == 10


@pytest.mark.parametrize(
    "target, shown",
    [
        ("/x%0A2026-12-02%2012:00:00,000%20INFO%20serve.access:%20forged", "/x\\n2026-12-02"),
        ("/x%0D%1B[31mred%00", "/x\\r\\x1b[31mred\\x00"),
        ("/v2/models/digits/versions/1?q=%0Aforged", "?q=%0Aforged"),  # the query is logged as sent, encoded
    ],
)
def test_a_path_cannot_forge_or_colour_a_log_line(logged, target, shown):
    port, lines = logged
    marker = f"/probe-{time.monotonic_ns()}"
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(_request("GET", target) + _request("GET", marker))
        answers = Responses(sock)
        answers.next()
        answers.next()
    lines.wait_for(marker)  # written after the hostile one
    hostile = [line for line in lines.lines if shown in line]
    assert len(hostile) == 1 and "serve.access" in hostile[0], lines.lines[-5:]
    assert not [line for line in lines.lines if line.startswith(("2026-12-02 12:00:00", "forged"))]
    assert all("\x1b" not in line and "\r" not in line and "\x00" not in line for line in lines.lines)


def test_hostile_versions_in_urls_grow_no_metric_series(digits_export, no_tensorflow_env):
    process, port = start_server(digits_export, no_tensorflow_env, "--drain-seconds", "0")
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base) as client:
            client.get("/v2/models/digits/versions/1")
            before = client.get("/metrics").text
            zeros = ["0", "\u0660", "\u06f0", "\u0966", "\uff10"]  # zero digits of five scripts
            for i in range(300):
                version = zeros[i % len(zeros)] * (1 + i % 40) + "1"
                reply = client.get(f"/v2/models/digits/versions/{version}")
                assert reply.status_code == 404
            after = client.get("/metrics").text
    finally:
        _stop(process)
    series = {line.split(" ")[0] for line in after.splitlines() if line.startswith("kerasreg_requests_total{")}
    assert all(re.search(r'version="(1|)"', name) for name in series), series  # only a served version, or none
    assert len(series) <= 4 and len(after) < len(before) + 2000, len(after) - len(before)


def test_a_flood_of_8_mb_json_bodies_leaves_health_answering_within_a_quarter_second(digits_export, no_tensorflow_env):
    process, port = start_server(digits_export, no_tensorflow_env, "--max-body-bytes", str(9 * 2**20))
    # 1.5 million zeros, as the probe sent: a shape that does not hold them, so the server must parse to refuse.
    body = json.dumps({"inputs": [{"name": "images", "shape": [1, 8, 8, 1], "datatype": "UINT8",
                                   "data": [0] * 2_700_000}]}).encode()  # fmt: skip
    assert 7.5 * 2**20 < len(body) < 9 * 2**20
    stop, statuses, probes = threading.Event(), [], []

    def flood():
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                statuses.append(
                    client.post(f"http://127.0.0.1:{port}/v2/models/digits/infer", content=body).status_code
                )

    senders = [threading.Thread(target=flood, daemon=True) for _ in range(4)]
    try:
        for sender in senders:
            sender.start()
        with httpx.Client(timeout=30) as client:
            while len(statuses) < 40 or len(probes) < 20:
                started = time.perf_counter()
                assert client.get(f"http://127.0.0.1:{port}/v2/health/live").status_code == 200
                probes.append(time.perf_counter() - started)
                time.sleep(0.02)
    finally:
        stop.set()
        for sender in senders:
            sender.join(timeout=60)
        _stop(process)
    assert set(statuses) == {400}
    # Nine probes in ten within the bound: one noisy moment of two shared cores does not flip it; a parse on the
    # event loop (before the fix) held every probe behind it for a second or more.
    assert sorted(probes)[int(0.9 * len(probes))] < 0.25, sorted(probes)[-5:]


def _serving_processes(port: int) -> list[int]:
    """Live processes of a `serve http` on `port` (its main process and its workers, wherever they were left)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0") if entry.name.isdigit() else []
        except OSError:
            continue
        ours = b"serve" in command and b"http" in command and str(port).encode() in command
        if ours and _state(int(entry.name)) != "Z":
            found.append(int(entry.name))
    return found


def _killed_at(model: Path, env: dict, delay: float) -> tuple[list[int], bool]:
    """Start `serve http --workers 2`, SIGKILL its main process after `delay` seconds: the processes of it still
    alive up to 30 s later, and whether anything listens on its port then.

    30 s, not 5: a worker still starting when its parent dies finds out once its start-up is done, and on two
    cores busy with the rest of the suite one start-up took more than 5 s (an orphan the defect left served on for
    good: 54 minutes in the probe)."""
    port = free_port()
    command = [sys.executable, "-m", "serve", "http", str(model), "--workers", "2", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    process.kill()
    process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while _serving_processes(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        listening = True
    except OSError:
        listening = False
    return _serving_processes(port), listening


def test_workers_killed_anywhere_in_start_up_leave_no_listener(digits_export, no_tensorflow_env):
    # The kernel's parent-death signal could be lost while a worker loaded its model: 2 of 12 kills between 0.55 and
    # 1.3 s left a worker serving for good, owned by init (0.35 s on another machine). So the sweep covers the
    # whole start-up, measured first, in steps of a tenth of it.
    started = time.monotonic()
    process, port = start_server(digits_export, no_tensorflow_env, "--workers", "2")
    startup = time.monotonic() - started  # until one worker answers: the other may take a little longer
    _stop(process)
    left = {}
    for step in range(2, 13):
        delay = round(startup * step / 10, 2)
        alive, listening = _killed_at(digits_export, no_tensorflow_env, delay)
        if alive or listening:
            left[delay] = (alive, listening)
    assert left == {}, f"kills after these many seconds left processes (or a listener): {left}"


def test_a_killed_main_process_takes_its_workers_and_metrics_folder(digits_export, no_tensorflow_env):
    process, port = start_server(digits_export, no_tensorflow_env, "--workers", "2")
    workers = worker_pids(port)
    assert len(workers) == 2
    folders = list(Path(tempfile.gettempdir()).glob(f"kerasreg-metrics-{process.pid}-*"))
    assert len(folders) == 1
    process.kill()
    process.wait(timeout=30)
    deadline = time.monotonic() + 20
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = [pid for pid in workers if Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)]
    assert alive == [], "workers served on after their main process was killed"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    again, again_port = start_server(digits_export, no_tensorflow_env, "--workers", "2")  # removes the stale folder
    try:
        assert not folders[0].exists()
    finally:
        _stop(again)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_a_port_already_served_is_refused_in_one_line(digits_export, no_tensorflow_env):
    process, port = start_server(digits_export, no_tensorflow_env, "--drain-seconds", "0")
    try:
        second = subprocess.run(
            [sys.executable, "-m", "serve", "http", str(digits_export), "--port", str(port)],
            env=no_tensorflow_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 2, second.stderr
        (line,) = [line for line in second.stderr.strip().splitlines() if "error" in line]
        assert line == (
            f"python -m serve: error: port {port} is already served by a kerasreg server (pid {process.pid}); "
            "stop it or choose another --port."
        )
        for _ in range(20):  # every request still reaches the one server
            assert httpx.get(f"http://127.0.0.1:{port}/v2/models/digits").status_code == 200
    finally:
        _stop(process)


def test_cors_keeps_origins_apart_and_grants_only_what_the_api_reads(digits_export, no_tensorflow_env):
    from http_servers import app_for, respond

    origin = "https://app.example"
    app = app_for(digits_export, cors_origins=(origin,))
    plain = respond(app, "GET", "/v2/models/digits")
    assert dict(plain.headers)["vary"] == "Origin"  # even with no Origin: a cache must not mix answers
    asked = respond(
        app,
        "OPTIONS",
        "/v2/models/digits/infer",
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "x-evil, authorization",
        },
    )
    granted = dict(asked.headers)
    assert asked.status == 204 and asked.content_type is None  # a 204 carries no content type
    # Not the headers asked for: those the API reads.
    assert granted["access-control-allow-headers"] == "content-type, inference-header-content-length"
    unknown = respond(app, "OPTIONS", "/nowhere", headers={"origin": origin, "access-control-request-method": "POST"})
    assert unknown.status == 404 and "access-control-allow-origin" not in dict(unknown.headers)
    anyone = app_for(digits_export, cors_origins=("*",))
    null = respond(anyone, "GET", "/v2/models/digits", headers={"origin": "null"})
    assert dict(null.headers)["access-control-allow-origin"] == "*"  # never the echo of "null"


def test_killed_workers_metrics_files_are_folded_not_piled_up(digits_export, no_tensorflow_env):
    process, port = start_server(digits_export, no_tensorflow_env, "--workers", "2", "--drain-seconds", "0")
    folder = next(Path(tempfile.gettempdir()).glob(f"kerasreg-metrics-{process.pid}-*"))
    base = f"http://127.0.0.1:{port}"
    try:
        sent = 0
        for _ in range(4):  # kill a worker four times, with requests counted before each kill
            for _ in range(5):
                assert httpx.post(f"{base}/v1/models/digits:predict", content=IMAGE).status_code == 200
                sent += 1
            victim = worker_pids(port)[0]
            os.kill(victim, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while (victim in worker_pids(port) or len(worker_pids(port)) < 2) and time.monotonic() < deadline:
                time.sleep(0.05)
        live = set(map(str, worker_pids(port)))
        files = sorted(p.name for p in folder.glob("*.db"))
        counted = httpx.get(f"{base}/metrics").text
    finally:
        _stop(process)
    pids = {name.rsplit("_", 1)[1].removesuffix(".db") for name in files}
    assert pids <= live | {"archive"}, files  # no file of a dead worker is left
    total = sum(
        float(line.rsplit(" ", 1)[1])
        for line in counted.splitlines()
        if line.startswith("kerasreg_requests_total{") and 'protocol="v1"' in line and 'status="200"' in line
    )
    assert total == sent  # and every request it counted is still counted
