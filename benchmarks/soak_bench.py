"""Load and soak: at least 20,000 requests per kind through `serve http`, and its memory before and after.

    python benchmarks/soak_bench.py EXPORT_DIR [--requests 20000]     (make soak trains and exports one)

Four kinds, one after the other against one server process, 16 connections each
(wrk): one image and batches of 32 images, through TF Serving's v1 `instances` and
the Open Inference Protocol's v2 `infer`. Reports requests/s, p50 and p99
latency, errors (non-2xx and socket errors, which must be 0) and the resident
memory (VmRSS) of the server's worker process, which serves, and of granian's main
process, which only watches it, before the first kind and after the last.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.measure import PYTHON, free_port, start_server, stop_server, wrk  # noqa: E402


def rss_mb(pid: int) -> float:
    """Resident memory of process `pid`, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def worker_pids(pid: int) -> list[int]:
    """The server's worker processes: granian's main process forks them and serves nothing itself."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return children


def server_rss_mb(pid: int) -> dict:
    """Resident memory of the main process and of its worker, MB."""
    workers = worker_pids(pid)
    if len(workers) != 1:
        raise RuntimeError(f"expected one worker process of {pid}, found {workers}")
    return {"main": rss_mb(pid), "worker": rss_mb(workers[0])}


def bodies(shape: tuple[int, ...], work: Path) -> dict[str, tuple[str, Path]]:
    """(path, body file) of each kind, with random images of the model's input shape."""
    kinds = {}
    for batch in (1, 32):
        images = np.random.default_rng(batch).integers(0, 256, (batch, *shape), dtype=np.uint8)
        v1 = work / f"v1-{batch}.json"
        v1.write_text(json.dumps({"instances": images.tolist()}))
        v2 = work / f"v2-{batch}.json"
        tensor = {"name": "images", "shape": list(images.shape), "datatype": "UINT8", "data": images.ravel().tolist()}
        v2.write_text(json.dumps({"inputs": [tensor]}))
        kinds[f"v1 instances, batch {batch}"] = ("/v1/models/soak:predict", v1)
        kinds[f"v2 infer, batch {batch}"] = ("/v2/models/soak/infer", v2)
    return kinds


def run(export: Path, requests: int, work: Path) -> dict:
    """Soak every kind; the figures."""
    from serve import Model

    shape = Model.load(export / "model.onnx").info.input_shape
    port = free_port()
    server = start_server(
        [
            PYTHON,
            "-m",
            "serve",
            "http",
            str(export / "model.onnx"),
            "--name",
            "soak",
            "--port",
            str(port),
            "--max-batch",
            "32",
            "--drain-seconds",
            "0",
        ],
        port,
    )
    results = {"rss_before_mb": server_rss_mb(server.pid), "kinds": {}}
    try:
        for kind, (path, body) in bodies(shape, work).items():
            url = f"http://127.0.0.1:{port}{path}"
            probe = wrk(url, body, 1)
            seconds = max(2, math.ceil(requests / max(probe["requests_per_s"], 1) * 1.2))
            measured = wrk(url, body, seconds)
            measured["requests"] = round(measured["requests_per_s"] * seconds)
            results["kinds"][kind] = measured
            print(
                f"  {kind}: {measured['requests']:,} requests, {measured['requests_per_s']:,.0f} req/s, "
                f"p50 {measured['p50_s'] * 1e3:.2f} ms, p99 {measured['p99_s'] * 1e3:.2f} ms, "
                f"{measured['errors']} errors",
                flush=True,
            )
        results["rss_after_mb"] = server_rss_mb(server.pid)
    finally:
        stop_server(server)
    results["exit_code"] = server.returncode  # SIGTERM: a graceful stop exits 0
    return results


def main() -> int:
    """Run the soak and print its JSON; exit 1 if any request failed or the server did not stop cleanly."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", type=Path, help="an export directory (python -m export)")
    parser.add_argument("--requests", type=int, default=20_000, help="requests per kind, at least (default: 20000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        results = run(args.export, args.requests, Path(work))
    print(json.dumps(results, indent=2))
    failed = any(k["errors"] for k in results["kinds"].values()) or results["exit_code"] != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
