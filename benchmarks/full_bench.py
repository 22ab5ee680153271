"""`make bench-full`: training at the real datasets' sizes, its memory, and how its cost grows.

    python benchmarks/full_bench.py [--data DIR] [--rounds 3] [--no-readme]

On MNIST's 60,000 x 28x28x1 and CIFAR-10's 50,000 x 32x32x3 training images, built
from the shared real images by shifts and mirrors (benchmarks/full_size_data.py:
for time and memory only, never accuracy), each figure beside its baseline in the
same run:

- the steady-state epoch of `python -m kerasreg.train --l2 0.01` (the auto batch:
  1024 at these sizes) against the numpy floor: one full-batch forward and backward
  pass over the same training matrix (float32, the features the epoch reads);
- `--l2 auto` (search and refit, `train_seconds`) against `LogisticRegressionCV`
  over the strengths the search visited, on the same validation split
  (l2_search_bench.sklearn_search);
- the peak RSS of the `--l2 0.01` training process against TensorFlow's own
  footprint (a process that imports it and builds and compiles the same model on
  no data) plus twice the float32 bytes of all the training images;
- the epoch at 8k, 15k, 30k and the full size (`--batch-size 1024`), each beside
  the floor on the same images.

Writes benchmarks/results-full.json and the README's full-size table (between the
bench-full markers), then runs benchmarks/memory_bench.py (the memory table),
benchmarks/small_data_bench.py (the small-data table), benchmarks/scale_bench.py (1.28
million images with the defaults), benchmarks/shard_bench.py (a cluster worker's peak
against a single process's) and benchmarks/quasi_newton_bench.py (L-BFGS-B along the
search's path). About three to three and a half hours, most of it the scale row's search
and LogisticRegressionCV.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.full_size_data import CIFAR_FULL, MNIST_FULL, cifar_full, mnist_full  # noqa: E402
from benchmarks.measure import (  # noqa: E402
    PYTHON,
    REPO,
    RUN_TIMEOUT,
    Target,
    add_data_argument,
    machine,
    median,
    read_json,
    run_measured,
    targets_table,
    write_readme_section,
)
from benchmarks.train_bench import numpy_floor_seconds  # noqa: E402

RESULTS = REPO / "benchmarks" / "results-full.json"
BEGIN, END = "<!-- bench-full:begin -->", "<!-- bench-full:end -->"
SIZES = (8_000, 15_000, 30_000)  # and the full size
_FOOTPRINT = """
import resource
import keras
from kerasreg.model import build_model
model = build_model({shape}, 10, "multiclass", mean=None, variance=None)
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.optimizer.build(model.trainable_variables)
"""


def tensorflow_footprint_mib(shape: tuple[int, int, int], rounds: int = 3) -> float:
    """Median peak RSS of processes that import TensorFlow and build and compile the model on no data."""
    return median(run_measured([PYTHON, "-c", _FOOTPRINT.format(shape=shape)])[2] for _ in range(rounds))


def train(dataset: str, folder: Path, out: Path, *args: str, timeout: float = RUN_TIMEOUT) -> dict:
    """`python -m kerasreg.train` on a folder of files; metrics.json, wall seconds, peak RSS (MiB) and its output."""
    shutil.rmtree(out, ignore_errors=True)
    command = [PYTHON, "-m", "kerasreg.train", "--dataset", dataset, "--source", "files", "--data-dir", str(folder)]
    wall, printed, peak = run_measured([*command, *args, "--out", str(out)], timeout=timeout)
    batch = read_json(out / "config.json")["global_batch_size"]
    return {**read_json(out / "metrics.json"), "process_seconds": wall, "peak_rss_mib": peak, "batch": batch}


def floor(images: np.ndarray, labels: np.ndarray, fraction: float = 0.9) -> float:
    """The numpy floor over the training part of a --val-split 0.1 run (`fraction` of the images), as float32."""
    n = int(len(images) * fraction)
    x = images[:n].reshape(n, -1).astype(np.float32) / 255.0
    return numpy_floor_seconds(x, labels[:n].astype(np.int64), repeats=10)


def one_dataset(name: str, dataset: str, build, data: Path, work: Path, rounds: int) -> tuple[dict, list[Target]]:
    """Every figure of one full-size dataset; its figures and table rows."""
    from benchmarks.l2_search_bench import sklearn_search
    from kerasreg.config import TrainConfig
    from kerasreg.datasets import load_dataset

    folder = work / f"{dataset}-full"
    images, labels = build(data, folder)
    shape = tuple(images.shape[1:]) if images.ndim == 4 else (*images.shape[1:], 1)
    feature_mib = images.size * 4 / 2**20
    print(f"{name}: {len(images):,} images {shape}, {feature_mib:.0f} MiB of float32 features", flush=True)
    footprint = tensorflow_footprint_mib(shape)
    rows = []
    for r in range(rounds):
        ours = train(dataset, folder, work / "run", "--l2", "0.01")
        rows.append({"ours": ours, "floor": floor(images, labels)})
        print(
            f"  round {r + 1}: epoch {ours['timings']['epoch_seconds_median'] * 1e3:.1f} ms, floor "
            f"{rows[-1]['floor'] * 1e3:.1f} ms, peak RSS {ours['peak_rss_mib']:.0f} MiB, process "
            f"{ours['process_seconds']:.1f} s",
            flush=True,
        )
    epoch = median(r["ours"]["timings"]["epoch_seconds_median"] for r in rows)
    epoch_ratio = median(r["ours"]["timings"]["epoch_seconds_median"] / r["floor"] for r in rows)
    peak = median(r["ours"]["peak_rss_mib"] for r in rows)
    allowed = footprint + 2 * feature_mib
    auto = train(dataset, folder, work / "auto")
    walked = tuple(p["l2"] for p in auto["l2_search"]["points"])
    print(f"  --l2 auto: {auto['train_seconds']:.1f} s, peak RSS {auto['peak_rss_mib']:.0f} MiB", flush=True)
    loaded = load_dataset(dataset, "files", folder)
    theirs = sklearn_search(loaded, walked, TrainConfig().val_split, TrainConfig().seed)
    print(f"  LogisticRegressionCV: {theirs['seconds']:.1f} s", flush=True)
    search_ratio = auto["train_seconds"] / theirs["seconds"]
    growth = []
    for size in (*SIZES, len(images)):
        sized = work / f"{dataset}-{size}"
        build(data, sized, size)
        run = train(dataset, sized, work / "sized", "--l2", "0.01", "--batch-size", "1024", "--epochs", "12")
        seconds = run["timings"]["epoch_seconds_median"]
        base = floor(images[:size], labels[:size])
        growth.append({"images": size, "epoch_seconds": seconds, "floor_seconds": base, "ratio": seconds / base})
        print(f"  {size:,} images: epoch {seconds * 1e3:.1f} ms, floor {base * 1e3:.1f} ms", flush=True)
    targets = [
        Target(
            f"{name}: steady-state epoch (--l2 0.01, auto batch {rows[0]['ours']['batch']})",
            f"{epoch * 1e3:.1f} ms",
            f"numpy floor {median(r['floor'] for r in rows) * 1e3:.1f} ms",
            epoch_ratio,
            "<= 1.5",
            epoch_ratio <= 1.5,
        ),
        Target(
            f"{name}: --l2 auto search + refit ({len(walked)} strengths)",
            f"{auto['train_seconds']:.1f} s (process {auto['process_seconds']:.1f} s)",
            f"LogisticRegressionCV, same strengths and split: {theirs['seconds']:.1f} s",
            search_ratio,
            "<= 0.1",
            search_ratio <= 0.1,
        ),
        Target(
            f"{name}: peak RSS of the --l2 0.01 run",
            f"{peak:.0f} MiB (--l2 auto: {auto['peak_rss_mib']:.0f} MiB)",
            f"TensorFlow's footprint {footprint:.0f} MiB + 2 x {feature_mib:.0f} MiB of features = {allowed:.0f} MiB",
            peak / allowed,
            "<= 1",
            peak <= allowed,
        ),
    ]
    figures = {
        "images": len(images),
        "feature_mib": feature_mib,
        "tensorflow_footprint_mib": footprint,
        "rounds": [
            {"floor": r["floor"], **{k: r["ours"][k] for k in ("timings", "peak_rss_mib", "process_seconds")}}
            for r in rows
        ],
        "auto": {k: auto[k] for k in ("train_seconds", "process_seconds", "peak_rss_mib", "accuracy")},
        "walked": walked,
        "LogisticRegressionCV": theirs,
        "growth": growth,
    }
    return figures, targets


def markdown(results: dict) -> str:
    """The README's full-size section: the targets, then how the epoch grows with the data."""
    lines = [
        f"Measured by `make bench-full` on {results['date']}: {results['machine']}. Data sets of the real sizes "
        "built from the shared real images (shifted, mirrored): for time and memory, never for accuracy.",
        "",
        *targets_table(results["targets"]),
    ]
    lines += [
        "",
        "How the epoch grows with the data (`--l2 0.01 --batch-size 1024`, median epoch of 12; the floor on the "
        "same images):",
        "",
        "| images | MNIST epoch | floor | ratio | CIFAR-10 epoch | floor | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    mnist, cifar = results["mnist"]["growth"], results["cifar10"]["growth"]
    for m, c in zip(mnist, cifar, strict=True):
        size = f"{m['images']:,}" if m["images"] == c["images"] else f"{m['images']:,} / {c['images']:,}"
        cells = [
            f"{r['epoch_seconds'] * 1e3:.1f} ms | {r['floor_seconds'] * 1e3:.1f} ms | {r['ratio']:.2f}" for r in (m, c)
        ]
        lines.append(f"| {size} | {' | '.join(cells)} |")
    return "\n".join(lines)


def main() -> int:
    """Run both datasets; write results-full.json and the README section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--rounds", type=int, default=3, help="repeats of the --l2 0.01 run (default: 3)")
    parser.add_argument("--no-readme", action="store_true", help="write results-full.json only")
    args = parser.parse_args()
    for needed in ("mnist/t10k-images-idx3-ubyte.gz", "cifar10-sample/cifar-10-batches-py/test_batch"):
        if not (args.data / needed).is_file():
            sys.exit(f"no {needed} in {args.data}; pass --data DIR or set KERASREG_TEST_DATA")
    started = time.monotonic()
    results = {"date": dt.date.today().isoformat(), "machine": machine(), "sizes": [MNIST_FULL, CIFAR_FULL]}
    targets = []
    with tempfile.TemporaryDirectory() as work:
        for key, name, build in (("mnist", "MNIST 60k", mnist_full), ("cifar10", "CIFAR-10 50k", cifar_full)):
            results[key], rows = one_dataset(name, key, build, args.data, Path(work), args.rounds)
            targets += rows
    results["targets"] = [t.row() for t in targets]
    results["seconds"] = round(time.monotonic() - started, 1)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    section = markdown(results)
    print(section)
    if not args.no_readme:
        write_readme_section(BEGIN, END, section)
    # Then the memory, small-data, scale, shard and quasi-Newton tables, each in a process of its own (they write
    # their own sections).
    scripts = ("memory_bench.py", "small_data_bench.py", "scale_bench.py", "shard_bench.py", "quasi_newton_bench.py")
    for script in scripts:
        extra = ["--data", str(args.data)] if script != "memory_bench.py" else []
        subprocess.run([sys.executable, str(Path(__file__).parent / script), *extra,
                        *(["--no-readme"] if args.no_readme else [])], check=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
