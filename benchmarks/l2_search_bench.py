"""`--l2 auto` against scikit-learn's LogisticRegressionCV: the same grid, the same split, the same data.

    python benchmarks/l2_search_bench.py [--data DIR]

On MNIST 8k/2k and the CIFAR-10 sample (DIR: ../shared/data), one after the other:

- kerasreg's command line with the defaults (`--l2 auto`: the search on the
  validation split, then the refit on all training images); its `train_seconds`
  (search + refit, without importing TensorFlow) and the whole process's wall time;
- `LogisticRegressionCV(Cs=..., cv=[(search part, validation part)],
  scoring="neg_log_loss")` on the same standardised pixels: the C of each of
  strengths kerasreg's path visited (C = 1 / (2 l2 n_search)), the same validation images,
  and its refit on all training images; its fit time and test accuracy.

One round: LogisticRegressionCV takes minutes on the CIFAR sample.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.measure import Target, add_data_argument  # noqa: E402
from benchmarks.train_bench import kerasreg_train, mnist_8k_2k_folder  # noqa: E402


def standardised(data) -> tuple[np.ndarray, np.ndarray]:
    """The training and test pixels as kerasreg's model sees them: [0, 1], standardised per pixel."""
    from kerasreg.model import pixel_statistics

    mean, variance = pixel_statistics(data.train_images)

    def features(images: np.ndarray) -> np.ndarray:
        return (images.reshape(len(images), -1) / 255.0 - mean) / np.sqrt(variance)

    return features(data.train_images), features(data.test_images)


def fit_cv(x: np.ndarray, labels: np.ndarray, grid: tuple[float, ...], val_split: float, seed: int, **options):
    """LogisticRegressionCV over kerasreg's strengths and validation split, fitted and refitted; and its seconds."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegressionCV

    from kerasreg.datasets.views import split_validation

    (search_part, _), (val_part, _) = split_validation(np.arange(len(labels)), labels, val_split, seed)
    cs = [1.0 / (2.0 * l2 * len(search_part)) for l2 in grid]
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # its default max_iter, as a user would run it
        warnings.simplefilter("ignore", FutureWarning)  # scikit-learn 1.8 on parameters this call leaves at default
        model = LogisticRegressionCV(Cs=cs, cv=[(search_part, val_part)], scoring="neg_log_loss", **options)
        model.fit(x, labels)
    return model, time.perf_counter() - started


def sklearn_search(data, grid: tuple[float, ...], val_split: float, seed: int) -> dict:
    """LogisticRegressionCV over kerasreg's grid and validation split; its seconds, choice and test accuracy."""
    x, x_test = standardised(data)
    model, seconds = fit_cv(x, data.train_labels, grid, val_split, seed)
    return {
        "seconds": seconds,
        "C": float(model.C_[0]),
        "accuracy": float((model.predict(x_test) == data.test_labels).mean()),
    }


def compare(name: str, args: list[str], data, out: Path) -> tuple[dict, Target]:
    """Run both on one dataset; the figures and the table row."""
    from kerasreg.config import TrainConfig

    defaults = TrainConfig()
    ours = kerasreg_train(args, out)
    search = ours["l2_search"]
    walked = tuple(p["l2"] for p in search["points"])  # the grid, and any half-decades walked past its end
    theirs = sklearn_search(data, walked, defaults.val_split, defaults.seed)
    ratio = ours["train_seconds"] / theirs["seconds"]
    print(
        f"  {name}: kerasreg search + refit {ours['train_seconds']:.2f} s (process {ours['process_seconds']:.1f} s), "
        f"C {search['C']:.3g}, accuracy {ours['accuracy']:.4f}; LogisticRegressionCV {theirs['seconds']:.1f} s, "
        f"C {theirs['C']:.3g}, accuracy {theirs['accuracy']:.4f}",
        flush=True,
    )
    figures = {
        "kerasreg": {
            "train_seconds": ours["train_seconds"],
            "search_seconds": search["seconds"],
            "process_seconds": ours["process_seconds"],
            "C": search["C"],
            "accuracy": ours["accuracy"],
            "points_trained": sum(p["stop_reason"] != "skipped" for p in search["points"]),
        },
        "LogisticRegressionCV": theirs,
    }
    target = Target(
        f"--l2 auto on {name}: search + refit ({len(walked)}-point grid)",
        f"{ours['train_seconds']:.2f} s (process {ours['process_seconds']:.1f} s), accuracy {ours['accuracy']:.4f}",
        f"LogisticRegressionCV, same grid and split: {theirs['seconds']:.1f} s, accuracy {theirs['accuracy']:.4f}",
        ratio,
        "< 1",
        ratio < 1,
    )
    return figures, target


def run(data: Path, work: Path) -> dict:
    """Both datasets; see the module docstring."""
    from kerasreg.datasets import ImageDataset, load_dataset
    from kerasreg.datasets.idx_files import MNIST_CLASSES

    folder = work / "mnist-8k-2k-search"
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = mnist_8k_2k_folder(data, folder)
    mnist = ImageDataset(
        "mnist", images[:8000, ..., None], labels[:8000].astype(np.int64), images[8000:, ..., None],
        labels[8000:].astype(np.int64), MNIST_CLASSES, source="files",
    )  # fmt: skip
    cifar_dir = data / "cifar10-sample"
    cifar = load_dataset("cifar10", "files", cifar_dir)
    results, targets = {}, []
    for name, args, dataset in (
        ("MNIST 8k", ["--dataset", "mnist", "--source", "files", "--data-dir", str(folder)], mnist),
        ("CIFAR-10 sample", ["--dataset", "cifar10", "--source", "files", "--data-dir", str(cifar_dir)], cifar),
    ):
        results[name], target = compare(name, args, dataset, work / f"run-search-{len(results)}")
        targets.append(target)
    return {"targets": [t.row() for t in targets], "datasets": results}


def main() -> int:
    """Run the search benchmark and print its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        print(json.dumps(run(args.data, Path(work)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
