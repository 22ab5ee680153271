"""What the predicted probabilities are worth as chances: the Brier score, the expected calibration error, and
the bins of the reliability diagram (Guo et al. 2017, "On Calibration of Modern Neural Networks")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ECE_BINS = 15  # Guo et al.'s


@dataclass(frozen=True)
class ReliabilityBins:
    """The test images grouped by the predicted class's probability, in `ECE_BINS` equal-width bins of [0, 1]."""

    edges: np.ndarray  # [bins + 1]
    counts: np.ndarray  # images per bin
    confidence: np.ndarray  # mean predicted probability per bin (nan where empty)
    accuracy: np.ndarray  # share answered right per bin (nan where empty)

    @property
    def ece(self) -> float:
        """Expected calibration error: |accuracy - confidence| per bin, weighted by its share of the images."""
        filled = self.counts > 0
        share = self.counts[filled] / self.counts.sum()
        return float(np.sum(share * np.abs(self.accuracy[filled] - self.confidence[filled])))


def reliability_bins(labels: np.ndarray, probabilities: np.ndarray, bins: int = ECE_BINS) -> ReliabilityBins:
    """Bin each image by its predicted class's probability p, in ((i-1)/bins, i/bins] (p = 0 in the first)."""
    labels = np.asarray(labels)
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities[np.arange(len(labels)), predicted].astype(np.float64)
    right = (predicted == labels).astype(np.float64)
    which = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(which, confidence, minlength=bins) / counts
        accuracy = np.bincount(which, right, minlength=bins) / counts
    return ReliabilityBins(np.linspace(0.0, 1.0, bins + 1), counts, mean_confidence, accuracy)


def brier_score(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean squared distance between the probabilities and the truth.

    Two classes: (p(positive) - y)^2, scikit-learn's brier_score_loss (0 perfect, 0.25
    for always 0.5). More: the sum over classes of (p_k - [y = k])^2, Brier's own (0 to 2).
    """
    labels = np.asarray(labels, dtype=np.int64)
    if probabilities.shape[1] == 2:
        return float(np.mean((probabilities[:, 1] - labels) ** 2))
    truth = np.eye(probabilities.shape[1])[labels]
    return float(np.mean(np.sum((probabilities - truth) ** 2, axis=1)))
