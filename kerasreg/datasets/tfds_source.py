"""MNIST and CIFAR-10 through tensorflow-datasets (`tfds.load`)."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from kerasreg.datasets.container import ImageDataset
from kerasreg.errors import DatasetError


def _to_arrays(tfds, split) -> tuple[np.ndarray, np.ndarray]:
    # Chunked batches, not batch_size=-1: the latter aborts the process on datasets of
    # unknown cardinality (seen with tfds.testing.mock_data).
    images, labels = [], []
    for x, y in tfds.as_numpy(split.batch(8192)):
        images.append(x)
        labels.append(y)
    if not images:
        raise DatasetError("tensorflow-datasets returned an empty split; delete its data_dir copy and retry.")
    return np.concatenate(images), np.concatenate(labels)


REACH_TIMEOUT = 5.0  # seconds; tfds itself retries a dead host for minutes before it gives up


def check_download_reachable(name: str, builder, data_dir: Path | None) -> None:
    """Fail fast when tfds would have to download `name` and its download host cannot be reached."""
    if builder.is_prepared():
        return
    hosts = sorted({urlparse(url).hostname for url in (builder.url_infos or {})} - {None})
    for host in hosts:
        try:
            socket.create_connection((host, 443), timeout=REACH_TIMEOUT).close()
        except OSError as e:
            raise DatasetError(
                f"{name}: not prepared in {data_dir or 'the tfds data_dir'} and its download host {host} is "
                f"unreachable ({e.strerror or type(e).__name__}); with no network, put the distribution files "
                "in a folder and pass --data-dir DIR --source files."
            ) from None


def load_tfds(name: str, data_dir: Path | None) -> ImageDataset:
    """Load the train and test splits of tfds dataset `name` into memory.

    tfds downloads and prepares the data into `data_dir` (tfds's own default,
    ~/tensorflow_datasets, when None) unless it is already there.
    """
    import tensorflow_datasets as tfds

    check_download_reachable(name, tfds.builder(name, data_dir=str(data_dir) if data_dir else None), data_dir)
    try:
        (train, test), info = tfds.load(
            name,
            split=["train", "test"],
            data_dir=str(data_dir) if data_dir else None,
            as_supervised=True,
            with_info=True,
        )
    except Exception as e:  # tfds raises many kinds (network, checksum, registry) for one cause
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise DatasetError(
            f"{name}: tensorflow-datasets could not load it ({type(e).__name__}: {first_line}); with no "
            f"network, put the distribution files in a folder and pass --data-dir DIR --source files."
        ) from None
    train_x, train_y = _to_arrays(tfds, train)
    test_x, test_y = _to_arrays(tfds, test)
    classes = tuple(info.features["label"].names)
    where = data_dir or "default data_dir"
    return ImageDataset(
        name,
        train_x.astype(np.uint8),
        train_y.astype(np.int64),
        test_x.astype(np.uint8),
        test_y.astype(np.int64),
        classes,
        source=f"tfds:{name}@{where}",
    )
