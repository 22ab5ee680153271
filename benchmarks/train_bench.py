"""Training speed and accuracy against scikit-learn and a numpy floor, on real MNIST 8k/2k.

    python benchmarks/train_bench.py [--data DIR] [--rounds 3]

DIR holds the official MNIST test set (../shared/data/mnist: t10k-*-ubyte.gz). Its
first 8,000 images become the training files and its last 2,000 the test files
of a folder in the MNIST distribution format, and `python -m kerasreg.train
--dataset mnist --source files` trains on them as a user would. Each round runs,
one after the other on the same machine:

- the numpy floor: a full-batch forward and backward pass of softmax regression
  over the same 7,200 x 784 training matrix (the arithmetic of one epoch);
- scikit-learn's `LogisticRegression()` (lbfgs) fit on the 8,000 training images
  scaled to [0, 1], as a user would fit it, and its test accuracy (kerasreg fits
  7,200 of them and holds 800 out for early stopping);
- kerasreg's command line with `--l2 0.01 --batch-size 1024`: one strength, as
  LogisticRegression() fits one C, at the batch these figures were first measured
  at (the auto batch is 256 for 7,200 images; `--l2 auto` is l2_search_bench.py's).

Ratios are taken within a round, then the median over rounds is reported.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.measure import PYTHON, Target, add_data_argument, median, read_json, run_json  # noqa: E402


def read_idx_gz(path: Path) -> np.ndarray:
    """An IDX file of unsigned bytes (gzip)."""
    data = gzip.decompress(path.read_bytes())
    ndim = data[3]
    shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write uint8 `array` as an IDX file (the MNIST distribution format)."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, np.uint8).tobytes())


def mnist_8k_2k_folder(data: Path, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Write MNIST 8k/2k as distribution files in `folder`; the images and labels."""
    images = read_idx_gz(data / "mnist" / "t10k-images-idx3-ubyte.gz")
    labels = read_idx_gz(data / "mnist" / "t10k-labels-idx1-ubyte.gz")
    write_idx(folder / "train-images-idx3-ubyte", images[:8000])
    write_idx(folder / "train-labels-idx1-ubyte", labels[:8000])
    write_idx(folder / "t10k-images-idx3-ubyte", images[8000:])
    write_idx(folder / "t10k-labels-idx1-ubyte", labels[8000:])
    return images, labels


def numpy_floor_seconds(x: np.ndarray, y: np.ndarray, repeats: int = 30) -> float:
    """Median seconds of one full-batch softmax-regression forward + backward pass over x [N,D]."""
    w = np.zeros((x.shape[1], 10), np.float32)
    b = np.zeros(10, np.float32)
    onehot = np.eye(10, dtype=np.float32)[y]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        z = x @ w + b
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        g = (p - onehot) / len(x)
        _ = (x.T @ g, g.sum(axis=0))
        times.append(time.perf_counter() - start)
    return median(times)


def sklearn_fit(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> tuple[float, float]:
    """Seconds of LogisticRegression().fit and its test accuracy."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # lbfgs stops at max_iter=100, as a user would see
        model = LogisticRegression().fit(x, y)
    seconds = time.perf_counter() - start
    return seconds, float((model.predict(x_test) == y_test).mean())


def kerasreg_train(args: list[str], out: Path) -> dict:
    """Run `python -m kerasreg.train ARGS --out OUT`; its metrics.json, the process's wall seconds and its output."""
    shutil.rmtree(out, ignore_errors=True)
    wall, printed = run_json([PYTHON, "-m", "kerasreg.train", *args, "--out", str(out)])
    return {**read_json(out / "metrics.json"), "process_seconds": wall, "printed": printed}


def own_seconds(ours: dict) -> float:
    """A run's wall time outside TensorFlow's import (with choosing the strategy) and the training itself."""
    return ours["process_seconds"] - ours["timings"]["start_tensorflow_seconds"] - ours["train_seconds"]


def digits_demo(work: Path) -> tuple[dict, Target]:
    """`make demo`'s training (digits, the defaults) beside LogisticRegressionCV on the same strengths and split."""
    from benchmarks.l2_search_bench import sklearn_search
    from kerasreg.config import TrainConfig
    from kerasreg.datasets import load_dataset

    ours = kerasreg_train(["--dataset", "digits"], work / "run-digits")
    search = ours["l2_search"]
    walked = tuple(p["l2"] for p in search["points"])
    defaults = TrainConfig()
    theirs = sklearn_search(load_dataset("digits"), walked, defaults.val_split, defaults.seed)
    warned = "warning" in ours["printed"]
    figures = {k: ours[k] for k in ("accuracy", "epochs_trained", "train_seconds", "stop_reason")}
    figures.update(added=search["added"], warned=warned, sklearn=theirs)
    target = Target(
        "digits demo (the defaults: l2 search, then refit): accuracy, walk past the grid, warning",
        f"{ours['accuracy']:.4f}, C {search['C']:.3g}, {len(search['added'])} points added, "
        f"{'a warning' if warned else 'no warning'}",
        f"LogisticRegressionCV, same strengths and split: {theirs['accuracy']:.4f}, C {theirs['C']:.3g}",
        None,
        ">= LogisticRegressionCV, no warning",
        ours["accuracy"] >= theirs["accuracy"] and not warned,
    )
    return figures, target


def run(data: Path, rounds: int, work: Path) -> dict:
    """Every training figure and target; see the module docstring."""
    from kerasreg.datasets.views import split_validation

    folder = work / "mnist-8k-2k"
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = mnist_8k_2k_folder(data, folder)
    (train_x, train_y), _ = split_validation(images[:8000, ..., None], labels[:8000].astype(np.int64), 0.1, 0)
    x = train_x.reshape(len(train_x), -1).astype(np.float32) / 255.0
    x_all = images[:8000].reshape(8000, -1).astype(np.float32) / 255.0
    x_test = images[8000:].reshape(2000, -1).astype(np.float32) / 255.0
    y_test = labels[8000:]
    per_round = []
    for r in range(rounds):
        floor = numpy_floor_seconds(x, train_y)
        sk_seconds, sk_accuracy = sklearn_fit(x_all, labels[:8000], x_test, y_test)
        one_strength = ["--l2", "0.01", "--batch-size", "1024"]
        ours = kerasreg_train(
            ["--dataset", "mnist", "--source", "files", "--data-dir", str(folder), *one_strength], work / "run-mnist"
        )
        per_round.append({"floor": floor, "sk_seconds": sk_seconds, "sk_accuracy": sk_accuracy, "ours": ours})
        print(
            f"  round {r + 1}: floor {floor * 1e3:.1f} ms, sklearn fit {sk_seconds:.2f} s ({sk_accuracy:.4f}), "
            f"kerasreg train {ours['train_seconds']:.3f} s, "
            f"epoch {ours['timings']['steady_epoch_seconds'] * 1e3:.1f} ms "
            f"(fixed {ours['timings']['fixed_seconds_per_epoch'] * 1e3:.2f} ms) "
            f"({ours['accuracy']:.4f}, {ours['epochs_trained']} epochs)",
            flush=True,
        )
    digits, digits_target = digits_demo(work)
    train_ratio = median(r["ours"]["train_seconds"] / r["sk_seconds"] for r in per_round)
    epoch_ratio = median(r["ours"]["timings"]["steady_epoch_seconds"] / r["floor"] for r in per_round)
    fixed = median(r["ours"]["timings"]["fixed_seconds_per_epoch"] for r in per_round)
    call = median(r["ours"]["timings"]["compiled_call_seconds"] for r in per_round)
    accuracy = median(r["ours"]["accuracy"] for r in per_round)
    sk_accuracy = median(r["sk_accuracy"] for r in per_round)
    typical = sorted(per_round, key=lambda r: r["ours"]["train_seconds"])[len(per_round) // 2]["ours"]
    targets = [
        Target(
            "train MNIST 8k: train_seconds",
            f"{median(r['ours']['train_seconds'] for r in per_round):.3f} s",
            f"scikit-learn fit {median(r['sk_seconds'] for r in per_round):.2f} s",
            train_ratio,
            "<= 0.25 (aim 0.10)",
            train_ratio <= 0.25,
        ),
        Target(
            "train MNIST 8k: steady-state epoch, callbacks included",
            f"{median(r['ours']['timings']['steady_epoch_seconds'] for r in per_round) * 1e3:.1f} ms",
            f"numpy floor {median(r['floor'] for r in per_round) * 1e3:.1f} ms",
            epoch_ratio,
            "<= 2.5",
            epoch_ratio <= 2.5,
        ),
        Target(
            "train MNIST 8k: an epoch's fixed cost (everything outside its compiled call: inputs, logs, callbacks)",
            f"{fixed * 1e3:.2f} ms",
            f"the compiled call {call * 1e3:.1f} ms",
            fixed / call,
            "<= 1 ms",
            fixed <= 1e-3,
        ),
        Target(
            "train MNIST 8k: test accuracy",
            f"{accuracy:.4f}",
            f"scikit-learn {sk_accuracy:.4f}",
            None,
            ">= 0.92",
            accuracy >= 0.92,
        ),
        digits_target,
        Target(
            "train MNIST 8k: the command's own time (outside TensorFlow's import and the training)",
            f"{median(own_seconds(r['ours']) for r in per_round):.2f} s "
            f"(process {median(r['ours']['process_seconds'] for r in per_round):.2f} s)",
            f"TensorFlow's import {median(r['ours']['timings']['start_tensorflow_seconds'] for r in per_round):.2f} s",
            None,
            "<= 1 s",
            median(own_seconds(r["ours"]) for r in per_round) <= 1.0,
        ),
    ]
    keep = ("accuracy", "epochs_trained", "train_seconds", "timings", "process_seconds")
    rounds = [{**r, "ours": {k: r["ours"][k] for k in keep}} for r in per_round]
    profile = {k: typical[k] for k in keep}
    return {"targets": [t.row() for t in targets], "rounds": rounds, "profile": profile, "digits": digits}


def main() -> int:
    """Run the training benchmark and print its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--rounds", type=int, default=3, help="repeats; medians are reported (default: 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        print(json.dumps(run(args.data, args.rounds, Path(work)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
