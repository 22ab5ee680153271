"""Test metrics from predicted probabilities, in the flat form metrics.json keeps."""

from __future__ import annotations

import numpy as np

from kerasreg.datasets import BINARY

_EPS = 1e-7  # clip for log(0), as Keras does


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts [true, predicted], every class a row and a column."""
    from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix

    return sklearn_confusion_matrix(labels, predicted, labels=np.arange(num_classes))


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (ties count half); None when the labels hold one class only."""
    from sklearn.metrics import roc_auc_score

    if len(np.unique(labels)) < 2:
        return None
    return float(roc_auc_score(labels, scores))


def _or_none(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def compute_metrics(
    labels: np.ndarray,
    probabilities: np.ndarray,
    task: str,
    train_labels: np.ndarray | None = None,
    majority_class: int | None = None,
) -> dict:
    """accuracy, loss, per-class accuracy, confusion matrix, n_test, majority baseline, the Brier score and the
    expected calibration error (kerasreg/reports/calibration.py); for binary tasks also balanced accuracy,
    precision, recall and ROC AUC. Accuracy, balanced accuracy and ROC AUC come with their 95% interval
    (`*_interval`: [low, high], kerasreg/reports/intervals.py), None where it is undefined.

    `probabilities` is [N, K]; the majority baseline answers the most common
    training class, or `majority_class` when given (the test's own when neither is).
    """
    from sklearn.metrics import balanced_accuracy_score, precision_score, recall_score

    from kerasreg.reports import intervals
    from kerasreg.reports.calibration import brier_score, reliability_bins

    labels = np.asarray(labels, dtype=np.int64)
    num_classes = probabilities.shape[1]
    predicted = probabilities.argmax(axis=1)
    cm = confusion_matrix(labels, predicted, num_classes)
    recalls = recall_score(labels, predicted, labels=np.arange(num_classes), average=None, zero_division=np.nan)
    per_class = [_or_none(r) for r in recalls]  # each class's accuracy: its recall
    picked = np.clip(probabilities[np.arange(len(labels)), labels], _EPS, 1.0)
    if majority_class is None:
        majority_class = int(np.bincount(train_labels if train_labels is not None else labels).argmax())
    majority = int(majority_class)
    metrics = {
        "accuracy": float((predicted == labels).mean()),
        "accuracy_interval": intervals.wilson(int((predicted == labels).sum()), len(labels)),
        "loss": float(-np.log(picked).mean()),
        "n_test": int(len(labels)),
        "per_class_accuracy": per_class,
        "confusion_matrix": cm.tolist(),
        "majority_baseline_accuracy": float((labels == majority).mean()),
        "majority_class": majority,
        "brier": brier_score(labels, probabilities),
        "ece": reliability_bins(labels, probabilities).ece,
    }
    if task == BINARY:
        metrics.update(
            balanced_accuracy=float(balanced_accuracy_score(labels, predicted)),
            precision=_or_none(precision_score(labels, predicted, zero_division=np.nan)),
            recall=_or_none(recall_score(labels, predicted, zero_division=np.nan)),
            roc_auc=roc_auc(labels, probabilities[:, 1]),
            balanced_accuracy_interval=intervals.bootstrap(intervals.balanced_accuracy, labels, predicted),
            roc_auc_interval=intervals.bootstrap(intervals.roc_auc, labels, probabilities[:, 1]),
        )
    return metrics


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def summary_lines(metrics: dict, class_names: tuple[str, ...]) -> list[str]:
    """Human-readable lines for the terminal, baselines beside the score."""
    from kerasreg.reports.intervals import shown

    interval = shown(metrics.get("accuracy_interval"))
    lines = [
        f"test accuracy {metrics['accuracy']:.4f}{interval}  loss {metrics['loss']:.4f}  on {metrics['n_test']} images"
    ]
    if "train_accuracy" in metrics:
        lines[0] += f"  (train accuracy {metrics['train_accuracy']:.4f})"
    if "brier" in metrics:
        lines.append(f"Brier score {metrics['brier']:.4f}  expected calibration error {metrics['ece']:.4f}")
    majority_name = class_names[metrics["majority_class"]]
    lines.append(f"always answering {majority_name!r} would score accuracy {metrics['majority_baseline_accuracy']:.4f}")
    if "balanced_accuracy" in metrics:
        lines.append(
            f"balanced accuracy {_fmt(metrics['balanced_accuracy'])}{shown(metrics.get('balanced_accuracy_interval'))}"
            f"  ROC AUC {_fmt(metrics['roc_auc'])}{shown(metrics.get('roc_auc_interval'))}  "
            f"precision {_fmt(metrics['precision'])}  recall {_fmt(metrics['recall'])}  (chance: 0.5 each for "
            "balanced accuracy and AUC)"
        )
    return lines
