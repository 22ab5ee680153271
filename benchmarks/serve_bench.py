"""Serving speed against a 20-line endpoint, bare onnxruntime and TensorFlow.

    python benchmarks/serve_bench.py EXPORT_DIR [--rounds 3] [--seconds 4]

EXPORT_DIR is a `python -m export` output (e.g. exports/demo-digits after `make
demo`). Each round measures, one after the other:

- HTTP: `wrk -t1 -c16` POSTs of one image for `--seconds`, against `serve http`
  and against benchmarks/naive_endpoint.py (Starlette + orjson + onnxruntime on
  uvicorn with uvloop and httptools), each server pinned to core 0 and wrk to core
  1, for three request kinds: v1 `instances` (nested lists), v2 `infer` (flat
  data) and v1 `b64` PNG;
- `--workers 1` against `--workers 2` (not pinned: the machine's cores are shared
  with wrk), v1 instances;
- 1,024 images through `serve.Model.predict` against a bare
  `InferenceSession.run` with onnxruntime's default options on the same array;
- cold start and peak memory of `python -m serve predict` against TensorFlow
  loading the SavedModel and classifying the same image.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.measure import (  # noqa: E402
    PYTHON,
    REPO,
    Target,
    free_port,
    median,
    median_seconds,
    run_json,
    start_server,
    stop_server,
    wrk,
)

KINDS = {
    "v1 instances": "/v1/models/bench:predict",
    "v2 infer": "/v2/models/bench/infer",
    "v1 b64 PNG": "/v1/models/bench:predict",
}
# The peak RSS of this process's own memory (VmHWM): getrusage's ru_maxrss can carry the
# parent's figure into a child started from a large benchmark process.
_RSS = "import re; print('RSS_KB', re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))"


def request_bodies(export: Path, work: Path) -> dict[str, Path]:
    """One sample image as each request kind's JSON body."""
    from PIL import Image

    png = sorted((export / "samples").glob("*.png"))[0]
    image = np.asarray(Image.open(png))
    if image.ndim == 2:
        image = image[..., np.newaxis]
    tensor = {"name": "images", "shape": [1, *image.shape], "datatype": "UINT8", "data": image.ravel().tolist()}
    bodies = {
        "v1 instances": {"instances": [image.tolist()]},
        "v2 infer": {"inputs": [tensor]},
        "v1 b64 PNG": {"instances": [{"b64": base64.b64encode(png.read_bytes()).decode()}]},
    }
    paths = {}
    for kind, body in bodies.items():
        paths[kind] = work / (kind.replace(" ", "-") + ".json")
        paths[kind].write_text(json.dumps(body))
    return paths


def server_commands(model: Path) -> dict[str, list[str]]:
    """The two servers measured, without their port: `serve http` and the naive endpoint."""
    return {
        "serve": [PYTHON, "-m", "serve", "http", str(model), "--name", "bench"],
        "naive": [PYTHON, str(REPO / "benchmarks" / "naive_endpoint.py"), str(model)],
    }


def http_round(model: Path, bodies: dict[str, Path], seconds: float, naive_first: bool) -> dict:
    """One round of every request kind against both servers, pinned to core 0, wrk on core 1.

    Both servers run for the whole round and each kind is measured on one right
    after the other (which goes first alternates between rounds), so drift in the
    machine's speed falls on both alike.
    """
    pinned = (os.cpu_count() or 1) >= 2
    ports, processes = {}, {}
    try:
        for server, command in server_commands(model).items():
            ports[server] = free_port()
            args = [*command, "--port", str(ports[server])] if server == "serve" else [*command, str(ports[server])]
            processes[server] = start_server(args, ports[server], "0" if pinned else None)
        results: dict = {}
        order = ["naive", "serve"] if naive_first else ["serve", "naive"]
        for kind, path in KINDS.items():
            for server in order:
                url = f"http://127.0.0.1:{ports[server]}{path}"
                wrk(url, bodies[kind], 1, cpus="1" if pinned else None)  # warm-up
                results[(server, kind)] = wrk(url, bodies[kind], seconds, cpus="1" if pinned else None)
    finally:
        for process in processes.values():
            stop_server(process)
    return results


def workers_round(model: Path, body: Path, seconds: float) -> dict[int, dict]:
    """v1 requests/s with 1 and 2 worker processes (not pinned)."""
    results = {}
    for workers in (1, 2):
        port = free_port()
        process = start_server([*server_commands(model)["serve"], "--port", str(port), "--workers", str(workers)], port)
        try:
            url = f"http://127.0.0.1:{port}{KINDS['v1 instances']}"
            wrk(url, body, 1)
            results[workers] = wrk(url, body, seconds)
        finally:
            stop_server(process)
    return results


def batch_round(model: Path) -> tuple[float, float]:
    """Median seconds of Model.predict and of a bare InferenceSession.run on 1,024 images."""
    import onnxruntime as ort

    from serve import Model

    served = Model.load(model)
    bare = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    images = np.random.default_rng(0).integers(0, 256, (1024, *served.info.input_shape), dtype=np.uint8)

    return (
        median_seconds(lambda: served.predict(images), 100, warmup=10),
        median_seconds(lambda: bare.run(None, {"images": images}), 100, warmup=10),
    )


def cold_start(export: Path, repeats: int) -> dict:
    """Wall seconds and peak RSS (MB) of a process that loads the model and classifies one image."""
    sample = sorted((export / "samples").glob("*.png"))[0]
    serve = f"from serve.cli import main; main(['predict', {str(export / 'model.onnx')!r}, {str(sample)!r}]); {_RSS}"
    tf = (
        "import numpy as np; from PIL import Image; import tensorflow as tf; "
        f"f = tf.saved_model.load({str(export / 'saved_model')!r}).signatures['serving_default']; "
        f"x = np.asarray(Image.open({str(sample)!r})); x = x[None, ..., None] if x.ndim == 2 else x[None]; "
        f"print(f(images=tf.constant(x))); {_RSS}"
    )
    result = {}
    for name, code in (("serve", serve), ("tensorflow", tf)):
        runs = []
        for _ in range(repeats):
            seconds, out = run_json([PYTHON, "-c", code])
            rss = int(next(line for line in out.splitlines() if line.startswith("RSS_KB")).split()[1])
            runs.append((seconds, rss / 1024))
        result[name] = {"seconds": median(r[0] for r in runs), "peak_rss_mb": median(r[1] for r in runs)}
    return result


def run(export: Path, rounds: int, seconds: float, work: Path) -> dict:
    """Every serving figure and target; see the module docstring."""
    model = export / "model.onnx"
    bodies = request_bodies(export, work)
    http_rounds, worker_rounds, batch_rounds = [], [], []
    for r in range(rounds):
        http_rounds.append(http_round(model, bodies, seconds, naive_first=r % 2 == 1))
        worker_rounds.append(workers_round(model, bodies["v1 instances"], seconds))
        batch_rounds.append(batch_round(model))
        line = ", ".join(
            f"{kind} {http_rounds[-1][('serve', kind)]['requests_per_s']:.0f} vs "
            f"{http_rounds[-1][('naive', kind)]['requests_per_s']:.0f} req/s"
            for kind in KINDS
        )
        print(
            f"  round {r + 1}: {line}; batch {batch_rounds[-1][0] * 1e3:.2f} vs {batch_rounds[-1][1] * 1e3:.2f} ms",
            flush=True,
        )
    targets = []
    for kind in KINDS:
        ours = [h[("serve", kind)] for h in http_rounds]
        naive = [h[("naive", kind)] for h in http_rounds]
        ratio = median(o["requests_per_s"] / n["requests_per_s"] for o, n in zip(ours, naive, strict=True))
        p99, naive_p99 = median(o["p99_s"] for o in ours), median(n["p99_s"] for n in naive)
        errors = sum(o["errors"] for o in ours)
        targets.append(
            Target(
                f"HTTP {kind}, 1 image, 1 worker",
                f"{median(o['requests_per_s'] for o in ours):,.0f} req/s, p99 {p99 * 1e3:.2f} ms, {errors} errors",
                f"naive endpoint {median(n['requests_per_s'] for n in naive):,.0f} req/s, p99 {naive_p99 * 1e3:.2f} ms",
                ratio,
                ">= 1.5 (aim 2), p99 <= naive, 0 errors",
                ratio >= 1.5 and p99 <= naive_p99 and errors == 0,
            )
        )
    one = median(w[1]["requests_per_s"] for w in worker_rounds)
    two = median(w[2]["requests_per_s"] for w in worker_rounds)
    targets.append(
        Target(
            "HTTP v1 instances, --workers 2 (cores shared with wrk)",
            f"{two:,.0f} req/s",
            f"--workers 1: {one:,.0f} req/s",
            two / one,
            "report",
            None,
        )
    )
    batch_ratio = median(ours / bare for ours, bare in batch_rounds)
    targets.append(
        Target(
            "Model.predict, 1,024 images",
            f"{median(b[0] for b in batch_rounds) * 1e3:.2f} ms",
            f"bare InferenceSession.run {median(b[1] for b in batch_rounds) * 1e3:.2f} ms",
            batch_ratio,
            "<= 1.2",
            batch_ratio <= 1.2,
        )
    )
    cold = cold_start(export, rounds)
    targets.append(
        Target(
            "cold start: process, import, load, 1 prediction",
            f"{cold['serve']['seconds']:.2f} s, {cold['serve']['peak_rss_mb']:.0f} MB",
            f"TensorFlow + SavedModel {cold['tensorflow']['seconds']:.2f} s, "
            f"{cold['tensorflow']['peak_rss_mb']:.0f} MB",
            cold["serve"]["seconds"] / cold["tensorflow"]["seconds"],
            "report",
            None,
        )
    )
    http = [{f"{server} / {kind}": v for (server, kind), v in h.items()} for h in http_rounds]
    return {"targets": [t.row() for t in targets], "http_rounds": http, "cold_start": cold}


def main() -> int:
    """Run the serving benchmark and print its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", type=Path, help="an export directory (python -m export)")
    parser.add_argument("--rounds", type=int, default=5, help="repeats; medians are reported (default: 5)")
    parser.add_argument("--seconds", type=float, default=3, help="length of each wrk run (default: 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        print(json.dumps(run(args.export, args.rounds, args.seconds, Path(work)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
