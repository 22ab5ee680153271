"""Write small datasets in their real distribution formats, for the readers' tests."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes holding `array`."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(directory: Path, n_train: int = 40, n_test: int = 20, gz: bool = True, seed: int = 0) -> dict:
    """Write the four MNIST IDX files; returns the arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        data = idx_bytes(array)
        if gz:
            (directory / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (directory / name).write_bytes(data)
    return arrays


def cifar_batch_bytes(images: np.ndarray, labels: np.ndarray) -> bytes:
    """A batch pickled as CIFAR-10 ships it: protocol 2, bytes keys, data as [N, 3072] planes."""
    data = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    batch = {b"batch_label": b"test", b"labels": [int(x) for x in labels], b"data": data}
    return pickle.dumps(batch, protocol=2)


def cifar_batches(rows: tuple[int, ...] = (7, 5), n_test: int = 6, seed: int = 0) -> dict:
    """Random images and labels for each batch file name."""
    rng = np.random.default_rng(seed)
    sizes = {f"data_batch_{i + 1}": n for i, n in enumerate(rows)} | {"test_batch": n_test}
    return {
        name: (rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n))
        for name, n in sizes.items()
    }


def write_cifar_folder(parent: Path, batches: dict) -> Path:
    """Write cifar-10-batches-py/ under `parent`; returns that folder."""
    folder = parent / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name, (images, labels) in batches.items():
        (folder / name).write_bytes(cifar_batch_bytes(images, labels))
    meta = {
        b"label_names": [
            b"airplane",
            b"automobile",
            b"bird",
            b"cat",
            b"deer",
            b"dog",
            b"frog",
            b"horse",
            b"ship",
            b"truck",
        ]
    }
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


def write_cifar_tarball(parent: Path, batches: dict) -> Path:
    """Write cifar-10-python.tar.gz under `parent`, laid out as the official archive."""
    parent.mkdir(parents=True, exist_ok=True)
    path = parent / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, (images, labels) in batches.items():
            data = cifar_batch_bytes(images, labels)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def write_catvnoncat(directory: Path, n_train: int = 12, n_test: int = 6, seed: int = 0) -> dict:
    """Write train_catvnoncat.h5 and test_catvnoncat.h5 with the course's keys."""
    import h5py

    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for prefix, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
        y = np.arange(n) % 2  # both classes present
        with h5py.File(directory / f"{prefix}_catvnoncat.h5", "w") as f:
            f[f"{prefix}_set_x"] = x
            f[f"{prefix}_set_y"] = y
            f["list_classes"] = np.array([b"non-cat", b"cat"])
        arrays[prefix] = (x, y)
    return arrays


def write_image_folder(
    root: Path,
    images: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
    fmt: str = "PNG",
    nested: bool = False,
) -> list[Path]:
    """Save `images` as files in ROOT/CLASS/ (every third in ROOT/CLASS/sub/ when `nested`), as Keras's loader reads
    them; the paths written, in the order of `images`."""
    from PIL import Image

    suffix = {"PNG": ".png", "JPEG": ".jpg"}[fmt]
    paths = []
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / class_names[int(label)]
        if nested and i % 3 == 0:
            folder = folder / "sub"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{i:05d}{suffix}"
        Image.fromarray(image[..., 0] if image.shape[2] == 1 else image).save(path, format=fmt)
        paths.append(path)
    return paths
