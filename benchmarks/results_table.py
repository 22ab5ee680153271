"""`make results`: the README's Results table, measured on the real files beside scikit-learn on the same ones.

    python benchmarks/results_table.py [--data DIR] [--no-readme]

For digits, MNIST 8k/2k, the CIFAR-10 sample and cat vs rest on it: kerasreg with
the defaults (`--l2 auto`, `--batch-size auto`) at seeds 0, 1 and 2 (the seed also
draws the validation split); scikit-learn's `LogisticRegression()` (C=1) on the
same standardised pixels of all the training images; and `LogisticRegressionCV`
over the strengths seed 0's search visited, on its validation split, refitted
(as `--l2 auto` does). Cat vs rest is scored by balanced accuracy and ROC AUC, and
scikit-learn weighs its classes as kerasreg does (`class_weight="balanced"`).
Every figure has its 95% interval (kerasreg/reports/intervals.py), and kerasreg's seed 0
is set against LogisticRegressionCV image by image: a paired bootstrap of the difference
on the same test images, "better" or "worse" only where its interval leaves out 0.
Writes the table between the README's results markers. About 10 minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.measure import add_data_argument, write_readme_section  # noqa: E402

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
SEEDS = (0, 1, 2)


def mnist_8k_2k(data: Path):
    """The real MNIST test set: its first 8,000 images to train on, its last 2,000 to test (as the tests read it)."""
    from kerasreg.datasets import ImageDataset
    from kerasreg.datasets.idx_files import MNIST_CLASSES, read_idx

    images = read_idx(data / "mnist" / "t10k-images-idx3-ubyte.gz")[..., None]
    labels = read_idx(data / "mnist" / "t10k-labels-idx1-ubyte.gz").astype("int64")
    return ImageDataset("mnist", images[:8000], labels[:8000], images[8000:], labels[8000:], MNIST_CLASSES)


def scores(labels: np.ndarray, probabilities: np.ndarray, binary: bool) -> dict:
    """Accuracy, or for a binary task balanced accuracy and ROC AUC, of [N,K] probabilities, each with its 95%
    interval (`*_interval`), as metrics.json has them."""
    from kerasreg.datasets import BINARY, MULTICLASS
    from kerasreg.reports.metrics import compute_metrics

    metrics = compute_metrics(labels, probabilities, BINARY if binary else MULTICLASS)
    keys = ("balanced_accuracy", "roc_auc") if binary else ("accuracy",)
    return {name: metrics[name] for key in keys for name in (key, f"{key}_interval")}


def paired_difference(labels: np.ndarray, ours: np.ndarray, theirs: np.ndarray, binary: bool) -> dict:
    """Our score less theirs on the same test images ([N,K] probabilities each), with the 95% interval of a paired
    bootstrap (each resample draws the same images for both)."""
    from kerasreg.reports import intervals

    values = np.stack([ours.argmax(axis=1), theirs.argmax(axis=1)], axis=1)  # each image's two answers

    def statistic(y, v):
        if binary:  # balanced accuracy: the cat task's headline
            return intervals.balanced_accuracy(y, v[:, 0]) - intervals.balanced_accuracy(y, v[:, 1])
        return float((v[:, 0] == y).mean() - (v[:, 1] == y).mean())

    return {"difference": statistic(labels, values), "interval": intervals.bootstrap(statistic, labels, values)}


def scikit_learn(data, walked: tuple[float, ...], binary: bool) -> dict:
    """LogisticRegression() and LogisticRegressionCV (seed 0's strengths and split) on standardised pixels."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    from benchmarks.l2_search_bench import fit_cv, standardised
    from kerasreg.config import TrainConfig

    x, x_test = standardised(data)
    weight = "balanced" if binary else None
    defaults = TrainConfig()
    cv, _ = fit_cv(x, data.train_labels, walked, defaults.val_split, defaults.seed, class_weight=weight)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # its default max_iter, as a user runs it
        plain = LogisticRegression(class_weight=weight).fit(x, data.train_labels)
    return {
        "LogisticRegression": scores(data.test_labels, plain.predict_proba(x_test), binary),
        "LogisticRegressionCV": {**scores(data.test_labels, cv.predict_proba(x_test), binary), "C": float(cv.C_[0])},
        "cv_probabilities": cv.predict_proba(x_test),
    }


def one_dataset(label: str, data, work: Path) -> dict:
    """kerasreg's defaults at each seed, and scikit-learn on the same files."""
    import keras

    from kerasreg.config import TrainConfig
    from kerasreg.datasets import BINARY
    from kerasreg.model import predict_probabilities
    from kerasreg.pipeline import train_and_evaluate
    from kerasreg.run_directory import files

    binary = data.task == BINARY
    runs = []
    for seed in SEEDS:
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            metrics = train_and_evaluate(
                TrainConfig(dataset=data.name, seed=seed), work / f"{label}-{seed}", datasets=data
            )
        keys = ("balanced_accuracy", "roc_auc", "accuracy", "majority_baseline_accuracy") if binary else ("accuracy",)
        keys = (*keys, *(f"{k}_interval" for k in keys if f"{k}_interval" in metrics))
        search = metrics["l2_search"]
        walked = tuple(p["l2"] for p in search["points"])
        runs.append({**{k: metrics[k] for k in keys}, "C": search["C"], "added": search["added"], "walked": walked})
        print(f"  {label} seed {seed}: {runs[-1]} ({time.perf_counter() - started:.0f} s)", flush=True)
    theirs = scikit_learn(data, runs[0]["walked"], binary)
    model = keras.models.load_model(work / f"{label}-{SEEDS[0]}" / files.MODEL)
    ours = predict_probabilities(model, data.test_images, data.task)
    theirs["paired"] = paired_difference(data.test_labels, ours, theirs.pop("cv_probabilities"), binary)
    print(f"  {label} scikit-learn: {theirs}", flush=True)
    return {"label": label, "binary": binary, "n": (len(data.train_labels), len(data.test_labels)), "runs": runs,
            "scikit_learn": theirs}  # fmt: skip


def _figure(scored: dict, binary: bool, interval: bool = False) -> str:
    def with_interval(key: str, digits: int) -> str:
        bounds = scored.get(f"{key}_interval") if interval else None
        shown = f" [{bounds[0]:.{digits}f}, {bounds[1]:.{digits}f}]" if bounds else ""
        return f"{scored[key]:.{digits}f}{shown}"

    if binary:
        return f"balanced {with_interval('balanced_accuracy', 3)}, AUC {with_interval('roc_auc', 3)}"
    return with_interval("accuracy", 4 if not interval else 3)


def verdict(paired: dict) -> str:
    """Our score less LogisticRegressionCV's, its interval, and what the interval allows to be said."""
    low, high = paired["interval"]
    said = "better" if low > 0 else "worse" if high < 0 else "within the noise"
    return f"{paired['difference']:+.3f} [{low:+.3f}, {high:+.3f}]: {said}"


def markdown(results: list[dict], date: str) -> str:
    """The Results table."""
    lines = [
        f"Measured by `make results` on {date}. Seed 0 with its 95% interval in square brackets, then seeds 1 and 2 "
        "in round ones; scikit-learn on the same standardised pixels; `LogisticRegressionCV` over the strengths "
        "seed 0's search visited, on its validation split. The last column is seed 0's score less "
        "LogisticRegressionCV's on the same test images, with the 95% interval of a paired bootstrap: "
        '"better" or "worse" only where it leaves out 0.',
        "",
        "| dataset | train / test | kerasreg (defaults) | chosen C | scikit-learn LogisticRegression() | "
        "scikit-learn LogisticRegressionCV, same strengths and split | kerasreg less LogisticRegressionCV |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        first, others = r["runs"][0], r["runs"][1:]
        ours = _figure(first, r["binary"], True) + " (" + "; ".join(_figure(o, r["binary"]) for o in others) + ")"
        if r["binary"]:
            ours += f"; always the majority: accuracy {first['majority_baseline_accuracy']:.3f}"
        chosen = f"{first['C']:.3g}" + (
            f" (walked past the grid: {len(first['added'])} points)" if first["added"] else ""
        )
        cv = r["scikit_learn"]["LogisticRegressionCV"]
        lines.append(
            f"| {r['label']} | {r['n'][0]:,} / {r['n'][1]:,} | {ours} | {chosen} | "
            f"{_figure(r['scikit_learn']['LogisticRegression'], r['binary'], True)} | "
            f"{_figure(cv, r['binary'], True)} (C {cv['C']:.3g}) | {verdict(r['scikit_learn']['paired'])} |"
        )
    return "\n".join(lines)


def main() -> int:
    """Measure every dataset; print the table and write it into the README."""
    import datetime as dt

    from kerasreg.datasets import load_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--no-readme", action="store_true", help="print the table only")
    args = parser.parse_args()
    cifar = args.data / "cifar10-sample"
    datasets = [
        ("digits", load_dataset("digits")),
        ("MNIST (first 8k / last 2k of the official test set)", mnist_8k_2k(args.data)),
        ("CIFAR-10 sample (official pickles, 10 classes)", load_dataset("cifar10", "files", cifar)),
        ("cat vs rest on the CIFAR-10 sample", load_dataset("cat", "files", cifar)),
    ]
    with tempfile.TemporaryDirectory() as work:
        results = [one_dataset(label, data, Path(work)) for label, data in datasets]
    table = markdown(results, dt.date.today().isoformat())
    print(table)
    if not args.no_readme:
        write_readme_section(BEGIN, END, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
