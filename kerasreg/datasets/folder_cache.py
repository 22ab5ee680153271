"""Decoded folders kept, so a second run, `--l2 auto`'s refit, a study or a resume never decodes twice.

    ~/.cache/kerasreg/folders/<key>.npy and <key>.json      ($KERASREG_CACHE_DIR/folders/ when it is set)

The key is a hash of every file's path, class and content, of the target size and
channels, and of the decoder (shared/image_files.py's version and Pillow's): changing,
adding or removing a file, or asking for another size, is another key, decoded
afresh. Content, not size and modification time: swapping two same-sized photos
between class folders with their times kept (as `touch -r`, rsync and many copy
tools do) served the old labels from a key of those. Each file is read and hashed
with xxHash's XXH3 (128 bits, tens of GB/s: reading the bytes is the cost, a few
percent of decoding them), on every core. Entries are written whole (a temporary
name, then a rename), so a killed run leaves no half entry. Clearing it: delete the
folder (each run that writes an entry says where it is).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import mmap
import os
import time
from pathlib import Path

import numpy as np

from kerasreg.datasets.folder_decoding import Decoded, decode_files, worker_threads
from kerasreg.datasets.views import aligned_empty

CACHE_ENV = "KERASREG_CACHE_DIR"
DECODER_VERSION = "1"  # bump when shared/image_files.py decodes differently: old entries are then never read


def cache_folder() -> Path:
    """Where decoded folders are kept: $KERASREG_CACHE_DIR/folders, else ~/.cache/kerasreg/folders."""
    root = os.environ.get(CACHE_ENV) or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kerasreg"
    return Path(root) / "folders"


def cache_key(files: list[tuple[Path, int]], size: tuple[int, int], channels: int) -> str:
    """The hash of everything the decoded arrays depend on (see the module docstring)."""
    import PIL

    digest = hashlib.sha256(f"{DECODER_VERSION} {PIL.__version__} {size} {channels}\n".encode())
    with concurrent.futures.ThreadPoolExecutor(worker_threads()) as pool:
        contents = pool.map(content_digest, [path for path, _ in files], chunksize=16)
        for (path, label), content in zip(files, contents, strict=True):
            digest.update(f"{path}\0{content}\0{label}\n".encode())
    return digest.hexdigest()[:32]


def content_digest(path: Path) -> str:
    """XXH3-128 of a regular file's bytes; "unreadable" for what is not a readable regular file (a FIFO is never
    opened: it could block)."""
    import xxhash

    try:
        if not path.is_file():
            return "unreadable"
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                return "empty"
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                return xxhash.xxh3_128_hexdigest(mapped)
    except (OSError, ValueError):
        return "unreadable"


def cached_decode(files: list[tuple[Path, int]], size: tuple[int, int], channels: int, split: str) -> Decoded:
    """The files decoded: from the cache when they are there unchanged, else decoded now and kept."""
    folder = cache_folder()
    key = cache_key(files, size, channels)
    found = _read(folder, key)
    if found is not None:
        print(f"{split}: {len(found.labels):,} decoded images from the cache ({folder / key}.npy)", flush=True)
        return found
    started = time.perf_counter()
    decoded = decode_files(files, size, channels, split)
    seconds = time.perf_counter() - started
    where = _write(folder, key, decoded)
    kept = f"; kept in {where} (delete {folder} to clear the cache)" if where else ""
    print(f"{split}: decoded {len(decoded.labels):,} images in {seconds:.1f} s{kept}", flush=True)
    return decoded


def load_aligned(path: Path) -> np.ndarray:
    """A .npy file's array, read into 64-byte-aligned memory: training then reads its rows without a copy
    (`kerasreg.model.pixel_rows`; np.load's arrays start 16 bytes past a page, and each cost a copy of the set)."""
    from numpy.lib import format as npy

    with open(path, "rb") as file:
        major, _ = npy.read_magic(file)
        shape, fortran, dtype = (npy.read_array_header_1_0 if major == 1 else npy.read_array_header_2_0)(file)
        if fortran or dtype.hasobject:
            raise ValueError(f"{path}: not a C-ordered array of numbers")
        array = aligned_empty(shape, dtype)
        if file.readinto(memoryview(array.reshape(-1)).cast("B")) != array.nbytes:
            raise ValueError(f"{path}: truncated")
    return array


def _read(folder: Path, key: str) -> Decoded | None:
    try:
        record = json.loads((folder / f"{key}.json").read_text())
        images = load_aligned(folder / f"{key}.npy")
        labels = np.asarray(record["labels"], np.int64)
        bad = [tuple(item) for item in record["bad"]]
        if len(labels) != len(images):
            return None
        return Decoded(images, labels, bad, list(record["not_images"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # none, or damaged: decode again (and overwrite it)


def _write(folder: Path, key: str, decoded: Decoded) -> Path | None:
    """Keep `decoded` under `key`; None when the cache cannot be written (it is only a cache)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{key}.{os.getpid()}.npy"
        np.save(partial, decoded.images, allow_pickle=False)
        os.replace(partial, folder / f"{key}.npy")
        record = {"labels": decoded.labels.tolist(), "bad": decoded.bad, "not_images": decoded.not_images}
        partial = folder / f".{key}.{os.getpid()}.json"
        partial.write_text(json.dumps(record))
        os.replace(partial, folder / f"{key}.json")  # last: its presence commits the entry
    except OSError:
        return None
    return folder / f"{key}.npy"
