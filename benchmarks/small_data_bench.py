"""Small data: how steady `--l2 auto`'s choice is across seeds, by k-fold and by one validation split, beside
LogisticRegressionCV's 5-fold choice on the same files.

    python benchmarks/small_data_bench.py [--data DIR] [--no-readme]

For catvnoncat (209 training images), digits (1,437) and the CIFAR-10 sample (4,068): kerasreg's defaults at
seeds 0-4 (below 2,000 training images, 5-fold; above, the 10 % validation split), the same with
`--l2-folds 1` (always the split), and scikit-learn's LogisticRegressionCV (5 stratified folds shuffled by the
same seed, the same strengths as C, on the same standardised pixels, classes weighed as kerasreg weighs them).
Reports each one's chosen strength across the seeds (in grid steps: half-decades) and its mean test score
(balanced accuracy for the binary catvnoncat, accuracy otherwise). Part of `make bench-full`; writes the README's
small-data table (between the bench-small markers). About 8 minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.measure import add_data_argument, write_readme_section  # noqa: E402

SEEDS = (0, 1, 2, 3, 4)
DATASETS = (
    ("catvnoncat", "catvnoncat", "catvnoncat"),
    ("digits", "digits", None),
    ("CIFAR-10 sample", "cifar10", "cifar10-sample"),
)


def _score(labels: np.ndarray, probabilities: np.ndarray, binary: bool) -> float:
    from sklearn.metrics import balanced_accuracy_score

    predicted = probabilities.argmax(axis=1)
    return float(balanced_accuracy_score(labels, predicted) if binary else (predicted == labels).mean())


def kerasreg_runs(data, folds: int, work: Path) -> list[dict]:
    """kerasreg's defaults (with `folds`) at every seed: the chosen strength and the test score."""
    from kerasreg.config import TrainConfig
    from kerasreg.datasets import BINARY
    from kerasreg.pipeline import train_and_evaluate

    runs = []
    for seed in SEEDS:
        started = time.perf_counter()
        config = TrainConfig(dataset=data.name, seed=seed, l2_folds=folds)
        with contextlib.redirect_stdout(io.StringIO()):
            metrics = train_and_evaluate(config, work / f"{data.name}-{folds}-{seed}", datasets=data)
        key = "balanced_accuracy" if data.task == BINARY else "accuracy"
        search = metrics["l2_search"]
        runs.append({"l2": search["chosen_l2"], "score": metrics[key], "folds": search.get("folds", 1),
                     "seconds": time.perf_counter() - started})  # fmt: skip
        print(f"  {data.name} l2-folds {folds} seed {seed}: {runs[-1]}", flush=True)
    return runs


def sklearn_runs(data, seeds: tuple[int, ...] = SEEDS) -> list[dict]:
    """LogisticRegressionCV, 5 stratified folds shuffled by each seed, over kerasreg's grid as C."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    from benchmarks.l2_search_bench import standardised
    from kerasreg.config import L2_GRID
    from kerasreg.datasets import BINARY

    x, x_test = standardised(data)
    n_fold = len(data.train_labels) * 4 // 5
    cs = [1.0 / (2.0 * l2 * n_fold) for l2 in L2_GRID]
    binary = data.task == BINARY
    runs = []
    for seed in seeds:
        folds = StratifiedKFold(5, shuffle=True, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", FutureWarning)
            model = LogisticRegressionCV(
                Cs=cs, cv=folds, scoring="neg_log_loss", class_weight="balanced" if binary else None
            ).fit(x, data.train_labels)
        l2 = 1.0 / (2.0 * float(model.C_[0]) * n_fold)
        runs.append({"l2": l2, "score": _score(data.test_labels, model.predict_proba(x_test), binary)})
        print(f"  {data.name} LogisticRegressionCV seed {seed}: {runs[-1]}", flush=True)
    return runs


def steps(runs: list[dict]) -> int:
    """How far apart the chosen strengths lie, in half-decades (the grid's steps)."""
    indices = [round(2 * math.log10(r["l2"])) for r in runs]
    return max(indices) - min(indices)


def markdown(results: list[dict]) -> str:
    """The README's small-data table."""
    lines = [
        "Seeds 0-4 (each draws the folds or the split); the score is the mean test balanced accuracy for "
        "catvnoncat and the mean test accuracy otherwise, with its range; the spread is how far apart the "
        "chosen strengths lie, in grid steps (half-decades).",
        "",
        "| dataset | training images | kerasreg defaults | spread | kerasreg, one validation split | spread | "
        "LogisticRegressionCV, 5-fold | spread |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def cell(runs):
        scores = [r["score"] for r in runs]
        if len(runs) == 1:
            return f"{scores[0]:.3f} (seed 0)"
        return f"{np.mean(scores):.3f} ({min(scores):.3f}-{max(scores):.3f})"

    def spread(runs):
        return str(steps(runs)) if len(runs) > 1 else "-"

    for r in results:
        how = f"{r['defaults'][0]['folds']}-fold" if r["defaults"][0]["folds"] > 1 else "the split"
        lines.append(
            f"| {r['label']} | {r['n']:,} | {cell(r['defaults'])} ({how}) | {steps(r['defaults'])} | "
            f"{cell(r['split'])} | {steps(r['split'])} | {cell(r['sklearn'])} | {spread(r['sklearn'])} |"
        )
    return "\n".join(lines)


def main() -> int:
    """Measure each dataset; write the JSON and the README's table."""
    from kerasreg.datasets import load_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--no-readme", action="store_true", help="print the table only")
    parser.add_argument("--only", default=None, help="measure this dataset alone, over the others' last results")
    args = parser.parse_args()
    from kerasreg.config import KFOLD_BELOW

    saved = Path(__file__).parent / "results-small.json"
    kept = json.loads(saved.read_text()) if args.only and saved.is_file() else []
    results = [r for r in kept if r["label"] != args.only]
    with tempfile.TemporaryDirectory() as work:
        for label, name, folder in DATASETS:
            if args.only and label != args.only:
                continue
            data = load_dataset(name, "files", args.data / folder) if folder else load_dataset(name)
            print(f"{label}: {len(data.train_labels):,} training images", flush=True)
            results.append({
                "label": label,
                "n": len(data.train_labels),
                "defaults": kerasreg_runs(data, 5, Path(work)),
                "split": kerasreg_runs(data, 1, Path(work)),
                # Above KFOLD_BELOW kerasreg keeps its split; LogisticRegressionCV's 65 fits a seed on 3,072
                # features take minutes, so there seed 0's folds alone.
                "sklearn": sklearn_runs(data, SEEDS if len(data.train_labels) < KFOLD_BELOW else (0,)),
            })  # fmt: skip
    order = [label for label, _, _ in DATASETS]
    results.sort(key=lambda r: order.index(r["label"]))
    saved.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))
    if not args.no_readme:
        write_readme_section("<!-- bench-small:begin -->", "<!-- bench-small:end -->", markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
