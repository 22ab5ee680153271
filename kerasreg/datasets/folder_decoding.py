"""Decoding a folder's image files on every core, into one preallocated array, with the decoding serve uses.

`resolve_shape` reads the images' headers when the target size or channels were not
given; `decode_files` decodes them with shared/image_files.py. Files whose content is no
image and whose name is no image's are set apart (`not_images`), files that should be
images and do not decode are listed with the reason (`bad`).
"""

from __future__ import annotations

import concurrent.futures
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kerasreg.datasets.views import aligned_empty
from shared.contract import image_pixel_limit
from shared.image_files import IMAGE_SUFFIXES

DEFAULT_SIZE = (64, 64)  # the course's; a folder of smaller images keeps the smallest's size


@dataclass
class Decoded:
    """A split's images as one array, their labels, and the files that did not decode (path, why)."""

    images: np.ndarray
    labels: np.ndarray
    bad: list[tuple[str, str]]
    not_images: list[str]


def resolve_shape(
    files: list[Path], image_size: tuple[int, int] | None, channels: int | None
) -> tuple[tuple[int, int], int]:
    """The target (height, width) and channels: as given, else read from every image's header (in threads).

    Default size: 64x64, or the smallest image's size when every image is smaller. Default
    channels: 3, or 1 when every image is grayscale.
    """
    if image_size is not None and channels is not None:
        return image_size, channels
    from shared.image_files import DECODE_ERRORS, is_grayscale, open_image

    def header(path: Path):
        if not path.is_file():
            return None
        try:
            with open_image(path, str(path), max_pixels=2**62) as image:
                return image.size[1], image.size[0], is_grayscale(image)
        except (*DECODE_ERRORS, OSError):
            return None  # judged when it is decoded

    with concurrent.futures.ThreadPoolExecutor(worker_threads()) as pool:
        headers = [h for h in pool.map(header, files) if h is not None]
    size = image_size
    if size is None:
        size = DEFAULT_SIZE
        if headers and all(h < DEFAULT_SIZE[0] and w < DEFAULT_SIZE[1] for h, w, _ in headers):
            size = min((h, w) for h, w, _ in headers)
    channels = channels or (1 if headers and all(gray for _, _, gray in headers) else 3)
    return size, channels


def worker_threads() -> int:
    """Threads to decode or read files with: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


def decode_files(files: list[tuple[Path, int]], size: tuple[int, int], channels: int, what: str) -> Decoded:
    """Decode every file on every core into one preallocated uint8 array [N, H, W, C]; what failed, listed.

    Pillow lets go of the GIL while it decodes and resizes, so threads use every core
    without copying an image between processes; each writes its image into its own
    row. A file whose content is no image and whose name is no image's is passed over.
    """
    from shared.image_files import NotAnImage, open_image, to_pixels

    # Aligned: the training rows, moved to the front in place (`rows_in_place`), are then read as they lie.
    images = aligned_empty((len(files), *size, channels), np.uint8)
    limit = image_pixel_limit((*size, channels))
    outcome: list[str | None] = [None] * len(files)  # None: decoded; "": not an image; text: why it failed

    def decode(index: int) -> None:
        path = files[index][0]
        if not path.is_file():  # a FIFO or a device would block or never end; a dangling symlink cannot be read
            reason = "not a regular file" if path.exists() else "cannot be read (a dangling symlink, or it vanished)"
            outcome[index] = reason if path.suffix.lower() in IMAGE_SUFFIXES else ""
            return
        try:
            with open_image(path, str(path), limit) as image:
                images[index] = to_pixels(image, size, channels)
        except NotAnImage as e:
            declared = "exceeds the limit" in str(e)
            is_image = declared or path.suffix.lower() in IMAGE_SUFFIXES or "does not decode" in str(e)
            outcome[index] = str(e).removeprefix(f"{path}: ") if is_image else ""
        except OSError as e:  # unreadable: permissions, a broken symlink, a vanished file
            outcome[index] = e.strerror or type(e).__name__

    progress = _Progress(len(files), what)
    with concurrent.futures.ThreadPoolExecutor(worker_threads()) as pool:
        for done, _ in enumerate(pool.map(decode, range(len(files))), 1):
            progress.update(done)
    progress.close()
    keep = np.array([o is None for o in outcome], bool)
    labels = np.array([label for _, label in files], np.int64)
    bad = [(str(files[i][0]), why) for i, why in enumerate(outcome) if why]
    not_images = [str(files[i][0]) for i, why in enumerate(outcome) if why == ""]
    kept = np.flatnonzero(keep)
    return Decoded(rows_in_place(images, kept), labels[kept], bad, not_images)


def rows_in_place(array: np.ndarray, order: np.ndarray) -> np.ndarray:
    """array[order] without a second array: the rows moved within `array` (one row's copy at a time), and a view
    of its first len(order) rows returned. `order` holds distinct row indices.

    An images array is the largest thing a run holds; fancy indexing would copy it
    whole (a folder's loading then peaked at twice its final size).
    """
    order = np.asarray(order, np.int64)
    if len(order) == len(array) and (order == np.arange(len(order))).all():
        return array
    source_of = np.arange(len(array))  # where each row's wanted content sits now
    position = np.arange(len(array))  # where each original row sits now
    for target, wanted in enumerate(order):
        here = position[wanted]
        if here != target:  # swap rows `target` and `here`
            row = array[target].copy()
            array[target] = array[here]
            array[here] = row
            displaced = source_of[target]
            source_of[target], source_of[here] = wanted, displaced
            position[wanted], position[displaced] = target, here
    return array[: len(order)]


class _Progress:
    """A one-line count on a terminal, once loading has taken over a second; nothing in logs."""

    def __init__(self, total: int, what: str):
        self.total, self.what = total, what
        self.started = time.monotonic()
        self.shown = False
        self.tty = sys.stdout.isatty()

    def update(self, done: int) -> None:
        due = self.shown or time.monotonic() - self.started > 1.0
        if self.tty and due and (done % 50 == 0 or done == self.total):
            self.shown = True
            print(f"\rdecoding {self.what}: {done:,}/{self.total:,} images", end="", flush=True)

    def close(self) -> None:
        if self.shown:
            print(flush=True)
