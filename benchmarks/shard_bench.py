"""The shard row: each worker of a 2-worker cluster against a single process, peak RSS on the same CIFAR-10 batches.

    python benchmarks/shard_bench.py [--images 1280000] [--epochs 3] [--data DIR] [--no-readme]

The batches are scale_bench.py's ImageNet-32-shaped set (real CIFAR-10 sample images,
shifted and mirrored). The same `python -m kerasreg.train --dataset cifar10 --source files
--l2 0.01` runs once alone and once as both workers of a cluster on 127.0.0.1 (TF_CONFIG);
each process's peak is the high-water mark (VmHWM) of its whole tree, read every 10 ms: a
cluster worker trains in a child its command supervises. The data part of a peak is the
peak less the same kind of process's on 2,000 images (TensorFlow, the model, the imports of
the evaluation): the issue's target is each worker's at most 0.6 of the single process's.
What a run holds beside its pixels for the batch in flight (a step's gathered and
standardised copies, the evaluation's chunks, and what the allocator keeps of them) does
not shrink with a shard, so the ratio falls as the set grows: 0.62 and 0.70 at 300,000
images, 0.55 and 0.58 at 1.28 million (2026-12-07). Part of `make
bench-full`; writes the clusters page's shard table (between the bench-shard markers) and
benchmarks/results-shard.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import (  # noqa: E402
    REPO,
    add_data_argument,
    free_ports,
    machine,
    publish,
    require_cifar_sample,
    tf_config,
    tree_high_water_mib,
)

from benchmarks.full_bench import PYTHON  # noqa: E402
from benchmarks.scale_bench import build  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results-shard.json"
BEGIN, END = "<!-- bench-shard:begin -->", "<!-- bench-shard:end -->"
TARGET = 0.6  # a worker's data part against the single process's
FOOTPRINT_IMAGES = 2_000


def run_tree_measured(commands: list[list[str]], envs: list[dict], timeout: float = 3600) -> list[dict]:
    """Run `commands` at once to completion; for each its wall seconds and the peak RSS (MiB) of any process of its
    tree (raises with the output of one that fails)."""
    base = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    with tempfile.TemporaryDirectory() as logs:
        outs = [open(Path(logs) / f"{i}.log", "w+") for i in range(len(commands))]
        started = time.perf_counter()
        processes = [
            subprocess.Popen(c, stdout=o, stderr=subprocess.STDOUT, text=True, env={**base, **e}, cwd=REPO)
            for c, o, e in zip(commands, outs, envs, strict=True)
        ]
        peaks, walls = [0.0] * len(processes), [0.0] * len(processes)
        deadline = time.monotonic() + timeout
        while any(p.poll() is None for p in processes):
            for i, p in enumerate(processes):
                if p.poll() is None:
                    peaks[i] = max(peaks[i], tree_high_water_mib(p.pid))
                    walls[i] = time.perf_counter() - started
            if time.monotonic() > deadline:
                for p in processes:
                    p.kill()
                raise RuntimeError(f"{commands[0]} ran past {timeout} s")
            time.sleep(0.01)
        for out, p in zip(outs, processes, strict=True):
            out.seek(0)
            if p.returncode != 0:
                raise RuntimeError(f"{' '.join(p.args)} failed ({p.returncode}): {out.read()[-3000:]}")
            out.close()
    return [{"seconds": round(w, 1), "peak_rss_mib": round(peak, 1)} for w, peak in zip(walls, peaks, strict=True)]


def run(data: Path, n_train: int, epochs: int) -> dict:
    """Build the batches, train them alone and as a 2-worker cluster; the peaks, and the same on 2,000 images (the
    footprint of each kind of process: a cluster worker's holds more than one process's, its collectives and
    the child it trains in)."""
    measured = {}
    for name, images in (("footprint", FOOTPRINT_IMAGES), ("run", n_train)):
        with tempfile.TemporaryDirectory() as work:
            build(data, Path(work), images)
            command = [PYTHON, "-m", "kerasreg.train", "--dataset", "cifar10", "--source", "files", "--data-dir", work]
            command += ["--l2", "0.01", "--epochs", str(epochs)]
            alone = run_tree_measured([[*command, "--out", f"{work}/alone"]], [{}])[0]
            ports = free_ports(2)
            env = [{"TF_CONFIG": tf_config(ports, i)} for i in (0, 1)]
            measured[name] = {"alone": alone, "workers": run_tree_measured([[*command, "--out", f"{work}/c"]] * 2, env)}
    return {
        "date": dt.date.today().isoformat(),
        "machine": machine(),
        "images": n_train,
        "epochs": epochs,
        "pixels_mib": round(n_train * 3072 / 2**20, 1),
        **measured["run"],
        "footprint": measured["footprint"],
    }


def markdown(r: dict) -> str:
    """The clusters page's shard table."""
    fixed = r["footprint"]
    data_alone = r["alone"]["peak_rss_mib"] - fixed["alone"]["peak_rss_mib"]
    lines = [
        f"Measured by `make bench-full` on {r['date']}: {r['machine']}. {r['images']:,} images of 32x32x3 "
        f"({r['pixels_mib']:,.0f} MiB of pixels) as CIFAR-10 batches (scale_bench.py's); `python -m kerasreg.train "
        f"--dataset cifar10 --source files --l2 0.01 --epochs {r['epochs']}` alone, then as both workers of a "
        f"cluster on this machine. Data part: the peak less the same process's on {FOOTPRINT_IMAGES:,} images "
        "(TensorFlow, the model, and in a cluster its collectives).",
        "",
        "| process | peak RSS | on 2,000 images | data part | of the single process's | target | status |",
        "|---|---|---|---|---|---|---|",
        f"| single process | {r['alone']['peak_rss_mib']:,.0f} MiB | {fixed['alone']['peak_rss_mib']:,.0f} MiB | "
        f"{data_alone:,.0f} MiB | 1.00 | | |",
    ]
    for i, (worker, small) in enumerate(zip(r["workers"], fixed["workers"], strict=True)):
        data = worker["peak_rss_mib"] - small["peak_rss_mib"]
        status = "PASS" if data <= TARGET * data_alone else "MISS"
        lines.append(
            f"| worker {i} of 2 | {worker['peak_rss_mib']:,.0f} MiB | {small['peak_rss_mib']:,.0f} MiB | "
            f"{data:,.0f} MiB | {data / data_alone:.2f} | <= {TARGET} | {status} |"
        )
    return "\n".join(lines)


def main() -> int:
    """Build, train, write results-shard.json and the clusters page's table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--images", type=int, default=1_280_000, help="training images (default: 1,280,000)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of each run (default: 3)")
    parser.add_argument("--no-readme", action="store_true", help="write results-shard.json only")
    args = parser.parse_args()
    require_cifar_sample(args.data)
    results = run(args.data, args.images, args.epochs)
    return publish(RESULTS, results, markdown(results), (BEGIN, END), args.no_readme)


if __name__ == "__main__":
    sys.exit(main())
