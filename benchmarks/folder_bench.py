"""Loading a folder of camera-sized photos: kerasreg's loader (first and cached) beside Keras's, in the same run.

    python benchmarks/folder_bench.py [--data DIR] [--images 2000] [--rounds 3]

The folder: the CIFAR-10 sample's real photos (DIR/cifar10-sample), each scaled up to
1600x1200 and saved as a JPEG of quality 90, 200 per class in class folders: what a
phone's photos cost to decode. Each round, in fresh processes, to 64x64x3:

- kerasreg's first load (`load_dataset("folder", ...)` with an empty cache): decoded
  on every core, JPEGs at a reduced scale, into one array; then its cached load;
- `keras.utils.image_dataset_from_directory(DIR, image_size=(64, 64))` read to the
  end, into arrays, as a user would turn it into training data.

Ratios are taken within a round; medians over rounds. Peak memory is each process's
own high-water mark (VmHWM) above what its imports hold, beside the final array plus
one decoded full-size photo per worker.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.measure import PYTHON, Target, add_data_argument, median, run_json, targets_table  # noqa: E402

CAMERA = (1600, 1200)  # width, height
SIZE = 64

_HWM = "import re; hwm = lambda: int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) / 1024"
OURS = f"""
import json, os, sys, time
{_HWM}
from kerasreg.datasets import FolderOptions, load_dataset
import PIL.Image, numpy, sklearn.model_selection  # imported before the clock, as the Keras side imports TensorFlow
before = hwm()
started = time.perf_counter()
options = FolderOptions(image_size=({SIZE}, {SIZE}), channels=3, test_split=0.2)
data = load_dataset("folder", "auto", sys.argv[1], options)
seconds = time.perf_counter() - started
n = len(data.train_labels) + len(data.test_labels)
print(json.dumps({{"seconds": seconds, "images": n, "peak_mib": hwm() - before, "base_mib": before}}))
"""
KERAS = f"""
import json, os, sys, time
{_HWM}
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras, numpy as np, tensorflow as tf
before = hwm()
started = time.perf_counter()
dataset = keras.utils.image_dataset_from_directory(
    sys.argv[1], image_size=({SIZE}, {SIZE}), batch_size=64, shuffle=False, verbose=False
)
images, labels = [], []
for x, y in dataset:
    images.append(x.numpy().astype(np.uint8)); labels.append(y.numpy())
images = np.concatenate(images)
seconds = time.perf_counter() - started
print(json.dumps({{"seconds": seconds, "images": len(images), "peak_mib": hwm() - before, "base_mib": before}}))
"""


def build_folder(data: Path, folder: Path, count: int) -> None:
    """`count` camera-sized JPEGs of the CIFAR-10 sample's photos, an equal share per class, in class folders."""
    from PIL import Image

    from kerasreg.datasets.cifar_files import CIFAR10_CLASSES, load_cifar10_files

    sample = load_cifar10_files(data / "cifar10-sample")
    per_class = count // len(CIFAR10_CLASSES)
    jobs = []
    for k, name in enumerate(CIFAR10_CLASSES):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i, index in enumerate(np.flatnonzero(sample.train_labels == k)[:per_class]):
            jobs.append((sample.train_images[index], folder / name / f"{i:04d}.jpg"))

    def save(job) -> None:
        image, path = job
        Image.fromarray(image).resize(CAMERA, Image.Resampling.BICUBIC).save(path, quality=90)

    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(save, jobs))


def one_round(folder: Path, cache: Path) -> dict:
    """kerasreg's first and cached loads and Keras's, each in its own process."""
    shutil.rmtree(cache, ignore_errors=True)
    env_cache = {"KERASREG_CACHE_DIR": str(cache)}
    results = {}
    for name, code, env in (("first", OURS, env_cache), ("cached", OURS, env_cache), ("keras", KERAS, {})):
        os.environ.update(env)
        _, out = run_json([PYTHON, "-c", code, str(folder)], timeout=1800)
        results[name] = json.loads(out.strip().splitlines()[-1])
        os.environ.pop("KERASREG_CACHE_DIR", None)
    return results


def run(data: Path, count: int, rounds: int, work: Path) -> dict:
    """Every figure and target; see the module docstring."""
    folder = work / "photos"
    build_folder(data, folder, count)
    per_round = []
    for r in range(rounds):
        per_round.append(one_round(folder, work / "cache"))
        first, cached, keras = (per_round[-1][k] for k in ("first", "cached", "keras"))
        print(
            f"  round {r + 1}: kerasreg {first['seconds']:.2f} s (cached {cached['seconds']:.3f} s), Keras "
            f"{keras['seconds']:.2f} s, on {first['images']} images; peak {first['peak_mib']:.0f} MiB",
            flush=True,
        )
    first_ratio = median(r["first"]["seconds"] / r["keras"]["seconds"] for r in per_round)
    cached_ratio = median(r["cached"]["seconds"] / r["keras"]["seconds"] for r in per_round)
    own_ratio = median(r["cached"]["seconds"] / r["first"]["seconds"] for r in per_round)
    keras_seconds = median(r["keras"]["seconds"] for r in per_round)
    workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    budget = (count * SIZE * SIZE * 3 + workers * CAMERA[0] * CAMERA[1] * 3) / 2**20
    peak = median(r["first"]["peak_mib"] for r in per_round)
    targets = [
        Target(
            f"load a folder of {count:,} camera-sized JPEGs ({CAMERA[0]}x{CAMERA[1]}) to 64x64: first load",
            f"{median(r['first']['seconds'] for r in per_round):.2f} s",
            f"keras.utils.image_dataset_from_directory {keras_seconds:.2f} s",
            first_ratio,
            "<= 1/3 (aim 1/5)",
            first_ratio <= 1 / 3,
        ),
        Target(
            "the same folder, cached (a second run, --l2 auto's refit, a study, a resume): every file read and hashed",
            f"{median(r['cached']['seconds'] for r in per_round):.3f} s",
            f"keras.utils.image_dataset_from_directory {keras_seconds:.2f} s",
            cached_ratio,
            "<= 1/10",
            cached_ratio <= 1 / 10,
        ),
        Target(
            "the cached load against kerasreg's own first load",
            f"{median(r['cached']['seconds'] for r in per_round):.3f} s",
            f"first load {median(r['first']['seconds'] for r in per_round):.2f} s",
            own_ratio,
            "<= 1/10",
            own_ratio <= 1 / 10,
        ),
        Target(
            "peak memory of the first load, above its imports",
            f"{peak:.0f} MiB (Keras's loader: {median(r['keras']['peak_mib'] for r in per_round):.0f} MiB)",
            f"the final array + one decoded photo per worker ({workers}): {budget:.0f} MiB",
            peak / budget,
            "<= 1",
            peak <= budget,
        ),
    ]
    return {"targets": [t.row() for t in targets], "rounds": per_round, "images": count}


BEGIN, END = "<!-- folders:begin -->", "<!-- folders:end -->"


def markdown(results: dict, date: str) -> str:
    """The README's table of the folder benchmark."""
    rounds = results["rounds"]
    first = ", ".join(f"{r['first']['seconds']:.2f}" for r in rounds)
    keras = ", ".join(f"{r['keras']['seconds']:.2f}" for r in rounds)
    lines = [
        f"Measured by `make bench` on {date} ({results['images']:,} photos; medians of {len(rounds)} rounds, "
        f"kerasreg's first loads {first} s, Keras's {keras} s):",
        "",
        *targets_table(results["targets"]),
    ]
    return "\n".join(lines)


def main() -> int:
    """Run the folder benchmark and print its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--images", type=int, default=2000, help="photos in the folder (default: 2000)")
    parser.add_argument("--rounds", type=int, default=3, help="repeats; medians are reported (default: 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        print(json.dumps(run(args.data, args.images, args.rounds, Path(work)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
