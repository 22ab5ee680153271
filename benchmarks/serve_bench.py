"""Serving figures: cold start and peak memory against TensorFlow, latency against bare onnxruntime, HTTP requests/s.

    python benchmarks/serve_bench.py EXPORT_DIR      (e.g. after `make demo`: exports/demo-digits)

Every figure is a median over repeated runs in this script, and each is set beside
its baseline measured the same way on the same machine.
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPEATS = 5
_RSS = "import resource; print('RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"


def _timed(code: str) -> tuple[float, int]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    seconds = time.perf_counter() - start
    rss = int(next(line for line in out.splitlines() if line.startswith("RSS_KB")).split()[1])
    return seconds, rss


def cold_start(export: Path) -> dict:
    """Process wall time and peak RSS: serve (import, load, first prediction) vs TensorFlow on the SavedModel."""
    sample = sorted((export / "samples").glob("*.png"))[0]
    serve = f"from serve.cli import main; main(['predict', '{export / 'model.onnx'}', '{sample}']); {_RSS}"
    tf = (
        "import os; os.environ['TF_CPP_MIN_LOG_LEVEL']='3'; import numpy as np; from PIL import Image; "
        "import tensorflow as tf; "
        f"f = tf.saved_model.load('{export / 'saved_model'}').signatures['serving_default']; "
        f"x = np.asarray(Image.open('{sample}'))[None, ..., None]; print(f(images=tf.constant(x))); {_RSS}"
    )
    result = {}
    for name, code in (("serve", serve), ("tensorflow", tf)):
        runs = [_timed(code) for _ in range(REPEATS)]
        result[name] = {
            "seconds": statistics.median(r[0] for r in runs),
            "peak_rss_mb": statistics.median(r[1] for r in runs) / 1024,
        }
    return result


def latency(export: Path) -> dict:
    """Median single-image latency of Model.predict next to a bare InferenceSession.run."""
    import numpy as np
    import onnxruntime as ort

    from serve import Model

    model = Model.load(export / "model.onnx")
    image = np.zeros(model.info.input_shape, np.uint8)
    bare = ort.InferenceSession(str(export / "model.onnx"), providers=["CPUExecutionProvider"])
    batch = image[None]

    def median_us(fn, n=2000):
        for _ in range(100):
            fn()
        samples = []
        for _ in range(n):
            start = time.perf_counter_ns()
            fn()
            samples.append(time.perf_counter_ns() - start)
        return statistics.median(samples) / 1000

    return {
        "serve_predict_us": median_us(lambda: model.predict(image)),
        "bare_onnxruntime_us": median_us(lambda: bare.run(None, {"images": batch})),
    }


def http_throughput(export: Path, seconds: float = 5.0, threads: int = 8) -> dict:
    """Requests/s of `python -m serve http` on loopback, 8 client threads, one image per request."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx
    import numpy as np

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "serve", "http", str(export / "model.onnx"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(base + "/v2/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        meta = httpx.get(base + "/v2/models/digits").json()
        shape = meta["inputs"][0]["shape"][1:]
        body = json.dumps({"instances": [np.zeros(shape, np.uint8).tolist()]})
        deadline = time.monotonic() + seconds

        def worker(_):
            count = errors = 0
            with httpx.Client(base_url=base) as client:
                while time.monotonic() < deadline:
                    r = client.post(
                        "/v1/models/digits:predict", content=body, headers={"content-type": "application/json"}
                    )
                    count += 1
                    errors += r.status_code != 200
            return count, errors

        start = time.monotonic()
        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(worker, range(threads)))
        elapsed = time.monotonic() - start
        return {"requests_per_s": sum(c for c, _ in results) / elapsed, "errors": sum(e for _, e in results)}
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    export = Path(sys.argv[1] if len(sys.argv) > 1 else "exports/demo-digits")
    print(
        json.dumps(
            {"cold_start": cold_start(export), "latency": latency(export), "http": http_throughput(export)}, indent=2
        )
    )
