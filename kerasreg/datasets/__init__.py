"""Datasets: every source yields an `ImageDataset` of raw uint8 images.

from kerasreg.datasets import load_dataset
data = load_dataset("cifar10", source="files", data_dir="~/data")
"""

from __future__ import annotations

from pathlib import Path

from kerasreg.datasets.arrays import ARRAYS
from kerasreg.datasets.cifar_files import load_cifar10_files, resolve_cifar_location
from kerasreg.datasets.container import BINARY, MULTICLASS, ImageDataset
from kerasreg.datasets.digits import load_digits_dataset
from kerasreg.datasets.h5_files import load_catvnoncat_files
from kerasreg.datasets.idx_files import has_mnist_files, load_mnist_files
from kerasreg.datasets.image_folders import FolderOptions, load_folder
from kerasreg.datasets.shards import Shard
from kerasreg.datasets.views import one_vs_rest
from kerasreg.errors import DatasetError

DATASET_CHOICES = ("mnist", "cifar10", "cat", "catvnoncat", "digits", "folder")
TFDS_PREFIX = "tfds:"  # tfds:NAME[/CONFIG]: any tensorflow-datasets image classification set
SOURCE_CHOICES = ("auto", "tfds", "files")
CAT_CLASS = 3  # CIFAR-10's "cat"

__all__ = [
    "BINARY",
    "DATASET_CHOICES",
    "MULTICLASS",
    "SOURCE_CHOICES",
    "FolderOptions",
    "ImageDataset",
    "load_dataset",
]


def known_dataset(name: str) -> bool:
    """Whether `name` names a dataset: one of DATASET_CHOICES, tfds:NAME[/CONFIG], or arrays (given in Python)."""
    return name in (*DATASET_CHOICES, ARRAYS) or (name.startswith(TFDS_PREFIX) and len(name) > len(TFDS_PREFIX))


def _files_present(name: str, data_dir: Path | None) -> bool:
    if data_dir is None:
        return False
    if name == "mnist":
        return has_mnist_files(data_dir)
    return resolve_cifar_location(data_dir) is not None


def _load_tfds_or_files(name: str, source: str, data_dir: Path | None, shard: Shard | None = None) -> ImageDataset:
    use_files = source == "files" or (source == "auto" and _files_present(name, data_dir))
    if not use_files:
        from kerasreg.datasets.tfds_source import load_tfds

        return load_tfds(name, data_dir)
    if data_dir is None:
        raise DatasetError(f"{name}: --source files needs --data-dir, the folder that holds the files.")
    return load_mnist_files(data_dir) if name == "mnist" else load_cifar10_files(data_dir, shard)


def load_dataset(
    name: str,
    source: str = "auto",
    data_dir: Path | str | None = None,
    options: FolderOptions | None = None,
    shard: Shard | None = None,
) -> ImageDataset:
    """Load dataset `name` from `source` ("auto" = files when present, else tfds).

    `options` shape the datasets that need them: a folder of images, and tfds:NAME
    sets (size, channels, the test split drawn where there is none). `shard`: a cluster worker's; sources that can
    (CIFAR-10's batches) then read only its training images (and every label), the others read them all.

    Raises:
        DatasetError: unknown name, or data that cannot be had from that source;
            the message starts with the dataset's name.
    """
    try:
        return _load(name, source, data_dir, options or FolderOptions(), shard)
    except DatasetError as e:
        if str(e).startswith(f"{name}:") or not known_dataset(name):
            raise
        raise DatasetError(f"{name}: {e}") from None


def _load(
    name: str, source: str, data_dir: Path | str | None, options: FolderOptions, shard: Shard | None = None
) -> ImageDataset:
    if not known_dataset(name):
        raise DatasetError(f"Received dataset={name!r}. Expected one of {', '.join(DATASET_CHOICES)}, or tfds:NAME.")
    if source not in SOURCE_CHOICES:
        raise DatasetError(f"Received source={source!r}. Expected one of {', '.join(SOURCE_CHOICES)}.")
    data_dir = Path(data_dir).expanduser() if data_dir is not None else None
    if data_dir is not None and not data_dir.is_dir() and source != "tfds" and not name.startswith(TFDS_PREFIX):
        raise DatasetError(f"{name}: --data-dir {data_dir} is not a folder; create it and put the files there.")
    if name.startswith(TFDS_PREFIX):
        if source == "files":
            raise DatasetError(f"{name}: it comes from tensorflow-datasets; use --source auto or tfds.")
        from kerasreg.datasets.tfds_source import load_tfds_images

        spec = name[len(TFDS_PREFIX) :]
        return load_tfds_images(spec, data_dir, options.image_size, options.channels, options.test_split, options.seed)
    if name == ARRAYS:
        raise DatasetError("arrays: the images come from Python: kerasreg.train(images=..., labels=...).")
    if name == "folder":
        if source == "tfds" or data_dir is None:
            raise DatasetError("folder: needs --data-dir DIR, the folder of class folders (DIR/CLASS/image.jpg).")
        return load_folder(data_dir, options)
    if name == "digits":
        if source != "auto":
            raise DatasetError("digits: it is bundled with scikit-learn; use --source auto (the default).")
        return load_digits_dataset()
    if name == "catvnoncat":
        if source == "tfds":
            raise DatasetError("catvnoncat: not in tensorflow-datasets; use --source files with --data-dir.")
        if data_dir is None:
            raise DatasetError(
                "catvnoncat: needs --data-dir, the folder holding train_catvnoncat.h5 and test_catvnoncat.h5."
            )
        return load_catvnoncat_files(data_dir)
    if name == "cat":
        return one_vs_rest(_load_tfds_or_files("cifar10", source, data_dir, shard), CAT_CLASS, name="cat")
    return _load_tfds_or_files(name, source, data_dir, shard)
