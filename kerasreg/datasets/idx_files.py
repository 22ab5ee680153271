"""MNIST in its distribution format: IDX files, gzip-compressed or raw.

Format (yann.lecun.com/exdb/mnist): a big-endian magic of two zero bytes, a type
byte (0x08 = unsigned byte) and the number of dimensions, then one big-endian
uint32 per dimension, then the data.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from kerasreg.datasets.container import ImageDataset
from kerasreg.errors import DatasetError

MNIST_CLASSES = tuple(str(d) for d in range(10))
# Both spellings occur in the wild: the official "-idx3-" and the ".idx3-" of some mirrors.
_STEMS = {
    "train_images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train_labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test_images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test_labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}
_UBYTE = 0x08


def find_idx_file(directory: Path, stems: tuple[str, ...]) -> Path | None:
    """The first of `stems` found in `directory`, raw or with .gz, or None."""
    for stem in stems:
        for name in (stem, stem + ".gz"):
            if (directory / name).is_file():
                return directory / name
    return None


def read_idx(path: Path | str) -> np.ndarray:
    """Read one IDX file of unsigned bytes (gzip or raw) into a uint8 array.

    Raises:
        DatasetError: the file is not IDX, not unsigned bytes, truncated or corrupt.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as e:  # zlib.error: a .gz whose body is garbage
        raise DatasetError(f"{path}: cannot read this IDX file ({e}); download it again.") from None
    if len(data) < 4 or data[:2] != b"\x00\x00":
        raise DatasetError(f"{path}: not an IDX file (bad magic number); expected MNIST's *-idx?-ubyte files.")
    dtype_code, ndim = data[2], data[3]
    if dtype_code != _UBYTE:
        raise DatasetError(f"{path}: IDX data type 0x{dtype_code:02x}; expected 0x08 (unsigned byte).")
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise DatasetError(f"{path}: truncated IDX header; download the file again.")
    shape = struct.unpack(">" + "I" * ndim, data[4:header])
    expected = int(np.prod(shape, dtype=np.int64))
    if len(data) - header != expected:
        raise DatasetError(
            f"{path}: header says {shape} = {expected} bytes but the file holds {len(data) - header}; "
            "it is truncated or corrupt, download it again."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _read_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1:
        raise DatasetError(
            f"{images_path.name}/{labels_path.name}: expected images [N,28,28] and labels [N], "
            f"got {images.shape} and {labels.shape}."
        )
    if len(images) != len(labels):
        raise DatasetError(
            f"{images_path.name} has {len(images)} images but {labels_path.name} has {len(labels)} labels."
        )
    return images[..., np.newaxis], labels.astype(np.int64)


def load_mnist_files(directory: Path | str) -> ImageDataset:
    """Load MNIST from the four official IDX files (raw or .gz) in `directory`."""
    directory = Path(directory)
    paths = {key: find_idx_file(directory, stems) for key, stems in _STEMS.items()}
    missing = [_STEMS[key][0] for key, p in paths.items() if p is None]
    if missing:
        raise DatasetError(
            f"mnist: {', '.join(missing)}[.gz] not found in {directory}; put the four MNIST IDX files there."
        )
    train_x, train_y = _read_pair(paths["train_images"], paths["train_labels"])
    test_x, test_y = _read_pair(paths["test_images"], paths["test_labels"])
    return ImageDataset("mnist", train_x, train_y, test_x, test_y, MNIST_CLASSES, source=f"files:{directory}")


def has_mnist_files(directory: Path) -> bool:
    """Whether `directory` holds at least one MNIST IDX file."""
    return any(find_idx_file(directory, stems) for stems in _STEMS.values())
