"""Uploads that asked for unbounded work (issue 32): headers of millions of markers, chunks or blocks, and
progressive JPEGs of thousands of scans. Each test failed on the server before the fix: health waited seconds
behind one upload, and a decode that had timed out burned a core for a minute."""

from __future__ import annotations

import os
import signal
import statistics
import threading
import time

import hostile_images
import httpx
import pytest
from http_servers import start_server, worker_pids

from serve.errors import NotReady

pytestmark = pytest.mark.slow  # server processes

CLASSIFY = "/models/digits/classify"
EIGHT_MB = 9 * 2**20


def form(files: list[bytes]) -> tuple[dict, bytes]:
    """A multipart form of `files`, each in field "image"."""
    body = b"".join(
        b'--B\r\nContent-Disposition: form-data; name="image"; filename="x.jpg"\r\n\r\n' + data + b"\r\n"
        for data in files
    )
    return {"content-type": "multipart/form-data; boundary=B"}, body + b"--B--\r\n"


def health_while_sending(port: int, requests: list[tuple[dict, bytes]], clients: int = 4, probes: int = 20):
    """Send `requests` round and round from `clients` threads while health is probed `probes` times (50 ms
    apart): the statuses the senders got, and each probe's seconds."""
    stop, statuses, seconds = threading.Event(), [], []

    def send(offset: int) -> None:
        with httpx.Client(timeout=120) as client:
            i = offset
            while not stop.is_set():
                headers, body = requests[i % len(requests)]
                statuses.append(client.post(f"http://127.0.0.1:{port}{CLASSIFY}", content=body, headers=headers)
                                .status_code)  # fmt: skip
                i += 1

    senders = [threading.Thread(target=send, args=(i,), daemon=True) for i in range(clients)]
    for sender in senders:
        sender.start()
    try:
        with httpx.Client(timeout=60) as client:
            while len(seconds) < probes or len(statuses) < 2 * len(requests):
                started = time.perf_counter()
                assert client.get(f"http://127.0.0.1:{port}/v2/health/live").status_code == 200
                seconds.append(time.perf_counter() - started)
                time.sleep(0.05)
    finally:
        stop.set()
        for sender in senders:
            sender.join(timeout=120)
    return statuses, seconds


def test_headers_of_millions_of_markers_chunks_or_blocks_leave_health_answering(digits_export, no_tensorflow_env):
    # The probe's files: each over 2 s of Pillow's Python loops before the fix; the form, 256 of the JPEGs.
    comments = hostile_images.jpeg_comments(2_000_000)
    requests = [
        ({"content-type": "image/jpeg"}, comments),
        ({"content-type": "image/png"}, hostile_images.png_chunks(600_000)),
        ({"content-type": "image/gif"}, hostile_images.gif_comments(2_000_000)),
        form([hostile_images.jpeg_comments(8_000)] * 256),
    ]
    assert all(len(body) < EIGHT_MB for _, body in requests)
    process, port = start_server(digits_export, no_tensorflow_env, "--max-body-bytes", str(EIGHT_MB),
                                 "--max-batch", "256")  # fmt: skip
    try:
        statuses, seconds = health_while_sending(port, requests)
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    # The bound holds for nine probes in ten: one noisy moment of two shared cores does not decide it.
    assert sorted(seconds)[int(0.9 * len(seconds))] < 0.25, sorted(seconds)[-5:]
    assert statistics.median(seconds) < 0.05, statistics.median(seconds)
    assert set(statuses) == {400}


def _cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_decode_that_would_outlive_its_timeout_costs_no_cpu_after_the_answer(digits_export, no_tensorflow_env):
    # 2000x2000 (the most pixels this model takes), progressive, 20,000 empty refinement scans: before the fix it was
    # answered 503 at --timeout and decoded on in its thread (5.4 s of CPU in the 3 s after, two cores busy). Now its
    # scans are counted before anything is decoded.
    bomb = hostile_images.jpeg_scans(20_000, 2000, 2000)
    process, port = start_server(digits_export, no_tensorflow_env, "--timeout", "1")
    try:
        (worker,) = worker_pids(port)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            answers = [client.post(CLASSIFY, content=bomb, headers={"content-type": "image/jpeg"}) for _ in range(2)]
            before = _cpu_seconds(worker)
            time.sleep(3)
            burned = _cpu_seconds(worker) - before
            good = client.post(CLASSIFY, content=hostile_images.jpeg(64, 64), headers={"content-type": "image/jpeg"})
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    assert burned < 0.5, f"the worker used {burned:.2f} s of CPU in the 3 s after answering"
    assert [a.status_code for a in answers] == [400, 400], [a.text for a in answers]
    assert "20,010 JPEG scans, more than the 256 allowed" in answers[0].json()["error"]
    assert good.status_code == 200


def test_a_timed_out_decoding_stops_before_its_next_image(digits_export, monkeypatch):
    import serve.plane.image_budget
    from serve.limits import Limits
    from serve.plane.image_budget import plan_decoding
    from serve.runtime.model import Model

    decoding = plan_decoding({i: hostile_images.jpeg(600, 600) for i in range(3)}, Model.load(digits_export), Limits())
    assert not decoding.small and decoding.pixels == 3 * 360_000
    decoded = []
    real = serve.plane.image_budget.decode_image

    def decode_one(*args, **kwargs):
        decoded.append(args[1])
        decoding.cancel()  # the request's timeout fires while its first image decodes
        return real(*args, **kwargs)

    monkeypatch.setattr(serve.plane.image_budget, "decode_image", decode_one)
    with pytest.raises(NotReady, match="decoding the images was stopped: the request timed out."):
        decoding.run()
    assert decoded == ["instances[0]"]
