"""scikit-learn's bundled 8x8 handwritten digits: real data that needs no network."""

from __future__ import annotations

import numpy as np

from kerasreg.datasets.container import ImageDataset
from kerasreg.datasets.views import stratified_split

# Fixed, not --seed: the test split must be the same for every run, so runs compare.
SPLIT_SEED = 0
TEST_FRACTION = 0.2


def load_digits_dataset() -> ImageDataset:
    """The 1,797 digits as uint8 [N,8,8,1] (0..16 scaled to 0..255), split 80/20 per class (stratified)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., np.newaxis]
    labels = bunch.target.astype(np.int64)
    train, test = stratified_split(labels, TEST_FRACTION, SPLIT_SEED, what="the digits test split")
    return ImageDataset(
        "digits",
        images[train],
        labels[train],
        images[test],
        labels[test],
        tuple(str(d) for d in range(10)),
        source="sklearn.datasets.load_digits",
    )
