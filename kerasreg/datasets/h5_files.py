"""The course's cat-vs-non-cat images: `train_catvnoncat.h5` and `test_catvnoncat.h5`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kerasreg.datasets.container import BINARY, ImageDataset
from kerasreg.errors import DatasetError

TRAIN_FILE = "train_catvnoncat.h5"
TEST_FILE = "test_catvnoncat.h5"


def _read_h5(path: Path, prefix: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            images = np.asarray(f[f"{prefix}_set_x"][:])
            labels = np.asarray(f[f"{prefix}_set_y"][:]).reshape(-1)
            classes = tuple(
                c.decode() if isinstance(c, bytes) else str(c) for c in np.asarray(f["list_classes"][:]).reshape(-1)
            )
    except KeyError as e:
        raise DatasetError(
            f"{path}: missing dataset {e}; expected keys {prefix}_set_x, {prefix}_set_y, list_classes."
        ) from None
    except OSError as e:
        raise DatasetError(f"{path}: not a readable HDF5 file ({e}); download it again.") from None
    if images.dtype != np.uint8 or images.ndim != 4:
        raise DatasetError(f"{path}: {prefix}_set_x must be uint8 [N,H,W,3], got {images.dtype} {images.shape}.")
    return images, labels.astype(np.int64), classes


def load_catvnoncat_files(directory: Path | str) -> ImageDataset:
    """Load the week-2 exercise's two h5 files from `directory`."""
    directory = Path(directory)
    missing = [n for n in (TRAIN_FILE, TEST_FILE) if not (directory / n).is_file()]
    if missing:
        raise DatasetError(
            f"catvnoncat: {', '.join(missing)} not found in {directory}; copy the course's week-2 "
            "datasets/ files there."
        )
    train_x, train_y, classes = _read_h5(directory / TRAIN_FILE, "train")
    test_x, test_y, _ = _read_h5(directory / TEST_FILE, "test")
    return ImageDataset(
        "catvnoncat", train_x, train_y, test_x, test_y, classes, task=BINARY, source=f"files:{directory}"
    )
