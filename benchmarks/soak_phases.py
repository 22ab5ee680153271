"""make soak's hostile phases (issue 32): gRPC calls, valid mixed with refused, and image uploads, valid mixed with
the probe's files, while health is probed; the worker's memory before and after each.

Each phase sends its requests from several threads, round and round a list of (request, the answer it must get),
until `calls` have been answered; any other answer is counted as unexpected (it must be 0).
"""

from __future__ import annotations

import io
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the probe's files, as the tests send them

CLIENTS = 4


class HealthProbe:
    """GET /v2/health/live every 50 ms from a thread of its own; each answer's seconds."""

    def __init__(self, port: int):
        self.port, self.seconds, self.failed = port, [], 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._probe, daemon=True)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _probe(self) -> None:
        import httpx

        with httpx.Client(timeout=30) as client:
            while not self._stop.wait(0.05):
                started = time.perf_counter()
                ok = client.get(f"http://127.0.0.1:{self.port}/v2/health/live").status_code == 200
                self.seconds.append(time.perf_counter() - started)
                self.failed += not ok

    def summary(self) -> dict:
        """Median, 90th and 99th percentile and worst probe, in seconds."""
        ordered = sorted(self.seconds) or [0.0]
        at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
        return {"probes": len(self.seconds), "p50_s": statistics.median(ordered), "p90_s": at(0.9),
                "p99_s": at(0.99), "max_s": ordered[-1], "failed": self.failed}  # fmt: skip


def _round_robin(cases: list, calls: int, send) -> tuple[Counter, list[str], float]:
    """`send(case)` from CLIENTS threads over `cases` until `calls` answers: what came back, anything unexpected,
    and the seconds it took."""
    outcomes, unexpected, lock, count = Counter(), [], threading.Lock(), [0]

    def client() -> None:
        while True:
            with lock:  # the next case in the list, whichever thread sends it
                if count[0] >= calls:
                    return
                case = cases[count[0] % len(cases)]
                count[0] += 1
            got = send(case)
            with lock:
                outcomes[(case[0], got)] += 1
                if got != case[1] and len(unexpected) < 20:
                    unexpected.append(f"{case[0]}: {got} (expected {case[1]})")

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes, unexpected, time.perf_counter() - started


def grpc_cases(shape: tuple[int, int, int]) -> list[tuple[str, str, bytes]]:
    """(kind, the status it must get, the serialized ModelInferRequest): valid calls, and refused ones of each kind."""
    from serve.protocols.grpc.messages import message

    request = message("ModelInferRequest")
    image = np.random.default_rng(0).integers(0, 256, (1, *shape), dtype=np.uint8)

    def infer(model="soak", tensor_shape=(1, *shape), data=image.tobytes(), **fields) -> bytes:
        tensor = request.InferInputTensor(name="images", datatype="UINT8", shape=list(tensor_shape))
        return request(model_name=model, inputs=[tensor], raw_input_contents=[data], **fields).SerializeToString()

    parameters = request(model_name="soak")
    for i in range(600_000):
        parameters.parameters[str(i)].bool_param = True
    valid = [("valid", "OK", infer())] * 9
    refused = [
        ("unknown model", "NOT_FOUND", infer(model="nope")),
        ("wrong shape", "INVALID_ARGUMENT", infer(tensor_shape=(1, 3, 3, 3), data=bytes(27))),
        ("a shape of a million", "INVALID_ARGUMENT", infer(tensor_shape=[1] * 1_000_000)),
        ("not a protobuf", "INVALID_ARGUMENT", b"\xff\xff\xff\xff garbage"),
    ]
    cases = [*valid, refused[0], *valid, refused[1], *valid, refused[2], *valid, refused[3]]
    return [*cases * 10, ("600,000 parameters", "INVALID_ARGUMENT", parameters.SerializeToString())]


def grpc_phase(grpc_port: int, shape: tuple[int, int, int], calls: int) -> dict:
    """The gRPC calls, sent from CLIENTS threads on a channel each."""
    import grpc

    cases = grpc_cases(shape)
    local = threading.local()

    def send(case) -> str:
        if not hasattr(local, "call"):
            channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}", options=[("grpc.max_send_message_length", -1)])
            local.call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
        try:
            local.call(case[2], timeout=60)
            return "OK"
        except grpc.RpcError as e:
            return e.code().name

    return _figures("calls", *_round_robin(cases, calls, send))


def upload_cases() -> list[tuple[str, int, str, bytes]]:
    """(kind, the status it must get, content type, body): real-sized photos, and the probe's files."""
    import hostile_images
    from PIL import Image

    photo = io.BytesIO()
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(photo, "JPEG", quality=85)
    small = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8)).save(small, "PNG")
    valid = [("photo", 200, "image/jpeg", photo.getvalue()), ("small png", 200, "image/png", small.getvalue())] * 4
    hostile = [
        ("2M JPEG comments", 400, "image/jpeg", hostile_images.jpeg_comments(2_000_000)),
        ("600k PNG chunks", 400, "image/png", hostile_images.png_chunks(600_000)),
        ("2M GIF comments", 400, "image/gif", hostile_images.gif_comments(2_000_000)),
        ("20k progressive scans", 400, "image/jpeg", hostile_images.jpeg_scans(20_000, 2000, 2000)),
    ]
    return [case for bad in hostile for case in (*valid, bad)]


def upload_phase(port: int, calls: int) -> dict:
    """The uploads to /models/soak/classify, sent from CLIENTS threads."""
    import httpx

    local = threading.local()

    def send(case) -> int:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=60)
        url = f"http://127.0.0.1:{port}/models/soak/classify"
        return local.client.post(url, content=case[3], headers={"content-type": case[2]}).status_code

    return _figures("uploads", *_round_robin(upload_cases(), calls, send))


def _figures(noun: str, outcomes: Counter, unexpected: list[str], seconds: float) -> dict:
    """A phase's answers: how many, how fast, of each kind and outcome, and any unexpected."""
    total = sum(outcomes.values())
    counted = {f"{kind}: {got}": n for (kind, got), n in sorted(outcomes.items())}
    return {noun: total, f"{noun}_per_s": total / seconds, "outcomes": counted, "unexpected": unexpected}
