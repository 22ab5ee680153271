"""Small trained runs for the export and serve tests: real training on synthetic images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kerasreg.config import TrainConfig
from kerasreg.datasets import ImageDataset
from kerasreg.pipeline import train_and_evaluate


def synthetic_dataset(
    shape: tuple[int, int, int], classes: int, task: str = "multiclass", n: int = 200, seed: int = 0
) -> ImageDataset:
    """Images whose mean brightness in one band encodes the class: learnable by a linear model."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    images = rng.integers(0, 60, (n, *shape)).astype(np.int64)
    band = shape[0] // classes or 1
    for i, k in enumerate(labels):
        images[i, k * band : (k + 1) * band] += 150
    images = np.clip(images, 0, 255).astype(np.uint8)
    names = ("non-target", "target") if task == "binary" else tuple(f"class{k}" for k in range(classes))
    cut = int(n * 0.75)
    return ImageDataset(
        "synthetic", images[:cut], labels[:cut], images[cut:], labels[cut:], names, task=task, source="synthetic"
    )


def train_small(run_dir: Path, data: ImageDataset, epochs: int = 2) -> Path:
    """Train `data` for a few epochs into `run_dir`."""
    train_and_evaluate(TrainConfig(dataset="digits", epochs=epochs, batch_size=32, l2=0.01), run_dir, datasets=data)
    return run_dir
