"""What the probabilities mean: the Brier score, the expected calibration error, the reliability diagram."""

import numpy as np
import pytest
from PIL import Image

from kerasreg.reports.calibration import ECE_BINS, brier_score, reliability_bins
from kerasreg.reports.drawing import COLORS
from kerasreg.reports.figures import plot_reliability
from kerasreg.reports.metrics import compute_metrics


def test_the_brier_score_of_two_classes_is_scikit_learns():
    from sklearn.metrics import brier_score_loss

    rng = np.random.default_rng(0)
    p = rng.random(200)
    labels = rng.integers(0, 2, 200)
    probabilities = np.stack([1 - p, p], axis=1)
    assert brier_score(labels, probabilities) == pytest.approx(brier_score_loss(labels, p))
    assert brier_score(np.array([0, 1]), np.array([[0.5, 0.5], [0.5, 0.5]])) == 0.25  # always 0.5


def test_the_brier_score_of_more_classes_sums_over_them():
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    expected = ((0.3**2 + 0.2**2 + 0.1**2) + (0.1**2 + 0.9**2 + 0.8**2)) / 2  # the second is wrong: truth is 1
    assert brier_score(np.array([0, 1]), probabilities) == pytest.approx(expected)


def test_ece_weighs_each_bins_gap_by_its_share_of_the_images():
    # 3 images answered at 0.95 (2 right), 1 at 0.55 (right): bins 14 and 8 of 15.
    probabilities = np.array([[0.95, 0.05], [0.95, 0.05], [0.95, 0.05], [0.45, 0.55]])
    labels = np.array([0, 0, 1, 1])
    bins = reliability_bins(labels, probabilities)
    assert bins.counts.sum() == 4 and bins.counts[14] == 3 and bins.counts[8] == 1
    assert bins.accuracy[14] == pytest.approx(2 / 3) and bins.confidence[8] == pytest.approx(0.55)
    assert bins.ece == pytest.approx(3 / 4 * abs(2 / 3 - 0.95) + 1 / 4 * abs(1 - 0.55))
    assert len(bins.edges) == ECE_BINS + 1


def test_a_calibrated_model_has_a_small_ece_and_an_overconfident_one_a_large_one():
    rng = np.random.default_rng(1)
    confidence = rng.uniform(0.5, 1.0, 20000)
    right = rng.random(20000) < confidence  # right exactly as often as it says
    labels = np.where(right, 0, 1)
    calibrated = np.stack([confidence, 1 - confidence], axis=1)
    assert reliability_bins(labels, calibrated).ece < 0.01
    sharpened = np.stack([np.full(20000, 0.99), np.full(20000, 0.01)], axis=1)
    assert reliability_bins(labels, sharpened).ece == pytest.approx(0.99 - right.mean(), abs=1e-9)


def test_the_edges_of_the_bins_are_guo_et_als():
    # ((i-1)/15, i/15]: exactly 1/15 is in the first bin, 1.0 in the last.
    probabilities = np.array([[1 / 15, 14 / 15], [1.0, 0.0], [0.5, 0.5]])
    bins = reliability_bins(np.array([1, 0, 0]), probabilities)
    assert bins.counts[13] == 1 and bins.counts[14] == 1 and bins.counts[7] == 1


def test_every_run_reports_brier_and_ece():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    metrics = compute_metrics(np.array([0, 1, 1]), probabilities, "binary")
    assert metrics["brier"] == pytest.approx((0.1**2 + 0.2**2 + 0.6**2) / 3)
    assert metrics["ece"] == pytest.approx(reliability_bins(np.array([0, 1, 1]), probabilities).ece)


def test_the_reliability_diagram_draws_a_bar_per_filled_bin(tmp_path):
    rng = np.random.default_rng(2)
    p = np.concatenate([np.full(50, 0.62), np.full(50, 0.97)])
    labels = (rng.random(100) > np.where(p > 0.9, 0.97, 0.62)).astype(int)  # class 0 right as often as said
    path = tmp_path / "reliability.png"
    plot_reliability(labels, np.stack([p, 1 - p], axis=1), path)
    pixels = np.asarray(Image.open(path).convert("RGB"))
    bar = np.all(pixels == COLORS[0], axis=2)
    columns = np.flatnonzero(bar.any(axis=0))
    runs = np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1)
    assert len(runs) == 2  # two filled bins, two bars
    heights = [int(bar[:, run].any(axis=1).sum()) for run in runs]
    assert heights[1] > heights[0]  # the 0.97 bin is right more often: its bar is taller
