"""`ImageDataset`: the one shape every dataset source returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kerasreg.datasets.class_names import check_class_names
from kerasreg.errors import DatasetError

MULTICLASS = "multiclass"
BINARY = "binary"


@dataclass(frozen=True)
class Shard:
    """A cluster worker's part of the training images (kerasreg/datasets/shards.py): worker `index` of `count`
    holds the rows `index`, `index + count`, ... of them."""

    index: int
    count: int

    def held(self, n: int) -> int:
        """How many of `n` rows this worker holds."""
        return len(range(self.index, n, self.count))

    def mine(self, rows: np.ndarray) -> np.ndarray:
        """Which of `rows` (indices of every training image) this worker holds, as a mask."""
        return rows % self.count == self.index

    def local(self, rows: np.ndarray) -> np.ndarray:
        """`rows` this worker holds (all of them must be), as indices into its shard."""
        return ((rows - self.index) // self.count).astype(np.int32)

    def sizes(self, rows: np.ndarray) -> tuple[int, ...]:
        """How many of `rows` each worker holds, in worker order."""
        return tuple(int(c) for c in np.bincount(rows % self.count, minlength=self.count))


@dataclass(frozen=True)
class ImageDataset:
    """Raw uint8 images [N,H,W,C] with int labels, split into train and test.

    `task` is "multiclass" (labels 0..K-1) or "binary" (labels 0/1, class 1 the
    positive one); `source` says where the pixels came from, and `facts` what
    config.json should also record of it (a folder's counts per class, say).
    """

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]
    task: str = MULTICLASS
    source: str = ""
    facts: dict = field(default_factory=dict, compare=False)
    test_files: tuple[str, ...] | None = field(default=None, compare=False)  # a folder's test images, by file
    shard: Shard | None = None  # train_images hold only this cluster worker's shard; train_labels every image's

    def __post_init__(self) -> None:
        if self.task not in (MULTICLASS, BINARY):
            raise DatasetError(f"{self.name}: Received task={self.task!r}. Expected 'multiclass' or 'binary'.")
        if self.task == BINARY and len(self.class_names) != 2:
            raise DatasetError(f"{self.name}: a binary task needs 2 class names, got {len(self.class_names)}.")
        check_class_names(self.name, self.class_names)
        for split, images, labels in (
            ("train", self.train_images, self.train_labels),
            ("test", self.test_images, self.test_labels),
        ):
            if images.dtype != np.uint8 or images.ndim != 4:
                raise DatasetError(
                    f"{self.name}: {split} images must be uint8 [N,H,W,C], got {images.dtype} {images.shape}."
                )
            held = len(labels) if split == "test" or self.shard is None else self.shard.held(len(labels))
            if labels.ndim != 1 or held != len(images):
                raise DatasetError(f"{self.name}: {split} has {len(images)} images but labels of shape {labels.shape}.")
            if len(images) == 0:
                purpose = "learn from" if split == "train" else "measure the model on"
                raise DatasetError(f"{self.name}: the {split} split holds no images; a run needs some to {purpose}.")
            if len(labels) and (labels.min() < 0 or labels.max() >= len(self.class_names)):
                raise DatasetError(
                    f"{self.name}: {split} labels must lie in 0..{len(self.class_names) - 1}, "
                    f"got {labels.min()}..{labels.max()}; the file is corrupt or not this dataset."
                )
        if self.train_images.shape[1:] != self.test_images.shape[1:]:
            raise DatasetError(
                f"{self.name}: train images are {self.train_images.shape[1:]} but test images are "
                f"{self.test_images.shape[1:]}."
            )

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of one image."""
        return tuple(int(d) for d in self.train_images.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        """Number of class names (2 for a binary task)."""
        return len(self.class_names)
