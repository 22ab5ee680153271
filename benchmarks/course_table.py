"""`make course`: the README's "The course, reproduced, then beaten" and calibration tables, on the real files.

    python benchmarks/course_table.py [--data DIR] [--no-readme]

On the course's catvnoncat files: the notebook's recipe (`--preset course`), that
recipe with each of kerasreg's default choices turned on alone, kerasreg's defaults
(seeds 0, 1, 2: the seed draws the validation split), and scikit-learn's
LogisticRegressionCV (its defaults, 5 folds, on the same standardised pixels). Then
what the probabilities are worth (Brier score, ECE) for catvnoncat and for cat vs
rest on the CIFAR-10 sample, with and without `--balance class_weight`, and their
reliability diagrams copied to docs/. About 5 minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.measure import REPO, add_data_argument, write_readme_section  # noqa: E402

COURSE_BEGIN, COURSE_END = "<!-- course:begin -->", "<!-- course:end -->"
CALIBRATION_BEGIN, CALIBRATION_END = "<!-- calibration:begin -->", "<!-- calibration:end -->"
IMAGES = REPO / "docs"
SEEDS = (0, 1, 2)

# Each of kerasreg's defaults that the notebook's recipe does not have, turned on alone over the recipe.
ABLATION = (
    ("pixels standardised per pixel (`--normalize per-pixel`)", {"normalize": "per-pixel"}),
    ("weights from Glorot, not zeros (`--init glorot`)", {"init": "glorot"}),
    ("Adam at 0.01, not gradient descent at 0.005 (`--optimizer adam`)", {"optimizer": "adam", "learning_rate": None}),
    ("mini-batches of 32, not all 209 (`--batch-size auto`)", {"batch_size": "auto"}),
    ("classes weighed equally (`--balance class_weight`)", {"balance": "class_weight"}),
    ("L2 chosen on a validation split (`--l2 auto --val-split 0.1`)", {"l2": "auto", "val_split": 0.1}),
    (
        "early stopping on a validation split, 100 epochs (`--val-split 0.1 --epochs 100`)",
        {"val_split": 0.1, "epochs": 100},
    ),
    ("the step halved on a plateau, stop once converged (`--lr-schedule plateau --tol 1e-4`)",
     {"lr_schedule": "plateau", "tol": 1e-4}),
)  # fmt: skip


def train(config, data, work: Path, name: str) -> dict:
    """One quiet kerasreg run; its metrics and where it ran."""
    from kerasreg.pipeline import train_and_evaluate

    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        metrics = train_and_evaluate(config, work / name, datasets=data)
    metrics["run_dir"] = str(work / name)
    print(f"  {name}: test {metrics['accuracy']:.3f} train {metrics['train_accuracy']:.4f} "
          f"({time.perf_counter() - started:.1f} s)", flush=True)  # fmt: skip
    return metrics


def sklearn_cv(data) -> dict:
    """LogisticRegressionCV() with its defaults (Cs=10, 5 folds, lbfgs), max_iter raised until it converges."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegressionCV

    from benchmarks.l2_search_bench import standardised

    x, x_test = standardised(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        warnings.simplefilter("ignore", FutureWarning)
        model = LogisticRegressionCV(max_iter=5000).fit(x, data.train_labels)
    from kerasreg.reports.intervals import wilson

    probabilities = model.predict_proba(x_test)
    picked = probabilities[np.arange(len(data.test_labels)), data.test_labels]
    right = int((probabilities.argmax(axis=1) == data.test_labels).sum())
    return {
        "accuracy": right / len(data.test_labels),
        "accuracy_interval": wilson(right, len(data.test_labels)),
        "loss": float(-np.log(np.clip(picked, 1e-7, 1.0)).mean()),
        "train_accuracy": float((model.predict(x) == data.train_labels).mean()),
        "C": float(model.C_[0]),
    }


def _interval(metrics: dict) -> str:
    """The test accuracy's 95% Wilson interval, in percent."""
    low, high = metrics["accuracy_interval"]
    return f"{low:.0%}-{high:.0%}"


def course_table(data, work: Path) -> tuple[str, dict]:
    """The comparison on catvnoncat, as markdown; and the runs whose probabilities the calibration table shows."""
    from kerasreg.config import TrainConfig

    recipe = train(TrainConfig.resolve(preset="course", dataset="catvnoncat"), data, work, "recipe")
    rows = [("the notebook's recipe (`--preset course`)", recipe)]
    for label, change in ABLATION:
        rows.append((f"recipe + {label}", train(TrainConfig.resolve(preset="course", dataset="catvnoncat", **change),
                                                data, work, f"recipe+{next(iter(change))}")))  # fmt: skip
    defaults = [train(TrainConfig(dataset="catvnoncat", seed=s), data, work, f"defaults-{s}") for s in SEEDS]
    theirs = sklearn_cv(data)
    print(f"  LogisticRegressionCV: {theirs}", flush=True)
    lines = [
        "| recipe | test accuracy (50) | its 95% interval | test loss | train accuracy (209) | epochs |",
        "|---|---|---|---|---|---|",
    ]
    for label, m in rows:
        lines.append(
            f"| {label} | {m['accuracy']:.0%} | {_interval(m)} | {m['loss']:.3f} | {m['train_accuracy']:.2%} | "
            f"{m['epochs_trained']} |"
        )
    others = ", ".join(f"{m['accuracy']:.0%}" for m in defaults[1:])
    lines.append(
        f"| **kerasreg's defaults** (seed 0; seeds 1, 2: {others}) | **{defaults[0]['accuracy']:.0%}** | "
        f"{_interval(defaults[0])} | {defaults[0]['loss']:.3f} | {defaults[0]['train_accuracy']:.2%} | "
        f"{defaults[0]['epochs_trained']} |"
    )
    lines.append(
        f"| scikit-learn `LogisticRegressionCV(max_iter=5000)` on the standardised pixels (chose C "
        f"{theirs['C']:.3g}) | {theirs['accuracy']:.0%} | {_interval(theirs)} | {theirs['loss']:.3f} | "
        f"{theirs['train_accuracy']:.2%} | |"
    )
    return "\n".join(lines), {"recipe": recipe, "defaults": defaults[0]}


def calibration_table(course_runs: dict, course, cat, work: Path) -> str:
    """Brier and ECE of catvnoncat's recipe and defaults, and of cat vs rest with and without class weights."""
    from kerasreg.config import TrainConfig
    from kerasreg.reports.metrics import compute_metrics

    runs = [
        ("catvnoncat, the notebook's recipe", course_runs["recipe"], course),
        ("catvnoncat, kerasreg's defaults", course_runs["defaults"], course),
        ("cat vs rest, `--balance none`", train(TrainConfig(dataset="cat", balance="none"), cat, work, "cat"), cat),
        ("cat vs rest, kerasreg's defaults (`--balance class_weight`)",
         train(TrainConfig(dataset="cat"), cat, work, "cat-weighted"), cat),
    ]  # fmt: skip
    lines = [
        "| run | test accuracy | balanced accuracy | Brier | ECE (15 bins) | mean predicted P(positive) | "
        "share of positives |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, m, data in runs:
        probabilities = np.load(Path(m["run_dir"]) / "test_probabilities.npy")
        lines.append(
            f"| {label} | {m['accuracy']:.3f} | {m['balanced_accuracy']:.3f} | {m['brier']:.3f} | {m['ece']:.3f} | "
            f"{probabilities[:, 1].mean():.3f} | {data.test_labels.mean():.3f} |"
        )
    # Class weights train as if the classes were equally common; the training prior puts the odds back.
    prior = float(cat.train_labels.mean())
    weighted = np.load(Path(runs[-1][1]["run_dir"]) / "test_probabilities.npy")[:, 1]
    odds = weighted / (1 - weighted) * prior / (1 - prior)
    corrected = np.stack([1 / (1 + odds), odds / (1 + odds)], axis=1)
    metrics = compute_metrics(cat.test_labels, corrected, "binary", cat.train_labels)
    lines.append(
        f"| the same, P(cat) corrected for the weighting (odds x {prior:.3f}/{1 - prior:.3f}) | "
        f"{metrics['accuracy']:.3f} | {metrics['balanced_accuracy']:.3f} | {metrics['brier']:.3f} | "
        f"{metrics['ece']:.3f} | {corrected[:, 1].mean():.3f} | {cat.test_labels.mean():.3f} |"
    )
    IMAGES.mkdir(parents=True, exist_ok=True)
    names = ("catvnoncat-recipe", "catvnoncat-defaults", "cat-unweighted", "cat-weighted")
    for (_, m, _), name in zip(runs, names, strict=True):
        shutil.copy(Path(m["run_dir"]) / "plots" / "reliability.png", IMAGES / f"reliability-{name}.png")
    return "\n".join(lines)


def main() -> int:
    """Measure, print, and write both tables into the README."""
    import datetime as dt

    from kerasreg import pipeline
    from kerasreg.datasets import load_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--no-readme", action="store_true", help="print the tables only")
    args = parser.parse_args()
    course = load_dataset("catvnoncat", "files", args.data / "catvnoncat")
    cat = load_dataset("cat", "files", args.data / "cifar10-sample")

    def write_results(run_dir, model, data, history, metrics, seed, probabilities, search):
        np.save(run_dir / "test_probabilities.npy", probabilities)  # for the mean predicted probability
        return real_write(run_dir, model, data, history, metrics, seed, probabilities, search)

    real_write = pipeline.write_results
    pipeline.write_results = write_results
    with tempfile.TemporaryDirectory() as work:
        comparison, runs = course_table(course, Path(work))
        calibration = calibration_table(runs, course, cat, Path(work))
    pipeline.write_results = real_write
    date = dt.date.today().isoformat()
    comparison = f"Measured by `make course` on {date}.\n\n{comparison}"
    calibration = f"Measured by `make course` on {date}.\n\n{calibration}"
    print(comparison, calibration, sep="\n\n")
    if not args.no_readme:
        write_readme_section(COURSE_BEGIN, COURSE_END, comparison)
        write_readme_section(CALIBRATION_BEGIN, CALIBRATION_END, calibration)
    return 0


if __name__ == "__main__":
    sys.exit(main())
