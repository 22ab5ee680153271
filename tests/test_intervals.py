"""The 95% intervals beside the test metrics: Wilson's for accuracy, a seeded bootstrap for balanced accuracy and ROC
AUC, in metrics.json and the summary lines."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from kerasreg.reports import intervals
from kerasreg.reports.metrics import compute_metrics, summary_lines


def _wilson_by_hand(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize(("k", "n"), [(35, 50), (0, 50), (50, 50), (9_212, 10_000), (1, 2)])
def test_the_accuracy_interval_is_wilsons(k, n):
    assert intervals.wilson(k, n) == pytest.approx(list(_wilson_by_hand(k, n)), abs=1e-9)


def test_fifty_images_leave_an_accuracy_of_0_7_uncertain_by_about_13_points_each_way():
    low, high = intervals.wilson(35, 50)
    assert (round(low, 3), round(high, 3)) == (0.562, 0.809)  # the course's 70 % test accuracy
    assert intervals.wilson(0, 0) is None


@settings(max_examples=int(os.environ.get("KERASREG_FUZZ_EXAMPLES", "200")), deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 20)), min_size=2, max_size=60).filter(
        lambda pairs: len({label for label, _ in pairs}) == 2
    )
)
@example([(0, 3), (1, 3)])  # a tie across the classes counts half
def test_the_fast_statistics_are_scikit_learns(pairs):
    labels = np.array([label for label, _ in pairs])
    scores = np.array([score for _, score in pairs]) / 20.0
    predicted = (scores > 0.5).astype(int)
    assert intervals.roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert intervals.balanced_accuracy(labels, predicted) == pytest.approx(
        balanced_accuracy_score(labels, predicted), abs=1e-12
    )


def test_the_bootstrap_is_seeded_holds_its_estimate_and_narrows_with_more_images():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 2_000)
    scores = np.clip(labels * 0.3 + rng.random(2_000) * 0.7, 0, 1)
    small = intervals.bootstrap(intervals.roc_auc, labels[:100], scores[:100])
    large = intervals.bootstrap(intervals.roc_auc, labels, scores)
    assert intervals.bootstrap(intervals.roc_auc, labels, scores) == large  # the same every time
    assert large[0] < roc_auc_score(labels, scores) < large[1]
    assert large[1] - large[0] < (small[1] - small[0]) / 2  # 20 times the images: about 4.5 times narrower


def test_the_bootstrap_says_none_where_the_statistic_means_nothing():
    assert intervals.bootstrap(intervals.roc_auc, np.zeros(10, int), np.ones(10)) is None  # one class
    # One positive in 40: most resamples hold none, so no interval is honest.
    labels = np.zeros(40, int)
    labels[0] = 1
    assert intervals.bootstrap(intervals.roc_auc, labels, np.linspace(0, 1, 40)) is None


def test_metrics_and_the_summary_give_each_interval():
    rng = np.random.default_rng(1)
    labels = np.array([0, 1] * 25)
    scores = np.clip(labels * 0.4 + rng.random(50) * 0.6, 0, 1)
    metrics = compute_metrics(labels, np.stack([1 - scores, scores], axis=1), "binary")
    for name in ("accuracy", "balanced_accuracy", "roc_auc"):
        low, high = metrics[f"{name}_interval"]
        assert low <= metrics[name] <= high, name
    lines = summary_lines(metrics, ("no", "yes"))
    low, high = metrics["accuracy_interval"]
    assert f"test accuracy {metrics['accuracy']:.4f} (95% interval {low:.3f}-{high:.3f})" in lines[0]
    assert "ROC AUC" in lines[-1] and lines[-1].count("95% interval") == 2


def test_the_results_table_calls_a_difference_only_where_its_paired_interval_leaves_out_zero():
    from benchmarks.results_table import paired_difference, verdict

    labels = np.arange(400) % 2
    right = np.eye(2)[labels]
    # Ours right on every image, theirs wrong on 1 in 10: +0.100, and the interval leaves out 0.
    theirs = right.copy()
    theirs[::10] = right[::10, ::-1]
    found = paired_difference(labels, right, theirs, binary=False)
    assert found["difference"] == pytest.approx(0.1) and found["interval"][0] > 0
    assert verdict(found).endswith(": better")
    # Wrong on different images, as often: a difference of 0, within the noise (and the same, the other way round).
    ours = right.copy()
    ours[5::10] = right[5::10, ::-1]
    found = paired_difference(labels, ours, theirs, binary=True)
    assert found["difference"] == pytest.approx(0.0) and found["interval"][0] < 0 < found["interval"][1]
    assert verdict(found).endswith(": within the noise")
    assert verdict(paired_difference(labels, theirs, right, binary=False)).endswith(": worse")
