"""CIFAR-10 in its distribution format: `cifar-10-batches-py` or `cifar-10-python.tar.gz`.

Each batch is a Python 2 pickle of a dict with b"data" (uint8 [N, 3072], channel
planes R, G, B of 32x32 each) and b"labels". Pickles can run code when loaded, so
they are read with `SafeArrayUnpickler`, which resolves only the numpy names an
array needs and refuses every other global.
"""

from __future__ import annotations

import codecs
import io
import pickle
import re
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np

from kerasreg.datasets.container import ImageDataset
from kerasreg.datasets.memory import LOADED_BYTES_PER_PIXEL_BYTE, check_fits
from kerasreg.datasets.shards import Shard
from kerasreg.datasets.views import aligned_empty
from kerasreg.errors import DatasetError

BATCHES_DIR = "cifar-10-batches-py"
TARBALL = "cifar-10-python.tar.gz"
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
_PIXELS = 32 * 32 * 3
_TRAIN_BATCH = re.compile(r"^data_batch_(\d+)$")
# The array constructor as numpy itself pickles it, under its numpy 1 and numpy 2 names.
_RECONSTRUCT = np.empty(0).__reduce__()[0]
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    # Python 3 writes bytes in protocol 2 through _codecs.encode: a pure function.
    ("_codecs", "encode"): codecs.encode,
}


class ForbiddenGlobal(pickle.UnpicklingError):
    """A pickle asked for a global outside the allowed list."""


class SafeArrayUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays and plain containers, nothing else."""

    def find_class(self, module: str, name: str) -> object:
        """Resolve only the globals an array needs; refuse the rest."""
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise ForbiddenGlobal(f"global {module}.{name} is not allowed in a CIFAR batch") from None


def load_cifar_batch(stream: IO[bytes], label: str) -> tuple[np.ndarray, np.ndarray]:
    """Read one batch pickle into uint8 images [N,32,32,3] and int64 labels [N].

    Raises:
        DatasetError: the pickle is malicious, truncated or not a CIFAR-10 batch.
    """
    try:
        batch = SafeArrayUnpickler(stream, encoding="bytes").load()
    except ForbiddenGlobal as e:
        raise DatasetError(f"{label}: refused to load ({e}); this is not a CIFAR-10 batch.") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, OSError) as e:
        raise DatasetError(f"{label}: truncated or corrupt CIFAR-10 batch ({e}); download it again.") from None
    if not isinstance(batch, dict):
        raise DatasetError(f"{label}: expected a dict with data and labels, got {type(batch).__name__}.")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        raise DatasetError(f"{label}: data must be uint8 [N, 3072], got {shape}; not a CIFAR-10 batch.")
    labels = np.asarray(labels if labels is not None else [], dtype=np.int64)
    if labels.shape != (len(data),):
        raise DatasetError(f"{label}: {len(data)} images but {labels.shape} labels; the batch is corrupt.")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _batch_sort_key(name: str) -> int:
    match = _TRAIN_BATCH.match(name)
    return int(match.group(1)) if match else 0


def _read_batches(
    names: list[str],
    sizes: list[int],
    read: Callable[[str], tuple[IO[bytes], str]],
    where: str,
    shard: Shard | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The training batches `names` (of `sizes` bytes each), read one at a time into one 64-byte-aligned array
    (training reads its rows where they lie): (images, labels). `read` opens a batch and names it for errors.
    With a cluster worker's `shard`, only its images are kept (every label is: the splits are drawn from them all).

    Refused before any is read where they cannot fit (`memory.check_fits`). Each image takes at least its 3,072
    pixel bytes of a batch, so the batches' sizes bound how many there are: 1% high for the official batches
    (3,104 bytes an image), ~30% for batches Python 3 pickled at protocol 2 (their bytes go through latin-1 and
    UTF-8). The array is made that large and filled batch by batch, each batch freed once copied: the pages past
    the last image are never written, so never resident, and a load peaks at one copy of the images and a batch
    (np.concatenate of the batches held two: 8.2 GB at 1.28 million images, against 4.9 while training).
    """
    shard = shard or Shard(0, 1)
    bound = shard.held(sum(sizes) // _PIXELS)
    remedy = "Train on fewer data_batch_* files, or on a machine with more memory."
    check_fits(bound, (32, 32, 3), where, remedy=remedy, at_most=True, per_pixel_byte=LOADED_BYTES_PER_PIXEL_BYTE)
    images = aligned_empty((bound, 32, 32, 3), np.uint8)
    labels, start, kept = [], 0, 0
    for name in names:
        stream, label = read(name)
        with stream:
            batch, batch_labels = load_cifar_batch(stream, label)
        mine = batch[(shard.index - start) % shard.count :: shard.count]  # the images whose index is the shard's
        if kept + len(mine) > bound:  # cannot happen for a real pickle (see above): say so rather than overrun
            raise DatasetError(f"{where}: {name} holds more images than its size allows; it is not a CIFAR-10 batch.")
        images[kept : kept + len(mine)] = mine
        labels.append(batch_labels)
        start += len(batch)
        kept += len(mine)
        del batch, mine
    return images[:kept], np.concatenate(labels)


def resolve_cifar_location(data_dir: Path) -> Path | None:
    """The batches folder or tarball for `data_dir`, or None when there is neither.

    `data_dir` may hold `cifar-10-batches-py/` or the tarball (as keras and tfds keep
    them), or be the batches folder itself.
    """
    for candidate in (data_dir / BATCHES_DIR, data_dir):
        if (candidate / "test_batch").is_file():
            return candidate
    if (data_dir / TARBALL).is_file():
        return data_dir / TARBALL
    return None


def _load_from_folder(folder: Path, shard: Shard | None) -> ImageDataset:
    names = sorted((p.name for p in folder.iterdir() if _TRAIN_BATCH.match(p.name)), key=_batch_sort_key)
    if not names:
        raise DatasetError(f"cifar10: no data_batch_* files in {folder}; put all of cifar-10-batches-py there.")
    sizes = [(folder / name).stat().st_size for name in names]

    def read(name: str) -> tuple[IO[bytes], str]:
        return open(folder / name, "rb"), str(folder / name)

    train_x, train_y = _read_batches(names, sizes, read, str(folder), shard)
    with open(folder / "test_batch", "rb") as f:
        test = load_cifar_batch(f, str(folder / "test_batch"))
    return _dataset(train_x, train_y, test, f"files:{folder}", shard)


def _dataset(train_x: np.ndarray, train_y: np.ndarray, test: tuple, source: str, shard: Shard | None) -> ImageDataset:
    """The loaded batches as an ImageDataset, its training images a `shard`'s (all of them for None or one worker)."""
    shard = None if shard is None or shard.count == 1 else shard
    return ImageDataset("cifar10", train_x, train_y, *test, CIFAR10_CLASSES, source=source, shard=shard)


def _load_from_tarball(path: Path, shard: Shard | None) -> ImageDataset:
    # Read members straight from the archive: nothing is extracted to disk.
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
            names = sorted((n for n in members if _TRAIN_BATCH.match(n)), key=_batch_sort_key)
            if not names or "test_batch" not in members:
                raise DatasetError(f"{path}: no data_batch_*/test_batch inside; this is not {TARBALL}.")

            def read(name: str) -> tuple[IO[bytes], str]:
                return io.BytesIO(tar.extractfile(members[name]).read()), f"{path}:{name}"

            train_x, train_y = _read_batches(names, [members[n].size for n in names], read, str(path), shard)
            test = load_cifar_batch(*read("test_batch"))
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DatasetError(f"{path}: cannot read the archive ({e}); download it again.") from None
    return _dataset(train_x, train_y, test, f"files:{path}", shard)


def load_cifar10_files(data_dir: Path | str, shard: Shard | None = None) -> ImageDataset:
    """Load CIFAR-10 from the python batches (folder or tar.gz) found at `data_dir`: only `shard`'s training images
    where one is given (kerasreg/datasets/shards.py)."""
    data_dir = Path(data_dir)
    location = resolve_cifar_location(data_dir)
    if location is None:
        raise DatasetError(
            f"cifar10: neither {BATCHES_DIR}/ nor {TARBALL} found in {data_dir}; "
            f"download {TARBALL} from https://www.cs.toronto.edu/~kriz/cifar.html and put it there."
        )
    if location.name == TARBALL:
        return _load_from_tarball(location, shard)
    return _load_from_folder(location, shard)
