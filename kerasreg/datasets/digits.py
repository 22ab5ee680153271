"""scikit-learn's bundled 8x8 handwritten digits: real data that needs no network."""

from __future__ import annotations

import numpy as np

from kerasreg.datasets.container import ImageDataset

# Fixed, not --seed: the test split must be the same for every run, so runs compare.
SPLIT_SEED = 0
TEST_FRACTION = 0.2


def load_digits_dataset() -> ImageDataset:
    """The 1,797 digits as uint8 [N,8,8,1] (0..16 scaled to 0..255), split 80/20 per class."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., np.newaxis]
    labels = bunch.target.astype(np.int64)
    rng = np.random.default_rng(SPLIT_SEED)
    test_mask = np.zeros(len(labels), dtype=bool)
    for k in np.unique(labels):
        idx = np.flatnonzero(labels == k)
        test_mask[rng.choice(idx, size=round(len(idx) * TEST_FRACTION), replace=False)] = True
    return ImageDataset(
        "digits",
        images[~test_mask],
        labels[~test_mask],
        images[test_mask],
        labels[test_mask],
        tuple(str(d) for d in range(10)),
        source="sklearn.datasets.load_digits",
    )
