"""Real accuracy on real files (../shared/data via KERASREG_TEST_DATA).

The defaults' targets, beside scikit-learn's figures on the same files
(../shared/data/README.md): MNIST 8k/2k, accuracy >= 0.9235, scikit-learn's
LogisticRegression's; the CIFAR-10 sample, accuracy >= 0.377, scikit-learn's at
C=0.001; cat vs rest, balanced accuracy >= 0.62 and ROC AUC >= 0.66 (scikit-learn
with balanced class weights: 0.60 and 0.66). Where training is held to scikit-learn's
optimum at one C, scikit-learn is fitted here, on the same standardised pixels.
"""

import dataclasses
import json

import numpy as np
import pytest
from test_l2_search import check_path_rule

from kerasreg.config import TrainConfig
from kerasreg.datasets import ImageDataset
from kerasreg.datasets.idx_files import MNIST_CLASSES, read_idx
from kerasreg.pipeline import train_and_evaluate
from kerasreg.run_directory import files

pytestmark = [pytest.mark.slow, pytest.mark.realdata]


def mnist_8k_2k(real_data) -> ImageDataset:
    """The real MNIST test set: first 8,000 images to train on, last 2,000 to test."""
    images = read_idx(real_data / "mnist" / "t10k-images-idx3-ubyte.gz")[..., None]
    labels = read_idx(real_data / "mnist" / "t10k-labels-idx1-ubyte.gz").astype("int64")
    return ImageDataset(
        "mnist", images[:8000], labels[:8000], images[8000:], labels[8000:], MNIST_CLASSES, source="files:t10k 8k/2k"
    )


# Issue 11's targets for the defaults (l2 auto, batch auto), none tuned on a test split.
def test_defaults_on_mnist_8k_2k_reach_scikit_learns_figure(real_data, tmp_path):
    metrics = train_and_evaluate(TrainConfig(dataset="mnist"), tmp_path / "mnist", datasets=mnist_8k_2k(real_data))
    print("MNIST 8k/2k", json.dumps({k: metrics[k] for k in ("accuracy", "epochs_trained", "train_seconds")}))
    assert metrics["n_test"] == 2000
    assert metrics["accuracy"] >= 0.9235
    check_path_rule(metrics["l2_search"]["points"])


def test_defaults_on_the_cifar10_sample_reach_scikit_learns_best_figure(real_data, tmp_path):
    config = TrainConfig(dataset="cifar10", source="files", data_dir=str(real_data / "cifar10-sample"))
    metrics = train_and_evaluate(config, tmp_path / "cifar")
    recorded = json.loads((tmp_path / "cifar" / files.CONFIG).read_text())
    print("CIFAR-10 sample", json.dumps({k: metrics[k] for k in ("accuracy", "epochs_trained")}))
    assert recorded["dataset"]["source"].startswith("files:") and recorded["dataset"]["n_test"] == 1017
    assert recorded["dataset"]["n_train"] + recorded["dataset"]["n_val"] == 4068 == metrics["l2_search"]["n_all"]
    assert metrics["accuracy"] >= 0.377
    # The path stopped once the validation loss rose twice: the weak end, slowest to train, was skipped.
    assert metrics["l2_search"]["points"][-1]["stop_reason"] == "skipped"
    check_path_rule(metrics["l2_search"]["points"])


def test_defaults_on_cat_vs_rest_reach_the_balanced_accuracy_and_auc_targets(real_data, tmp_path):
    config = TrainConfig(dataset="cat", source="files", data_dir=str(real_data / "cifar10-sample"))
    metrics = train_and_evaluate(config, tmp_path / "cat")
    keys = ("accuracy", "balanced_accuracy", "roc_auc", "majority_baseline_accuracy", "epochs_trained")
    print("cat vs rest", json.dumps({k: metrics[k] for k in keys}))
    assert metrics["majority_baseline_accuracy"] == pytest.approx(0.898, abs=0.005)
    assert metrics["balanced_accuracy"] >= 0.62
    assert metrics["roc_auc"] >= 0.66


def sklearn_scores(data: ImageDataset, c: float) -> tuple[float, float]:
    """Train and test accuracy of scikit-learn's LogisticRegression at `c`, on pixels standardised as kerasreg does."""
    from sklearn.linear_model import LogisticRegression

    from kerasreg.model import pixel_statistics

    mean, variance = pixel_statistics(data.train_images)

    def features(images):
        return (images.reshape(len(images), -1) / 255.0 - mean) / np.sqrt(variance)

    model = LogisticRegression(C=c, max_iter=1000).fit(features(data.train_images), data.train_labels)
    return model.score(features(data.train_images), data.train_labels), model.score(
        features(data.test_images), data.test_labels
    )


def test_at_scikit_learns_regularisation_on_mnist_training_reaches_its_optimum(real_data, tmp_path):
    data = mnist_8k_2k(real_data)
    c = 0.022  # the C the defaults choose on MNIST 8k
    sklearn_train, sklearn_test = sklearn_scores(data, c)
    config = TrainConfig(dataset="mnist", val_split=0, l2=1 / (2 * c * 8000), epochs=300)
    metrics = train_and_evaluate(config, tmp_path / "run", datasets=data)
    train_accuracy = files.read_history(tmp_path / "run" / files.HISTORY)[-1]["accuracy"]
    print(
        f"MNIST C={c}: train {train_accuracy:.4f} test {metrics['accuracy']:.4f} (scikit-learn "
        f"{sklearn_train:.4f} {sklearn_test:.4f}) in {metrics['epochs_trained']} epochs"
    )
    assert metrics["stop_reason"] == "converged"
    assert abs(train_accuracy - sklearn_train) <= 0.01
    assert abs(metrics["accuracy"] - sklearn_test) <= 0.01


@pytest.mark.parametrize("c", [0.001, 0.0005])
def test_at_scikit_learns_regularisation_training_converges_to_its_optimum(real_data, tmp_path, c):
    # The same objective: scikit-learn minimises C * sum(loss) + |W|^2 / 2; kerasreg mean(loss) + l2 * |W|^2,
    # so l2 = 1 / (2 C n) on all n = 4,068 training images (no validation split, no early stopping).
    from kerasreg.datasets import load_dataset

    folder = str(real_data / "cifar10-sample")
    sklearn_train, sklearn_test = sklearn_scores(load_dataset("cifar10", "files", folder), c)
    config = TrainConfig(dataset="cifar10", source="files", data_dir=folder, val_split=0, l2=1 / (2 * c * 4068))
    metrics = train_and_evaluate(dataclasses.replace(config, epochs=300), tmp_path / "run")
    train_accuracy = files.read_history(tmp_path / "run" / files.HISTORY)[-1]["accuracy"]
    print(
        f"CIFAR C={c}: train {train_accuracy:.4f} test {metrics['accuracy']:.4f} (scikit-learn "
        f"{sklearn_train:.4f} {sklearn_test:.4f}) in {metrics['epochs_trained']} epochs"
    )
    assert metrics["stop_reason"] == "converged" and metrics["epochs_trained"] < 300
    assert abs(train_accuracy - sklearn_train) <= 0.01
    assert abs(metrics["accuracy"] - sklearn_test) <= 0.01
