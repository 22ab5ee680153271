"""The scale row: an ImageNet-32-shaped set (1.28 million images of 32x32x3) trained here with the defaults.

    python benchmarks/scale_bench.py [--images 1280000] [--l2 auto] [--data DIR] [--no-readme]

The images are the 4,068 real CIFAR-10 images of the shared sample, each shifted by up to
six pixels and mirrored (338 variants, cut at --images), written as CIFAR-10 batches of
10,000: for time and memory only, never for accuracy (10 classes, not ImageNet's 1,000;
shifted copies are not new images). `python -m kerasreg.train --dataset cifar10 --source
files` trains on them with every default (`--l2 auto` included) in a process of its own,
its peak RSS its own high-water mark. Reported: the load, the steady epoch against the
numpy floor (measured on a tenth of the training part and scaled by ten: a float32 copy
of all of it would be 14 GiB), the search, the peak against the 8 GB target. Part of
`make bench-full`; writes the performance page's scale table (between the bench-scale
markers) and benchmarks/results-scale.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import add_data_argument, machine, publish, require_cifar_sample  # noqa: E402

from benchmarks.full_bench import floor, train  # noqa: E402
from benchmarks.full_size_data import _cifar_batch, shifted  # noqa: E402

IMAGENET32 = 1_281_167  # ImageNet's training images
BATCH = 10_000
RESULTS = Path(__file__).resolve().parent / "results-scale.json"
BEGIN, END = "<!-- bench-scale:begin -->", "<!-- bench-scale:end -->"
TARGET_MIB = 8 * 1000**3 / 2**20  # "under 8 GB"
SCALE_TIMEOUT = 4 * 3600  # seconds for the training run (measure.RUN_TIMEOUT is one hour)


def variants(limit: int) -> list[tuple[int, int, bool]]:
    """(dy, dx, mirrored) of each copy, nearest shifts first, enough for `limit` copies."""
    shifts = sorted(((dy, dx) for dy in range(-6, 7) for dx in range(-6, 7)), key=lambda s: (max(map(abs, s)), s))
    return [(dy, dx, mirror) for dy, dx in shifts for mirror in (False, True)][:limit]


def build(data: Path, folder: Path, n_train: int) -> tuple[np.ndarray, np.ndarray]:
    """Write `n_train` shifted and mirrored sample images as CIFAR-10 batches; the first tenth of them (the floor's)."""
    from kerasreg.datasets import load_dataset

    sample = load_dataset("cifar10", "files", data / "cifar10-sample")
    base, labels = sample.train_images, sample.train_labels
    table = variants(-(-n_train // len(base)))
    out = folder / "cifar-10-batches-py"
    out.mkdir(parents=True, exist_ok=True)
    starts = range(0, n_train, BATCH)
    for number, start in enumerate(starts, start=1):
        stop = min(start + BATCH, n_train)
        batch = images_at(base, start, stop, table)
        (out / f"data_batch_{number}").write_bytes(_cifar_batch(batch, labels[np.arange(start, stop) % len(base)]))
    (out / "test_batch").write_bytes(_cifar_batch(sample.test_images, sample.test_labels))
    (out / "batches.meta").write_bytes((data / "cifar10-sample" / "cifar-10-batches-py" / "batches.meta").read_bytes())
    print(f"wrote {n_train:,} images in {len(starts)} batches to {out}", flush=True)
    return load_first_batches(out, max(1, len(starts) // 10))


def images_at(base: np.ndarray, start: int, stop: int, table: list[tuple[int, int, bool]]) -> np.ndarray:
    """Images start..stop-1 of the set: image i is variant i // len(base) of base image i % len(base)."""
    n = len(base)
    out = np.empty((stop - start, *base.shape[1:]), np.uint8)
    for v in range(start // n, (stop - 1) // n + 1):
        lo, hi = max(start, v * n), min(stop, (v + 1) * n)
        dy, dx, mirror = table[v]
        copy = shifted(base[lo - v * n : hi - v * n], dy, dx)
        out[lo - start : hi - start] = copy[:, :, ::-1] if mirror else copy
    return out


def load_first_batches(folder: Path, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` batches' images and labels (the floor's sample)."""
    from kerasreg.datasets.cifar_files import load_cifar_batch

    parts = []
    for number in range(1, count + 1):
        with open(folder / f"data_batch_{number}", "rb") as f:
            parts.append(load_cifar_batch(f, f"data_batch_{number}"))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def run(data: Path, n_train: int, l2: str) -> dict:
    """Build the set, train it with the defaults (and `l2`), and measure the floor on a tenth of it."""
    with tempfile.TemporaryDirectory() as work:
        started = time.monotonic()
        images, labels = build(data, Path(work), n_train)
        built = time.monotonic() - started
        # --l2 auto walks 9-13 strengths of ~7 min each here: the hour every other run gets ended it at its 9th.
        ours = train("cifar10", Path(work), Path(work) / "run", "--l2", l2, timeout=SCALE_TIMEOUT)
        # The floor over the run's training part (--val-split 0.1: 0.9 of the images), from a tenth of it, times 10.
        scale = 0.9 * n_train / (0.9 * len(images))
        base = floor(images, labels) * scale
    timings = ours["timings"]
    search = ours.get("l2_search", {})
    return {
        "date": dt.date.today().isoformat(),
        "machine": machine(),
        "images": n_train,
        "l2": l2,
        "pixels_mib": n_train * 3072 / 2**20,
        "build_seconds": round(built, 1),
        "load_seconds": timings["load_data_seconds"],
        "epoch_seconds": timings["epoch_seconds_median"],
        "floor_seconds": base,
        "l2_search_seconds": timings.get("l2_search_seconds"),
        "l2_points": len([p for p in search.get("points", []) if p.get("stop_reason") != "skipped"]),
        "chosen_l2": search.get("chosen_l2"),
        "refit_epochs": ours.get("epochs_trained"),
        "process_seconds": round(ours["process_seconds"], 1),
        "peak_rss_mib": ours["peak_rss_mib"],
        "batch": ours["batch"],
        "accuracy": ours["accuracy"],
    }


def markdown(r: dict) -> str:
    """The performance page's scale table."""
    auto = r["l2"] == "auto"
    options = "every default (`--l2 auto`" if auto else f"every default but `--l2 {r['l2']}` ("
    lines = [
        f"Measured by `make bench-full` on {r['date']}: {r['machine']}. {r['images']:,} images of 32x32x3 "
        f"({r['pixels_mib'] / 1024:.1f} GiB of pixels) built from the 4,068 real images of the CIFAR-10 sample, "
        "shifted and mirrored, as CIFAR-10 batches; `python -m kerasreg.train --dataset cifar10 --source files` with "
        f"{options}{', ' if auto else ''}batch auto: {r['batch']}). For time and memory, never for accuracy.",
        "",
        "| figure | value | baseline | ratio | target | status |",
        "|---|---|---|---|---|---|",
        f"| load (read the batches into one array) | {r['load_seconds']:.1f} s | | | | |",
        f"| steady-state epoch ({r['refit_epochs']} epochs{', the refit' if auto else ''}) | "
        f"{r['epoch_seconds']:.2f} s | numpy floor {r['floor_seconds']:.2f} s | "
        f"{r['epoch_seconds'] / r['floor_seconds']:.2f} | | |",
    ]
    if auto:
        lines.append(
            f"| `--l2 auto` search ({r['l2_points']} strengths, chose {r['chosen_l2']:g}) | "
            f"{r['l2_search_seconds']:.0f} s | | | | |"
        )
    peak_ok = "PASS" if r["peak_rss_mib"] < TARGET_MIB else "MISS"
    lines += [
        f"| whole run | {r['process_seconds']:.0f} s | | | | |",
        f"| peak RSS | {r['peak_rss_mib']:,.0f} MiB | pixels {r['pixels_mib']:,.0f} MiB | "
        f"{r['peak_rss_mib'] / r['pixels_mib']:.2f} | < 8 GB ({TARGET_MIB:,.0f} MiB) | {peak_ok} |",
    ]
    return "\n".join(lines)


def main() -> int:
    """Build, train, write results-scale.json and the performance page's table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--images", type=int, default=1_280_000, help="training images (default: 1,280,000)")
    parser.add_argument("--l2", default="auto", help="the run's --l2 (default: auto, the default)")
    parser.add_argument("--no-readme", action="store_true", help="write results-scale.json only")
    args = parser.parse_args()
    require_cifar_sample(args.data)
    results = run(args.data, args.images, args.l2)
    return publish(RESULTS, results, markdown(results), (BEGIN, END), args.no_readme)


if __name__ == "__main__":
    sys.exit(main())
