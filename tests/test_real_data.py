"""Real accuracy on real files (../shared/data via KERASREG_TEST_DATA).

Reference figures (../shared/data/README.md): MNIST 8k/2k, scikit-learn 0.9235;
CIFAR-10 sample, scikit-learn 0.377 (10 classes), cat vs rest balanced accuracy 0.60.
"""

import json

import pytest

from kerasreg import run_dir as files
from kerasreg.config import TrainConfig
from kerasreg.datasets import ImageDataset
from kerasreg.datasets.idx_files import MNIST_CLASSES, read_idx
from kerasreg.train import train_and_evaluate

pytestmark = [pytest.mark.slow, pytest.mark.realdata]


def mnist_8k_2k(real_data) -> ImageDataset:
    """The real MNIST test set: first 8,000 images to train on, last 2,000 to test."""
    images = read_idx(real_data / "mnist" / "t10k-images-idx3-ubyte.gz")[..., None]
    labels = read_idx(real_data / "mnist" / "t10k-labels-idx1-ubyte.gz").astype("int64")
    return ImageDataset(
        "mnist", images[:8000], labels[:8000], images[8000:], labels[8000:], MNIST_CLASSES, source="files:t10k 8k/2k"
    )


def test_mnist_8k_2k_reaches_90_percent(real_data, tmp_path):
    metrics = train_and_evaluate(
        TrainConfig(dataset="mnist", epochs=20), tmp_path / "mnist", datasets=mnist_8k_2k(real_data)
    )
    print("MNIST 8k/2k", json.dumps({k: metrics[k] for k in ("accuracy", "epochs_trained", "train_seconds")}))
    assert metrics["n_test"] == 2000
    assert metrics["accuracy"] >= 0.90


def test_cifar10_sample_through_the_restricted_unpickler(real_data, tmp_path):
    config = TrainConfig(dataset="cifar10", source="files", data_dir=str(real_data / "cifar10-sample"))
    metrics = train_and_evaluate(config, tmp_path / "cifar")
    recorded = json.loads((tmp_path / "cifar" / files.CONFIG).read_text())["dataset"]
    print("CIFAR-10 sample", json.dumps({k: metrics[k] for k in ("accuracy", "epochs_trained")}))
    assert recorded["source"].startswith("files:") and recorded["n_test"] == 1017
    assert recorded["n_train"] + recorded["n_val"] == 4068
    assert metrics["accuracy"] >= 0.30


def test_cat_vs_rest_beats_chance_and_reports_the_majority_baseline(real_data, tmp_path):
    config = TrainConfig(dataset="cat", source="files", data_dir=str(real_data / "cifar10-sample"))
    metrics = train_and_evaluate(config, tmp_path / "cat")
    keys = ("accuracy", "balanced_accuracy", "roc_auc", "majority_baseline_accuracy", "epochs_trained")
    print("cat vs rest", json.dumps({k: metrics[k] for k in keys}))
    assert metrics["majority_baseline_accuracy"] == pytest.approx(0.898, abs=0.005)
    assert metrics["balanced_accuracy"] >= 0.58
    assert metrics["roc_auc"] >= 0.6
