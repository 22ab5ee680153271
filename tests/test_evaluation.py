import numpy as np
import pytest

from kerasreg.model import class_probabilities
from kerasreg.reports.metrics import compute_metrics, roc_auc


def test_multiclass_metrics_by_hand():
    labels = np.array([0, 0, 1, 2])
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])
    m = compute_metrics(labels, probs, "multiclass")
    assert m["accuracy"] == 0.75
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    assert m["per_class_accuracy"] == [0.5, 1.0, 1.0]
    assert m["loss"] == pytest.approx(-np.mean(np.log([0.8, 0.2, 0.8, 0.4])))
    assert m["n_test"] == 4 and m["majority_baseline_accuracy"] == 0.5
    assert "roc_auc" not in m


def test_binary_metrics_and_majority_baseline():
    labels = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.1, 0.6, 0.3, 0.2, 0.1, 0.4, 0.7, 0.3])
    m = compute_metrics(labels, class_probabilities(p[:, None], "binary"), "binary", train_labels=np.zeros(5, int))
    assert m["accuracy"] == 0.8
    assert m["majority_baseline_accuracy"] == 0.8
    assert m["recall"] == 0.5 and m["precision"] == 0.5
    assert m["balanced_accuracy"] == pytest.approx((7 / 8 + 1 / 2) / 2)
    # pairs (pos, neg) ranked right: 0.7 beats all 8; 0.3 beats 5 and ties 1 (0.3) -> 5.5
    assert m["roc_auc"] == pytest.approx((8 + 5.5) / 16)


def test_roc_auc_undefined_with_one_class():
    assert roc_auc(np.zeros(4, int), np.arange(4.0)) is None
