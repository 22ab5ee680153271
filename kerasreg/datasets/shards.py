"""Each cluster worker's shard of the training images: worker w of W holds rows w, w + W, w + 2W, ... only.

By position, not by part: every split a run makes (validation, folds, undersampling, the refit on all) is an index
set over the same rows, so each part's shard is simply its rows that the worker holds, and one array serves them
all. Every worker computes the same splits from every label (labels are small, pixels are not), so each knows every
other's share of a part without asking (`sizes`): the steps of an epoch, and each step's global batch, agree.

A source that can read only the shard's images does (CIFAR-10's batches: `load_dataset(..., shard=)`); from the
others the shard is taken after loading, in place where the run owns the images, the pages past it handed back to
the kernel, so that a worker's peak is at least never above a single process's (a copy of the shard beside the
whole set would be 1.5 times the pixels, for a moment).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap

import numpy as np

from kerasreg.datasets.container import Shard
from kerasreg.datasets.views import aligned_empty

__all__ = ["Shard", "take_shard"]

_MADV_DONTNEED = 4  # Linux's value; the same on every architecture it runs on


def take_shard(images: np.ndarray, shard: Shard, owned: bool) -> np.ndarray:
    """The shard's images, [held, ...]: moved to the front of `images` itself when the run `owned` them and they
    can be written (the pages past the shard are released), else copied out."""
    held = shard.held(len(images))
    if not (owned and images.flags.writeable and images.flags.c_contiguous and _anonymous(images)):
        taken = aligned_empty((held, *images.shape[1:]), images.dtype)  # aligned: training reads it in place
        taken[...] = images[shard.index :: shard.count]
        return taken
    # Front to back, a chunk of rows at a time: row j comes from row index + j * count >= j, so no row is overwritten
    # before it is read. numpy buffers the overlap within a chunk: small chunks keep that buffer small (one of 64 MiB
    # stayed held by the allocator after the shard was taken).
    step = max(1, (4 << 20) // max(1, images[0].nbytes))
    for start in range(0, held, step):
        stop = min(held, start + step)
        images[start:stop] = images[shard.index + start * shard.count : shard.index + stop * shard.count : shard.count]
    _release(images, held)
    return images[:held]


def _anonymous(images: np.ndarray) -> bool:
    """Whether `images` lies in memory numpy allocated (not a file mapped, nor a buffer someone else holds)."""
    base = images
    while isinstance(base, np.ndarray) and not base.flags.owndata:
        base = base.base
    return isinstance(base, np.ndarray) and not isinstance(base, np.memmap)


def _release(images: np.ndarray, kept: int) -> None:
    """Hand the whole pages past the first `kept` rows back to the kernel: the resident memory drops to the shard.

    numpy cannot shrink an array in place and the standard library's madvise is only for its own mmap objects, so
    this calls libc's; nothing reads those rows again. Where that cannot be done, the memory stays held (no harm).
    """
    page = mmap.PAGESIZE
    start = images.ctypes.data + kept * images[0].nbytes
    end = images.ctypes.data + images.nbytes
    first, last = -(-start // page) * page, end // page * page
    if last <= first:
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.madvise(ctypes.c_void_p(first), ctypes.c_size_t(last - first), _MADV_DONTNEED)
    except (OSError, AttributeError):
        pass
