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


@pytest.mark.parametrize("c, sklearn_train, sklearn_test", [(0.001, 0.530, 0.377), (0.0005, 0.494, 0.3825)])
def test_at_scikit_learns_regularisation_training_converges_to_its_optimum(
    real_data, tmp_path, c, sklearn_train, sklearn_test
):
    # The same objective: scikit-learn minimises C * sum(loss) + |W|^2 / 2; kerasreg mean(loss) + l2 * |W|^2,
    # so l2 = 1 / (2 C n) on all n = 4,068 training images (no validation split, no early stopping).
    # scikit-learn's figures: ../shared/data/README.md and issue 11 (LogisticRegression, standardised pixels).
    config = TrainConfig(
        dataset="cifar10",
        source="files",
        data_dir=str(real_data / "cifar10-sample"),
        val_split=0,
        l2=1 / (2 * c * 4068),
        epochs=300,
    )
    metrics = train_and_evaluate(config, tmp_path / "run")
    train_accuracy = files.read_history(tmp_path / "run" / files.HISTORY)[-1]["accuracy"]
    print(f"C={c}: train {train_accuracy:.4f} test {metrics['accuracy']:.4f} in {metrics['epochs_trained']} epochs")
    assert metrics["stop_reason"] == "converged" and metrics["epochs_trained"] < 300
    assert abs(train_accuracy - sklearn_train) <= 0.01
    assert abs(metrics["accuracy"] - sklearn_test) <= 0.01
