"""Task views over a loaded dataset: one class vs the rest, validation split, balancing."""

from __future__ import annotations

import dataclasses
import math

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


def aligned_empty(shape: tuple[int, ...], dtype, alignment: int = 64) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on an `alignment`-byte boundary.

    TensorFlow shares (rather than copies) host memory only at 64-byte alignment
    (`compiled_epoch.host_tensor`); numpy's own large arrays start 16 bytes past a page.
    """
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.empty(size + alignment, np.uint8)
    offset = -raw.ctypes.data % alignment
    return raw[offset : offset + size].view(dtype).reshape(shape)


def rows_of(images: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """`images[indices]`, taken into a 64-byte-aligned array: training reads it as it is, without another copy
    (kerasreg/model.py, `pixel_rows`)."""
    taken = aligned_empty((len(indices), *images.shape[1:]), images.dtype)
    np.take(images, indices, axis=0, out=taken)
    return taken


def split_validation(
    images: np.ndarray, labels: np.ndarray, fraction: float, seed: int
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray] | None]:
    """Hold out `fraction` of each class as validation data; None when fraction is 0.

    Stratified (scikit-learn's `train_test_split`), so a 1:9 task keeps its ratio in
    both parts; each part keeps the images' original order.
    """
    if fraction == 0:
        return (images, labels), None
    train, held = stratified_split(labels, fraction, seed, what=f"val_split={fraction}")
    return (rows_of(images, train), labels[train]), (rows_of(images, held), labels[held])


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int, what: str, remedy: str = "Use another fraction, or 0."
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the kept and the held-out part (`fraction` of each class), each in ascending order.

    `what` names the split in an error, and `remedy` says what to do about it.
    """
    from sklearn.model_selection import train_test_split

    n = len(labels)
    held_out = math.ceil(fraction * n)  # as train_test_split rounds a fraction
    if held_out == 0 or held_out == n:
        raise KerasregError(
            f"Received {what} on {n} training images: it leaves no training or no held-out data. {remedy}"
        )
    try:
        kept, held = train_test_split(np.arange(n), test_size=fraction, stratify=labels, random_state=seed)
    except ValueError as e:  # too few images of a class to put some in each part
        raise KerasregError(
            f"Received {what} on {n} training images: cannot hold out a stratified part ({e}). {remedy}"
        ) from None
    return np.sort(kept), np.sort(held)


TEST_SPLIT_REMEDY = "Give every class at least two images (more make a better test), or a test split of its own."


def undersampled(labels: np.ndarray, seed: int) -> np.ndarray:
    """Indices (ascending) that keep a random `min count` examples of each class: every class as small as the
    smallest."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    keep = np.concatenate([rng.choice(np.flatnonzero(labels == k), size=counts.min(), replace=False) for k in classes])
    keep.sort()
    return keep


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Per-class weights n / (K * count_k) (scikit-learn's "balanced"), 0 for classes absent from `labels`."""
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(labels)
    weights = np.zeros(num_classes)
    weights[present] = compute_class_weight("balanced", classes=present, y=labels)
    return weights
