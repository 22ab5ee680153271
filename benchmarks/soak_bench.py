"""Load and soak: at least 20,000 requests per kind through `serve http`, and its memory before and after.

    python benchmarks/soak_bench.py EXPORT_DIR [--requests 20000]     (make soak trains and exports one)

The server serves a repository folder (soak/1/model.onnx) and reads it every 0.2 s.
Four kinds, one after the other, 16 connections each (wrk): one image and batches of
32 images, through TF Serving's v1 `instances` and the Open Inference Protocol's v2
`infer`, none naming a version. Throughout, beside the load: version 2 is added and
removed again and again (the newest answers, so requests move between the two);
hostile versions are asked for in URLs ("0001", zeros of other scripts, 5,000
digits); /metrics is scraped twice a second. Reports requests/s, p50 and p99
latency, errors (non-2xx and socket errors, which must be 0), the churn's cycles,
the size of /metrics at the first and last scrape (it must stay flat: no client can
grow the label set), and the resident memory (VmRSS) of the worker process, which
serves, and of granian's main process, before the first kind and after the last.

Then two hostile phases (benchmarks/soak_phases.py), each while health is probed every
50 ms: gRPC calls, nine valid to one refused (an unknown model, a wrong shape, a shape of
a million, bytes that are no protobuf; now and then 600,000 parameters), and image
uploads, eight valid to one of the probe's files (2 million JPEG comments, 600,000 PNG
chunks, 2 million GIF comments, 20,000 progressive scans). Each reports its answers
(every one as expected), health's p50/p90/p99/max (p90 under 0.25 s), and the worker's
memory before and after (given 3 s of quiet to hand freed memory back).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
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


class Churn:
    """Beside the load: version 2 added and removed, hostile versions in URLs, /metrics scraped."""

    HOSTILE = ("0001", "\u0660\u0661", "\uff10" * 5 + "1", "9" * 5000, "\u00b2")

    def __init__(self, repository: Path, model: Path, port: int):
        self.repository, self.model, self.port = repository, model, port
        self.cycles = self.hostile = 0
        self.metrics_bytes: list[int] = []
        self.unexpected: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=t, daemon=True) for t in (self._versions, self._asking)]

    def __enter__(self) -> Churn:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        shutil.rmtree(self.repository / "soak" / "2", ignore_errors=True)

    def _versions(self) -> None:
        second = self.repository / "soak" / "2"
        while not self._stop.wait(0.6):
            if second.exists():
                shutil.rmtree(second)
            else:
                second.mkdir()
                shutil.copy(self.model, second / "model.onnx")
            self.cycles += 1

    def _asking(self) -> None:
        import httpx

        base = f"http://127.0.0.1:{self.port}"
        with httpx.Client(base_url=base, timeout=30) as client:
            while not self._stop.wait(0.05):
                version = self.HOSTILE[self.hostile % len(self.HOSTILE)]
                status = client.get(f"/v2/models/soak/versions/{version}").status_code
                self.hostile += 1
                if status != 404:
                    self.unexpected.append(f"version {version[:20]!r}: {status}")
                if self.hostile % 10 == 0:
                    self.metrics_bytes.append(len(client.get("/metrics").content))


def run(export: Path, requests: int, work: Path) -> dict:
    """Soak every kind beside the churn; the figures."""
    from serve import Model

    shape = Model.load(export / "model.onnx").info.input_shape
    repository = work / "models"
    (repository / "soak" / "1").mkdir(parents=True)
    shutil.copy(export / "model.onnx", repository / "soak" / "1" / "model.onnx")
    port, grpc_port = free_port(), free_port()
    command = [PYTHON, "-m", "serve", "http", str(repository), "--port", str(port), "--max-batch", "32",
               "--grpc-port", str(grpc_port)]  # fmt: skip
    server = start_server([*command, "--drain-seconds", "0", "--poll-seconds", "0.2"], port)
    results = {"rss_before_mb": server_rss_mb(server.pid), "kinds": {}}
    try:
        with Churn(repository, export / "model.onnx", port) as churn:
            for kind, (path, body) in bodies(shape, work).items():
                results["kinds"][kind] = _soak(f"http://127.0.0.1:{port}{path}", body, requests, kind)
        scraped = churn.metrics_bytes or [0]
        results["churn"] = {
            "version_changes": churn.cycles,
            "hostile_version_requests": churn.hostile,
            "unexpected_answers": churn.unexpected,
            "metrics_bytes_first": scraped[0],
            # Once every kind of request has been answered once, every series there can be exists.
            "metrics_bytes_settled": scraped[len(scraped) // 4],
            "metrics_bytes_last": scraped[-1],
            "metrics_scrapes": len(churn.metrics_bytes),
        }
        print(f"  churn: {results['churn']}", flush=True)
        results["rss_after_mb"] = server_rss_mb(server.pid)
        results["hostile"] = _hostile_phases(server.pid, port, grpc_port, shape, requests)
    finally:
        stop_server(server)
    results["exit_code"] = server.returncode  # SIGTERM: a graceful stop exits 0
    return results


def _hostile_phases(pid: int, port: int, grpc_port: int, shape: tuple[int, int, int], requests: int) -> dict:
    """gRPC and uploads, valid mixed with refused, while health is probed; the worker's memory around each."""
    from benchmarks.soak_phases import HealthProbe, grpc_phase, upload_phase

    phases = {}
    for name, phase in (
        ("grpc", lambda: grpc_phase(grpc_port, shape, requests // 2)),
        ("uploads", lambda: upload_phase(port, max(200, requests // 20))),
    ):
        # In two halves, each followed by 3 s of quiet (the worker hands freed memory back): the first half grows
        # the working set, the second must not grow it further.
        rss = [server_rss_mb(pid)["worker"]]
        halves = []
        with HealthProbe(port) as probe:
            for _ in range(2):
                halves.append(phase())
                time.sleep(3)
                rss.append(server_rss_mb(pid)["worker"])
        figures = {
            "answered": sum(next(v for k, v in half.items() if k in ("calls", "uploads")) for half in halves),
            "per_s": statistics.median(next(v for k, v in h.items() if k.endswith("_per_s")) for h in halves),
            "outcomes": dict(sum((Counter(h["outcomes"]) for h in halves), Counter())),
            "unexpected": [line for half in halves for line in half["unexpected"]],
            "health": probe.summary(),
            "worker_rss_mb": {"before": rss[0], "after_first_half": rss[1], "after_second_half": rss[2]},
        }
        print(f"  {name}: {figures}", flush=True)
        phases[name] = figures
    return phases


def _soak(url: str, body: Path, requests: int, kind: str) -> dict:
    """wrk long enough for `requests` requests at the rate a 1 s probe measured; its figures, printed."""
    probe = wrk(url, body, 1)
    seconds = max(2, math.ceil(requests / max(probe["requests_per_s"], 1) * 1.2))
    measured = wrk(url, body, seconds)
    measured["requests"] = round(measured["requests_per_s"] * seconds)
    print(
        f"  {kind}: {measured['requests']:,} requests, {measured['requests_per_s']:,.0f} req/s, "
        f"p50 {measured['p50_s'] * 1e3:.2f} ms, p99 {measured['p99_s'] * 1e3:.2f} ms, "
        f"{measured['errors']} errors",
        flush=True,
    )
    return measured


def main() -> int:
    """Run the soak and print its JSON; exit 1 if any request failed or the server did not stop cleanly."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", type=Path, help="an export directory (python -m export)")
    parser.add_argument("--requests", type=int, default=20_000, help="requests per kind, at least (default: 20000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        results = run(args.export, args.requests, Path(work))
    print(json.dumps(results, indent=2))
    churn = results["churn"]
    grown = (churn["metrics_bytes_last"] or 0) > (churn["metrics_bytes_settled"] or 0) + 1024
    failed = any(k["errors"] for k in results["kinds"].values()) or results["exit_code"] != 0
    failed = failed or bool(churn["unexpected_answers"]) or grown
    for phase in results["hostile"].values():
        failed = failed or bool(phase["unexpected"]) or phase["health"]["p90_s"] >= 0.25 or phase["health"]["failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
