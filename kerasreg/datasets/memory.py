"""Whether a set of images fits in this machine's memory, asked before decoding: a set that cannot fit is refused
in one line, naming what it needs and what there is, instead of being killed by the kernel half way.

What a run holds for its images, measured (benchmarks/memory_bench.py): the decoded pixels, which the training and
validation parts index rather than copy, and the transients of evaluation; a run on arrays also holds the caller's
own and the dataset's copy of them: at most RUN_BYTES_PER_PIXEL_BYTE times the pixels. And TensorFlow, the model
and the traced epoch beside them, FIXED_BYTES.
"""

from __future__ import annotations

import os

from kerasreg.errors import DatasetError

RUN_BYTES_PER_PIXEL_BYTE = 2.5  # measured 2.44 at 30,000 images of 64x64x3, the caller's own array included
# A loader that reads its files into the one array training indexes (CIFAR-10 batches): measured 1.15 at 1.28
# million images of 32x32x3 (benchmarks/scale_bench.py), TensorFlow aside.
LOADED_BYTES_PER_PIXEL_BYTE = 1.5
FIXED_BYTES = 1 << 30  # 906 MiB measured for TensorFlow, the model and the traced epoch on 500 images
HEADROOM = 0.9  # of the memory available: the rest for the system and whatever else runs


def available_bytes() -> int | None:
    """The memory available to a new allocation now (Linux's MemAvailable), or None where it cannot be read."""
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


FOLDER_REMEDY = "Use a smaller --image-size, a subset of the images, or a machine with more memory."


def check_fits(
    images: int,
    shape: tuple[int, int, int],
    what: str,
    available: int | None = None,
    remedy: str = FOLDER_REMEDY,
    at_most: bool = False,
    per_pixel_byte: float = RUN_BYTES_PER_PIXEL_BYTE,
) -> None:
    """DatasetError when `images` of `shape` (uint8) would not fit in the memory available, with what it needs and
    `remedy`, what to do about it; `at_most`: `images` is a bound read from file sizes, not a count;
    `per_pixel_byte`: what the run holds for each byte of pixels."""
    available = available_bytes() if available is None else available
    if available is None:
        return
    pixels = images * shape[0] * shape[1] * shape[2]
    needed = int(pixels * per_pixel_byte) + FIXED_BYTES
    if needed > HEADROOM * available:
        count = f"{'up to ' if at_most else ''}{images:,} images of {shape[0]}x{shape[1]}x{shape[2]}"
        raise DatasetError(
            f"{what}: {count} need about {needed / 2**30:.1f} GiB to train ({pixels / 2**30:.1f} GiB of pixels), "
            f"and this machine has {available / 2**30:.1f} GiB available. {remedy}"
        )
