"""`make bench-deploy`: the serve image against the same server run bare, and the images' sizes and cold start.

    python benchmarks/container_bench.py EXPORT [--rounds 3] [--seconds 5] [--no-readme]

Both servers serve EXPORT's model.onnx with the same arguments, each pinned to core 0 (podman's --cpuset-cpus,
taskset for the bare one) with wrk on core 1: `wrk -t1 -c16` POSTs of one image as v2 JSON, then as v1
instances. Rounds alternate which goes first; the ratio (container / bare requests per second) is the median
over rounds. The container runs as deployed: read-only, a tmpfs at /tmp, the model mounted read-only, and
--network host (no NAT in the path: what a pod's network costs is the cluster's, not the image's). Writes
benchmarks/results-deploy.json and the README's deploy table. Needs podman and the images (make image).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import REPO, free_port, median, start_server, stop_server, wait_for_port, write_readme_section, wrk
from serve_bench import request_bodies

SERVE_IMAGE = "localhost/kerasreg-serve"
TRAIN_IMAGE = "localhost/kerasreg-train"
PODMAN = ["podman", "--runtime", "runc"]
ENV = {**os.environ, "CONTAINERS_CONF": str(REPO / "deploy" / "containers.conf")}
KINDS = {"v2 infer": "/v2/models/bench/infer", "v1 instances": "/v1/models/bench:predict"}


def _podman(*args: str) -> str:
    return subprocess.run([*PODMAN, *args], env=ENV, capture_output=True, text=True, check=True).stdout


def start_container(model_dir: Path, port: int, cpus: str | None) -> tuple[str, float]:
    """The serve image on `model_dir`'s model.onnx, as deployed; its name and the seconds until it is ready."""
    name = f"kerasreg-bench-{port}"
    started = time.monotonic()
    pin = ["--cpuset-cpus", cpus] if cpus else []
    _podman(
        "run", "-d", "--rm", "--name", name, "--network", "host", "--read-only", "--tmpfs", "/tmp", *pin,
        "-v", f"{model_dir}:/model:ro", SERVE_IMAGE, "http", "/model/model.onnx", "--name", "bench",
        "--host", "127.0.0.1", "--port", str(port),
    )  # fmt: skip
    while subprocess.run(["curl", "-sf", f"http://127.0.0.1:{port}/v2/health/ready"], capture_output=True).returncode:
        if time.monotonic() - started > 60:
            raise RuntimeError(f"{name} did not get ready")
        time.sleep(0.01)
    return name, time.monotonic() - started


def one_round(model_dir: Path, bodies: dict[str, Path], seconds: float, container_first: bool) -> dict:
    """Requests per second of each kind, from the bare server and the container, one right after the other."""
    pinned = (os.cpu_count() or 1) >= 2
    cpus = "0" if pinned else None
    bare_port, container_port = free_port(), free_port()
    bare = start_server(
        [sys.executable, "-m", "serve", "http", str(model_dir / "model.onnx"), "--name", "bench",
         "--port", str(bare_port)], bare_port, cpus,
    )  # fmt: skip
    name, ready = start_container(model_dir, container_port, cpus)
    results = {"ready_s": ready}
    try:
        wait_for_port(bare_port, bare)
        order = [("container", container_port), ("bare", bare_port)]
        for kind, path in KINDS.items():
            for server, port in order if container_first else order[::-1]:
                url = f"http://127.0.0.1:{port}{path}"
                wrk(url, bodies[kind], 1, cpus="1" if pinned else None)  # warm-up
                results[f"{server} {kind}"] = wrk(url, bodies[kind], seconds, cpus="1" if pinned else None)
    finally:
        stop_server(bare)
        _podman("stop", "--time", "10", name)
    return results


def image_sizes() -> dict[str, int]:
    """Each image's size in bytes, as podman reports it."""
    sizes = {}
    for image in (SERVE_IMAGE, TRAIN_IMAGE):
        found = json.loads(_podman("image", "inspect", image))
        sizes[image] = found[0]["Size"]
    return sizes


def run(export: Path, rounds: int, seconds: float) -> dict:
    """Every round, then the medians."""
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        model_dir = work / "model"
        model_dir.mkdir()
        shutil.copy(export / "model.onnx", model_dir)
        subprocess.run(["chmod", "-R", "a+rX", str(work)], check=True)
        bodies = request_bodies(export, work)
        measured = [one_round(model_dir, bodies, seconds, container_first=r % 2 == 0) for r in range(rounds)]
    summary = {"rounds": rounds, "seconds": seconds, "images": image_sizes(), "ready_s": median(
        [m["ready_s"] for m in measured])}  # fmt: skip
    for kind in KINDS:
        container = [m[f"container {kind}"]["requests_per_s"] for m in measured]
        bare = [m[f"bare {kind}"]["requests_per_s"] for m in measured]
        errors = sum(m[f"{server} {kind}"]["errors"] for m in measured for server in ("container", "bare"))
        summary[kind] = {
            "container_rps": median(container),
            "bare_rps": median(bare),
            "ratio": median([c / b for c, b in zip(container, bare, strict=True)]),
            "errors": errors,
        }
    return summary


def table(summary: dict) -> str:
    """The README's rows."""
    lines = ["| measure | container | bare | ratio |", "|---|---|---|---|"]
    for kind in KINDS:
        row = summary[kind]
        lines.append(
            f"| {kind}, one image, requests/s (median of {summary['rounds']}) | {row['container_rps']:,.0f} | "
            f"{row['bare_rps']:,.0f} | {row['ratio']:.2f} |"
        )
    lines.append(f"| ready after `podman run` (median) | {summary['ready_s']:.2f} s | | |")
    for image, size in summary["images"].items():
        lines.append(f"| {image.split('/')[-1]} image | {size / 1e6:,.0f} MB | | |")
    return "\n".join(lines)


def main() -> int:
    """Measure, write the JSON and the README table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", type=Path, help="an export folder (python -m export RUN --out EXPORT)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, alternating which goes first (default: 3)")
    parser.add_argument("--seconds", type=float, default=5, help="length of each wrk run (default: 5)")
    parser.add_argument("--no-readme", action="store_true", help="write the JSON only")
    args = parser.parse_args()
    if not (args.export / "model.onnx").is_file():
        parser.error(f"{args.export}: no model.onnx; give an export folder (make demo writes exports/demo-digits)")
    summary = run(args.export, args.rounds, args.seconds)
    (REPO / "benchmarks" / "results-deploy.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(table(summary))
    if not args.no_readme:
        write_readme_section("<!-- bench-deploy:begin -->", "<!-- bench-deploy:end -->", table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
