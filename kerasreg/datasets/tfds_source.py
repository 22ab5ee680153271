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


def classification_features(info, label: str) -> tuple[str, str]:
    """The image and label features of a tfds set (its supervised keys when it has them); DatasetError otherwise."""
    import tensorflow_datasets as tfds

    features = info.features
    images = [k for k, f in features.items() if isinstance(f, tfds.features.Image)]
    labels = [k for k, f in features.items() if isinstance(f, tfds.features.ClassLabel)]
    keys = info.supervised_keys
    if isinstance(keys, tuple) and len(keys) == 2 and keys[0] in images and keys[1] in labels:
        return keys
    if len(images) != 1 or len(labels) != 1:
        found = ", ".join(f"{k} ({type(f).__name__})" for k, f in features.items())
        raise DatasetError(
            f"{label}: not an image classification set: it needs one image feature and one class label, and has "
            f"{found}; kerasreg trains on images with one label each."
        )
    return images[0], labels[0]


def load_tfds_images(
    spec: str, data_dir: Path | None, size: tuple[int, int] | None, channels: int | None, test_split: float, seed: int
) -> ImageDataset:
    """Any tensorflow-datasets image classification set, `name` or `name/config`, as an ImageDataset.

    The image and label features and the class names come from the builder's info;
    its test split is the test split, or when it has none a stratified share of its
    training split. Images of varying size (or asked at another size or channel count)
    are brought to one with shared/image_files.py, as a folder's are.
    """
    import tensorflow_datasets as tfds

    label = f"tfds:{spec}"
    try:
        builder = tfds.builder(spec, data_dir=str(data_dir) if data_dir else None)
    except Exception as e:  # noqa: BLE001 - tfds raises its own kinds for an unknown name or config
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise DatasetError(
            f"{label}: not a tensorflow-datasets set ({first}); names are listed at "
            "https://www.tensorflow.org/datasets/catalog (e.g. tfds:fashion_mnist, tfds:eurosat/rgb)."
        ) from None
    image_key, label_key = classification_features(builder.info, label)
    check_download_reachable(label, builder, data_dir)
    known = set(builder.info.splits.keys())  # empty before the set is prepared (and under tfds's mock data)
    if known and "train" not in known:
        raise DatasetError(f"{label}: it has no train split (it has: {', '.join(sorted(known))}).")
    try:
        arrays = _load_splits(tfds, spec, data_dir, ["train", "test"] if not known or "test" in known else ["train"],
                              image_key, label_key)  # fmt: skip
    except _NoSuchSplit:
        arrays = _load_splits(tfds, spec, data_dir, ["train"], image_key, label_key)
    has_test = len(arrays) == 2
    arrays = [(_to_shape(x, size, channels, label), y) for x, y in arrays]
    if has_test:
        (train_x, train_y), (test_x, test_y) = arrays
    else:
        from kerasreg.datasets.views import TEST_SPLIT_REMEDY, stratified_split

        ((x, y),) = arrays
        train, test = stratified_split(y, test_split, seed, "the test split", TEST_SPLIT_REMEDY)
        (train_x, train_y), (test_x, test_y) = (x[train], y[train]), (x[test], y[test])
    classes = tuple(builder.info.features[label_key].names)
    name = spec.replace("/", "-")
    where = data_dir or "default data_dir"
    return ImageDataset(name, train_x, train_y, test_x, test_y, classes, source=f"{label}@{where}")


class _NoSuchSplit(Exception):
    """The set has no test split: the test images are drawn from its training split."""


def _load_splits(tfds, spec: str, data_dir, splits: list[str], image_key: str, label_key: str) -> list:
    """(images, labels) per split, read in chunks: uint8 arrays when the images have one size, else lists."""
    try:
        datasets = tfds.load(spec, split=splits, data_dir=str(data_dir) if data_dir else None)
    except Exception as e:  # noqa: BLE001 - tfds raises many kinds (network, checksum, registry) for one cause
        if "test" in splits and "split" in str(e).lower() and "test" in str(e):
            raise _NoSuchSplit from None
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise DatasetError(
            f"tfds:{spec}: tensorflow-datasets could not load it ({type(e).__name__}: {first}); with no network, "
            "put the images in class folders and pass --dataset folder --data-dir DIR."
        ) from None
    loaded = []
    for dataset in datasets:
        images, labels = [], []
        for example in tfds.as_numpy(dataset):
            images.append(example[image_key])
            labels.append(example[label_key])
        if not images:
            raise DatasetError(f"tfds:{spec}: tensorflow-datasets returned an empty split; delete its data_dir copy.")
        loaded.append((images, np.asarray(labels, np.int64)))
    return loaded


def _to_shape(images: list, size: tuple[int, int] | None, channels: int | None, label: str) -> np.ndarray:
    """One uint8 array [N,H,W,C]: as the set gives it when every image has one shape and none was asked, else each
    image through shared/image_files.py to `size` (64x64 when the set's sizes vary) and `channels`."""
    shapes = {np.shape(x) for x in images}
    if len(shapes) == 1 and size is None and channels is None:
        (shape,) = shapes
        if len(shape) == 3 and shape[2] in (1, 3):
            return np.stack(images).astype(np.uint8)
    from PIL import Image

    from kerasreg.datasets.folder_decoding import DEFAULT_SIZE
    from shared.image_files import to_pixels

    size = size or (next(iter(shapes))[:2] if len(shapes) == 1 else DEFAULT_SIZE)
    channels = channels or (1 if all(len(s) == 2 or s[2] == 1 for s in shapes) else 3)
    out = np.empty((len(images), *size, channels), np.uint8)
    for i, image in enumerate(images):
        array = np.asarray(image, np.uint8)
        array = array[..., 0] if array.ndim == 3 and array.shape[2] == 1 else array
        out[i] = to_pixels(Image.fromarray(array), size, channels)
    return out
