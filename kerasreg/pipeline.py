"""tf.data input pipelines over in-memory uint8 arrays."""

from __future__ import annotations

import numpy as np

from kerasreg.datasets import BINARY


def as_targets(labels: np.ndarray, task: str) -> np.ndarray:
    """Labels as the loss wants them: int64 [N] for softmax, float32 [N,1] for sigmoid."""
    return labels.astype(np.float32).reshape(-1, 1) if task == BINARY else labels.astype(np.int64)


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    task: str,
    global_batch: int,
    *,
    sample_weights: np.ndarray | None = None,
    shuffle_seed: int | None = None,
):
    """A batched, prefetched tf.data.Dataset of (images, targets[, weights]).

    Shuffles every epoch when `shuffle_seed` is given (a seed, so runs repeat).
    No `.cache()`: the arrays already sit in memory, and caching them again would
    only double the footprint.
    """
    import tensorflow as tf

    tensors = (images, as_targets(labels, task))
    if sample_weights is not None:
        tensors += (sample_weights.astype(np.float32),)
    ds = tf.data.Dataset.from_tensor_slices(tensors)
    if shuffle_seed is not None:
        ds = ds.shuffle(len(images), seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.batch(global_batch).prefetch(tf.data.AUTOTUNE)
