"""Images given in Python: uint8 [N,H,W,C] arrays and integer labels, as `kerasreg.train(images=..., labels=...)`
takes them."""

from __future__ import annotations

import numpy as np

from kerasreg.datasets.container import BINARY, MULTICLASS, ImageDataset
from kerasreg.datasets.views import TEST_SPLIT_REMEDY, rows_of, stratified_split
from kerasreg.errors import DatasetError

ARRAYS = "arrays"  # the dataset name and source of a run on arrays: nothing a later command could reload


def from_arrays(
    images,
    labels,
    test_images=None,
    test_labels=None,
    class_names=None,
    *,
    test_split: float = 0.2,
    seed: int = 0,
) -> ImageDataset:
    """An ImageDataset of the arrays given; without test arrays, a stratified `test_split` of them is held out.

    Labels are integers 0..K-1, K the number of `class_names` (default: the labels' own
    numbers as names, "0" .. "K-1"). Two classes make a binary task, class 1 the positive.
    """
    images, labels = _images(images, "images"), _labels(labels, "labels")
    if (test_images is None) != (test_labels is None):
        raise DatasetError("arrays: give test_images and test_labels together, or neither (a test split is drawn).")
    if len(images) != len(labels):
        raise DatasetError(f"arrays: {len(images)} images but {len(labels)} labels; give one label per image.")
    if test_images is None:
        train, test = stratified_split(labels, test_split, seed, f"test_split={test_split}", TEST_SPLIT_REMEDY)
        test_images, test_labels = rows_of(images, test), labels[test]
        images, labels = rows_of(images, train), labels[train]
    else:
        test_images, test_labels = _images(test_images, "test_images"), _labels(test_labels, "test_labels")
    if class_names is None:
        count = int(max(labels.max(initial=0), test_labels.max(initial=0))) + 1
        class_names = tuple(str(k) for k in range(count))
    elif isinstance(class_names, str) or not all(isinstance(name, str) for name in class_names):
        raise DatasetError(f"arrays: class_names must be a list of strings, got {class_names!r}.")
    class_names = tuple(class_names)
    counts = _check_classes(labels, test_labels, class_names)
    task = BINARY if len(class_names) == 2 else MULTICLASS
    facts = {"images_per_class": {"train": {n: int(c) for n, c in zip(class_names, counts, strict=False)}}}
    return ImageDataset(ARRAYS, images, labels, test_images, test_labels, class_names, task, ARRAYS, facts)


def _check_classes(labels: np.ndarray, test_labels: np.ndarray, class_names: tuple[str, ...]) -> np.ndarray:
    """Every label one of the classes, at least two classes, each with a training image (as a folder's must):
    the training images per class. Checked before any count is made of them (a label of 999,999 would ask for a
    model of a million classes)."""
    classes = len(class_names)
    for name, array in (("labels", labels), ("test_labels", test_labels)):
        if len(array) and array.max() >= classes:
            raise DatasetError(
                f"arrays: {name} holds class {array.max()}, but there are {classes} class names (0..{classes - 1})."
            )
    if classes < 2:
        raise DatasetError(f"arrays: the labels name {classes} class; a classifier needs two or more.")
    if classes > len(labels):
        raise DatasetError(
            f"arrays: {classes:,} classes but {len(labels):,} training images: every class needs a training image."
        )
    counts = np.bincount(labels, minlength=classes)
    empty = np.flatnonzero(counts == 0)
    if len(empty):
        raise DatasetError(
            f"arrays: class {empty[0]} ({class_names[empty[0]]!r}) has no training image; every class needs one "
            "(give its images, or leave it out of class_names and the labels)."
        )
    return counts


def _images(value, name: str) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype != np.uint8 or array.ndim != 4:
        hint = " (pixels in 0..1? multiply by 255 and use .astype(np.uint8))" if array.dtype.kind == "f" else ""
        raise DatasetError(f"arrays: {name} must be uint8 [N,H,W,C], got {array.dtype} {array.shape}{hint}.")
    if 0 in array.shape[1:]:
        raise DatasetError(f"arrays: {name} of shape {array.shape} hold no pixels; expected [N,H,W,C] with H,W,C > 0.")
    return array


def _labels(value, name: str) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise DatasetError(
            f"arrays: {name} must be integers [N] (class numbers 0..K-1), got {array.dtype} {array.shape}."
        )
    if len(array) and array.min() < 0:
        raise DatasetError(f"arrays: {name} must be class numbers 0..K-1, got {array.min()}.")
    if len(array) and array.max() > np.iinfo(np.int64).max:  # a uint64 past int64: no class number
        raise DatasetError(f"arrays: {name} holds {array.max()}, which is no class number 0..K-1.")
    return array.astype(np.int64)
