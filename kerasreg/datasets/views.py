"""Task views over a loaded dataset: one class vs the rest, validation split, balancing."""

from __future__ import annotations

import dataclasses

import numpy as np

from kerasreg.datasets.container import BINARY, ImageDataset
from kerasreg.errors import KerasregError

BALANCE_CHOICES = ("none", "undersample", "class_weight")


def one_vs_rest(data: ImageDataset, positive: int, name: str) -> ImageDataset:
    """A binary view: class `positive` is 1, every other class 0."""
    if not 0 <= positive < data.num_classes:
        raise KerasregError(f"Received positive={positive}. Expected a class index in 0..{data.num_classes - 1}.")
    positive_name = data.class_names[positive]
    return dataclasses.replace(
        data,
        name=name,
        train_labels=(data.train_labels == positive).astype(np.int64),
        test_labels=(data.test_labels == positive).astype(np.int64),
        class_names=(f"non-{positive_name}", positive_name),
        task=BINARY,
    )


def split_validation(
    images: np.ndarray, labels: np.ndarray, fraction: float, seed: int
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray] | None]:
    """Hold out `fraction` of each class as validation data; None when fraction is 0.

    Stratified, so a 1:9 task keeps its ratio in both parts.
    """
    if fraction == 0:
        return (images, labels), None
    rng = np.random.default_rng(seed)
    val_mask = np.zeros(len(labels), dtype=bool)
    for k in np.unique(labels):
        idx = np.flatnonzero(labels == k)
        n_val = int(round(len(idx) * fraction))
        val_mask[rng.choice(idx, size=n_val, replace=False)] = True
    if val_mask.all() or not val_mask.any():
        raise KerasregError(
            f"Received val_split={fraction} on {len(labels)} training images: it leaves no "
            "training or no validation data. Use a fraction that keeps both, or 0."
        )
    return (images[~val_mask], labels[~val_mask]), (images[val_mask], labels[val_mask])


def undersample(images: np.ndarray, labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Drop random examples of the larger classes until every class is as small as the smallest."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    keep = np.concatenate([rng.choice(np.flatnonzero(labels == k), size=counts.min(), replace=False) for k in classes])
    keep.sort()
    return images[keep], labels[keep]


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Per-class weights n / (K * count_k) (scikit-learn's "balanced"), 0 for classes absent from `labels`."""
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(labels)
    weights = np.zeros(num_classes)
    weights[present] = compute_class_weight("balanced", classes=present, y=labels)
    return weights
