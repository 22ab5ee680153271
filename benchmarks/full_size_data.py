"""Data sets of the real datasets' full sizes, built from the shared real images: for time and memory only.

MNIST's 60,000 training images are the 10,000 real test images, each shifted by one
pixel in six ways (the unshifted image is one of them); CIFAR-10's 50,000 are the
4,068 images of the real sample shifted in seven ways, each also mirrored, cut at
50,000. The test split is the real one. No accuracy is ever claimed on them: the
"training" images are test images, and shifted copies are not new images.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from benchmarks.train_bench import read_idx_gz, write_idx

MNIST_SHIFTS = ((0, 0), (0, 1), (1, 0), (0, -1), (-1, 0), (1, 1))
CIFAR_SHIFTS = ((0, 0), (0, 1), (1, 0), (0, -1), (-1, 0), (1, 1), (-1, -1))
MNIST_FULL, CIFAR_FULL = 60_000, 50_000


def shifted(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """[N,H,W(,C)] images moved dy rows down and dx columns right, the edge they leave filled with zeros."""
    out = np.zeros_like(images)
    h, w = images.shape[1:3]
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = images[
        :, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def mnist_full(data: Path, folder: Path, n_train: int = MNIST_FULL) -> tuple[np.ndarray, np.ndarray]:
    """Write an MNIST-format folder of `n_train` (<= 60,000) shifted real images; the training images and labels."""
    images = read_idx_gz(data / "mnist" / "t10k-images-idx3-ubyte.gz")
    labels = read_idx_gz(data / "mnist" / "t10k-labels-idx1-ubyte.gz")
    train = np.concatenate([shifted(images, dy, dx) for dy, dx in MNIST_SHIFTS])[:n_train]
    train_labels = np.tile(labels, len(MNIST_SHIFTS))[:n_train]
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / "train-images-idx3-ubyte", train)
    write_idx(folder / "train-labels-idx1-ubyte", train_labels)
    write_idx(folder / "t10k-images-idx3-ubyte", images)
    write_idx(folder / "t10k-labels-idx1-ubyte", labels)
    return train, train_labels


def _cifar_batch(images: np.ndarray, labels: np.ndarray) -> bytes:
    """A batch as CIFAR-10 ships it: protocol 2, bytes keys, rows of 3,072 bytes (red, green, blue planes)."""
    planes = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    return pickle.dumps({b"data": planes, b"labels": [int(v) for v in labels]}, protocol=2)


def cifar_full(data: Path, folder: Path, n_train: int = CIFAR_FULL) -> tuple[np.ndarray, np.ndarray]:
    """Write a CIFAR-10 python-format folder of `n_train` (<= 50,000) shifted and mirrored real images."""
    from kerasreg.datasets import load_dataset

    sample = load_dataset("cifar10", "files", data / "cifar10-sample")
    base, labels = sample.train_images, sample.train_labels
    variants = [shifted(base, dy, dx) for dy, dx in CIFAR_SHIFTS]
    variants += [v[:, :, ::-1] for v in variants]
    train = np.concatenate(variants)[:n_train]
    train_labels = np.tile(labels, len(variants))[:n_train]
    out = folder / "cifar-10-batches-py"
    out.mkdir(parents=True, exist_ok=True)
    for i, start in enumerate(range(0, len(train), 10_000), start=1):
        (out / f"data_batch_{i}").write_bytes(
            _cifar_batch(train[start : start + 10_000], train_labels[start : start + 10_000])
        )
    (out / "test_batch").write_bytes(_cifar_batch(sample.test_images, sample.test_labels))
    meta = {b"label_names": [name.encode() for name in sample.class_names]}
    (out / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return train, train_labels
