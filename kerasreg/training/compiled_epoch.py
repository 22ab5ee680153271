"""The training loop: one compiled call trains one whole epoch (or a chunk of epochs), under any tf.distribute
strategy.

Why not `model.fit`: it spends more per epoch on iterators, callbacks and
validation than an epoch of this model's arithmetic takes (148 ms per MNIST-8k epoch
measured at batch 128, about ten times the compiled epoch; README, Performance); under MultiWorkerMirroredStrategy Keras
3's fit fails outright (keras-team/keras#20585). So, for every strategy:

- The training images stay in memory as bytes, one row of pixel values per image,
  which the training and validation splits index (`EpochData.rows`: no copy of
  either), with their targets: as tensors over the very numpy memory on the host (no copy),
  or copied once to each accelerator replica where they fit
  (kerasreg/distribution/placement.py). Each batch is standardised in the graph as
  it is gathered (the model's preprocessing, which has no trainable weights:
  `kerasreg.model.Standardisation`), so a run holds a quarter of the bytes float32
  features would take, and reads a quarter of them each epoch. Each epoch's order is
  a stateless shuffle of (seed, epoch): a resumed run sees the same batches as an
  uninterrupted one. A cluster's worker holds only its shard of the images
  (kerasreg/datasets/shards.py) and shuffles that, taking 1/W of each global batch from it.
- All steps of an epoch run inside one tf.function, traced without autograph
  (autograph's source conversion cost ~130 ms of a ~200 ms trace).
- In a step each replica takes its slice of the global batch
  (`replica_id_in_sync_group`), sums its weighted losses and divides by the global
  batch (`tf.nn.compute_average_loss`), adds its share of the L2 penalty
  (`tf.nn.scale_regularization_loss`); the optimizer all-reduces the gradients. The
  update is the same as one device's on the whole batch, on every worker.
- After the epoch the same call evaluates the exact objective on the training
  split and the loss and accuracy on the validation split; in a cluster each worker
  sums them over its shard and one all-reduce adds the sums, so every worker sees the
  same figures and their stopping decisions agree.
- Where nothing acts between epochs (no validation split, schedule or convergence
  stop), `run_epochs` runs a chunk of them in one call: the same epoch function in a
  loop, or, for plain full-batch descent, the Gram-matrix form (gram_descent.py).
  An epoch of one step on one replica takes the features whole: no order to draw,
  no gathered copy (10 MB a step for the course's 209 pictures: 5 ms -> 1.5 ms here).

The objective is mean(w_i * cross-entropy_i) + l2 * sum(kernel^2): Keras's scale
for an L2 regulariser, sklearn's C = 1 / (2 * l2 * n).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numpy as np

from kerasreg.datasets import BINARY
from kerasreg.model import CHUNK_VALUES, standardisation
from kerasreg.run_directory import files

# Mixed precision only: lifts small float16 gradients clear of underflow. Keras's
# LossScaleOptimizer fails inside strategy.run ("No gradients provided", from its
# dynamic-scale cond); a static scale does the same job for a one-layer model,
# whose gradients stay far from float16's limits.
STATIC_LOSS_SCALE = 1024.0
_EVAL_CHUNK = 8192  # examples per matmul when evaluating (fewer for large images: 32 MiB of float32 a chunk)
# From this many features, or this many images a replica's step, the kernel gradient is computed as (dlogits^T x)^T
# rather than autodiff's x^T dlogits (`_wide_matmul`). TensorFlow 2.21's CPU matmul, measured here with 10 classes:
# batch 1024 x 784 features 0.90 -> 0.61 ms, 1024 x 3,072 6.7 -> 1.4 ms, 1024 x 12,288 26.6 -> 4.9 ms, 128 x 3,072
# 1.3 -> 0.6 ms; only at small batches of narrow images (256 x 784: 0.49 -> 0.55 ms) does the second form lose.
WIDE_FEATURES = 1024
WIDE_BATCH = 512


@contextlib.contextmanager
def _without_graph_rewrites():
    """Grappler off while the epoch function runs.

    Its rewrites cost ~60 ms when the function is instantiated at its first call,
    a tenth of a MNIST-8k training run, and gain nothing measurable per epoch on a
    one-layer model. The setting is the process's, so it is put back afterwards:
    around a whole run of epochs, not each call (turning it off and on around every
    call cost 3.5 ms an epoch, measured: a fifth of a MNIST-8k epoch).
    """
    import tensorflow as tf

    before = tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False)
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": before})


@dataclass(frozen=True)
class EpochData:
    """One split as the loop reads it: pixel rows [M,D] (uint8), the split's N rows of them (indices; None: all M),
    targets and per-example weights [N]. The training and validation splits index one array: no copy of either."""

    features: np.ndarray
    targets: np.ndarray  # int32 [N] (softmax) or float32 [N,1] (sigmoid)
    weights: np.ndarray
    rows: np.ndarray | None = None  # int32 [N]
    sizes: tuple[int, ...] | None = None  # in a cluster: how many of the split's images each worker holds, in order

    @property
    def n(self) -> int:
        """Images in the split, on every worker together."""
        return len(self.targets) if self.sizes is None else sum(self.sizes)

    @property
    def shape(self) -> tuple[int, int]:
        """(images in the split, on every worker together; features per image)."""
        return self.n, int(self.features.shape[1])

    def gathered(self) -> np.ndarray:
        """The split's own pixel rows [N, D], copied out where it is a subset (for the Gram form, on small data)."""
        return self.features if self.rows is None else self.features[self.rows]


def _wide_matmul(x, kernel):
    """x @ kernel, whose gradient for `kernel` is computed as (upstream^T x)^T: the same sum, several times faster
    for wide x on the CPU (`WIDE_FEATURES`); x, the data, gets none."""
    import tensorflow as tf

    @tf.custom_gradient
    def matmul(x, kernel):
        def gradient(upstream):
            return None, tf.transpose(tf.matmul(upstream, x, transpose_a=True))

        return tf.matmul(x, kernel), gradient

    return matmul(x, kernel)


def host_tensor(array: np.ndarray):
    """A tensor over `array`'s own memory where TensorFlow can share it (C order, 64-byte aligned); else a copy.

    tf.convert_to_tensor always copies: for MNIST's 54,000 training features that
    is 169 MB more at the peak of every run, for nothing.
    """
    import tensorflow as tf

    if array.size and array.flags.c_contiguous and array.ctypes.data % 64 == 0:
        try:
            return tf.experimental.dlpack.from_dlpack(array.__dlpack__())
        except (BufferError, TypeError):  # read-only arrays, dtypes DLPack has no code for
            pass
    return tf.convert_to_tensor(array)


def as_targets(labels: np.ndarray, task: str) -> np.ndarray:
    """Labels as the loss wants them: int32 [N] for softmax, float32 [N,1] for sigmoid."""
    return labels.astype(np.float32).reshape(-1, 1) if task == BINARY else labels.astype(np.int32)


def epoch_data(
    features: np.ndarray,
    labels: np.ndarray,
    task: str,
    weights: np.ndarray | None,
    rows: np.ndarray | None = None,
    sizes: tuple[int, ...] | None = None,
) -> EpochData:
    """Bundle a split for the loop (`features`: pixel rows, `kerasreg.model.pixel_rows`; `rows`: the split's indices
    into them, None for all; `sizes`: each cluster worker's share, kerasreg/datasets/shards.py); no weights
    means every example weighs 1."""
    w = np.ones(len(labels), np.float32) if weights is None else weights.astype(np.float32)
    if rows is not None and len(rows) == len(features) and np.array_equal(rows, np.arange(len(features))):
        rows = None  # every row, in order: read them as they lie, with no gather
    return EpochData(features, as_targets(labels, task), w, None if rows is None else rows.astype(np.int32), sizes)


class CompiledEpoch:
    """Trains `model`'s classifier one epoch per call; see the module docstring.

    Needs no strategy scope around it: it enters `strategy.scope()` itself where it must.
    """

    def __init__(self, model, strategy, task: str, global_batch: int, l2: float, mixed_precision: bool = False):
        import tensorflow as tf

        self.model = model
        self.strategy = strategy
        self.task = task
        self.global_batch = int(global_batch)
        self.classifier = model.get_layer("classifier")
        self.standardise = standardisation(model)
        self.loss_scale = STATIC_LOSS_SCALE if mixed_precision else 1.0
        with strategy.scope():
            # A variable, not a constant: the strength can change without tracing again.
            self.l2 = tf.Variable(float(l2), trainable=False, dtype=tf.float32, name="l2")
        self._train_fn = None
        self._gram = None  # a GramDescent, when use_chunks chose it
        self._running = False
        self.call_seconds: list[float] = []  # each epoch's compiled call alone: what is not fixed cost

    # The loss pieces, shared by the step and the evaluation.
    def _per_example_loss(self, targets, logits):
        import tensorflow as tf

        logits = tf.cast(logits, tf.float32)
        if self.task == BINARY:
            return tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits)[:, 0]
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)

    def _correct(self, targets, logits):
        import tensorflow as tf

        if self.task == BINARY:
            return tf.cast(tf.equal(tf.cast(logits[:, 0] > 0, tf.float32), targets[:, 0]), tf.float32)
        return tf.cast(tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), targets), tf.float32)

    def _penalty(self):
        import tensorflow as tf

        return self.l2 * tf.reduce_sum(tf.square(tf.cast(self.classifier.kernel, tf.float32)))

    def _evaluate(self, data):
        """(sum of the weighted losses, images right) of the current weights on a whole split, in chunks."""
        import tensorflow as tf

        features, targets, weights, split_rows = data
        total, correct = tf.constant(0.0), tf.constant(0.0)
        rows = max(1, min(_EVAL_CHUNK, 2 * CHUNK_VALUES // int(features.shape[1])))  # float32: 32 MiB a chunk
        # The standardisation folded into the weights: logits = (x * gain + shift) @ W + b = x @ (gain * W) +
        # (shift @ W + b), so an evaluation reads each pixel once, cast, and does no per-pixel arithmetic (at 60,000
        # MNIST images it was half the epoch). A measurement, equal to the layers' within float32 rounding;
        # training's steps read the standardised features themselves.
        kernel = tf.cast(self.classifier.kernel, tf.float32)
        gain, shift = self.standardise.gain, self.standardise.shift
        folded_kernel = kernel * (gain[:, None] if np.ndim(gain) else gain)
        folded_bias = tf.cast(self.classifier.bias, tf.float32) + tf.reduce_sum(
            kernel * (shift[:, None] if np.ndim(shift) else shift), axis=0
        )
        # One chunk at a time, and only once the weights are final: nothing else orders these stateless ops, so
        # TensorFlow cast every chunk at once, before the epoch's steps, and held them all through it (a float32
        # copy of the whole split: 1.1 GB more at 21,600 images of 64x64x3).
        after = [folded_kernel]
        for start in range(0, int(targets.shape[0]), rows):
            with tf.control_dependencies(after):
                pixels = (
                    features[start : start + rows]
                    if split_rows is None
                    else tf.gather(features, split_rows[start : start + rows])
                )
                x = tf.cast(pixels, tf.float32)
            y = targets[start : start + rows]
            logits = tf.matmul(x, folded_kernel) + folded_bias
            total += tf.reduce_sum(self._per_example_loss(y, logits) * weights[start : start + rows])
            correct += tf.reduce_sum(self._correct(y, logits))
            after = [total, correct]
        return total, correct

    def compile(self, train: EpochData, val: EpochData | None, placement: str | None = None) -> CompiledEpoch:
        """Trace the epoch function over these splits (once; every later epoch reuses it); returns self.

        `placement` forces where the features live (placement.HOST or REPLICAS);
        by default `place_features` decides from the devices and their free memory.
        """
        import tensorflow as tf

        train_t, train_args, val_t = self._placed(train, val, placement)
        strategy = self.strategy
        self._workers = 1 if train.sizes is None else len(train.sizes)
        self._counts = (train.n, None if val is None else val.n)
        step = self._replica_step()
        n = len(train.targets)  # this worker's
        batch, steps, sizes = self._batches(train)

        whole = steps == 1 and strategy.num_replicas_in_sync == 1

        def train_epoch(seed, train_args, train_t, val_t):
            if whole:  # one step over every image: no order to draw, and no copy of the features to gather
                strategy.run(step, args=(None, None, *train_args))
                return self._logs(train_t, val_t)
            order = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int32), seed=seed)

            def body(i):
                indices = order[i * batch : (i + 1) * batch]
                size = tf.shape(indices)[0] if sizes is None else sizes[i]
                strategy.run(step, args=(indices, size, *train_args))
                return i + 1

            # Automatic control dependencies order the evaluation after the loop's updates.
            tf.while_loop(lambda i: i < steps, body, [tf.constant(0)])
            return self._logs(train_t, val_t)

        def train_epochs(seeds, train_args, train_t, val_t):
            """Row 0: the logs before any step; then a row per epoch, each shuffled by its row of `seeds`."""

            def body(k, logs):
                return k + 1, logs.write(k + 1, train_epoch(seeds[k], train_args, train_t, val_t))

            count = tf.shape(seeds)[0]
            logs = tf.TensorArray(tf.float32, size=count + 1).write(0, self._logs(train_t, val_t))
            return tf.while_loop(lambda k, _: k < count, body, [tf.constant(0), logs])[1].stack()

        # The data goes in as arguments, not captured: TensorFlow keeps a traced graph's
        # captures alive after its function is gone (the search's features would then
        # sit beside the refit's: 1.19 GB instead of 1.0 at the peak of MNIST 60k).
        self._inputs = (train_args, train_t, val_t)
        self._keys = files.EPOCH_LOGS if val_t is not None else files.EPOCH_LOGS[:2]
        self._train_fn = tf.function(train_epoch, autograph=False, reduce_retracing=True)
        self._epochs_fn = tf.function(train_epochs, autograph=False, reduce_retracing=True)
        self._splits = (train, val)
        return self

    def _batches(self, train: EpochData) -> tuple:
        """(images this worker takes a step, steps an epoch, each step's global batch or None where it is the
        worker's own). In a cluster each worker steps through its own shard, a `1/W` part of the global batch at a
        time; every worker takes as many steps as the largest shard needs, and each knows every step's total."""
        import tensorflow as tf

        if train.sizes is None:
            return self.global_batch, -(-len(train.targets) // self.global_batch), None
        batch = self.global_batch // self._workers
        steps = -(-max(train.sizes) // batch)
        starts = np.arange(steps)[:, None] * batch
        totals = np.clip(np.array(train.sizes)[None, :] - starts, 0, batch).sum(axis=1)
        return batch, steps, tf.constant(totals, tf.int32)

    def _across_workers(self, sums):
        """`sums` of every worker added together, the same on each (one all-reduce); each worker's own without."""
        import tensorflow as tf

        if self._workers == 1:
            return sums
        local = self.strategy.num_replicas_in_sync // self._workers

        def add(value):
            context = tf.distribute.get_replica_context()
            first = tf.cast(tf.equal(context.replica_id_in_sync_group % local, 0), value.dtype)  # once per worker
            return context.all_reduce(tf.distribute.ReduceOp.SUM, value * first)

        return self.strategy.experimental_local_results(self.strategy.run(add, args=(sums,)))[0]

    @property
    def features_shape(self) -> tuple[int, int]:
        """(training images, features per image) of the compiled splits."""
        return self._splits[0].shape

    def _logs(self, train_t, val_t):
        """The objective and accuracy on the training split (and the validation split's), as one tensor."""
        import tensorflow as tf

        sums = list(self._evaluate(train_t))
        if val_t is not None:
            sums += self._evaluate(val_t)
        sums = self._across_workers(tf.stack(sums))
        n_train, n_val = (float(n) if n else 1.0 for n in self._counts)  # float32(n), as the division had it
        out = [sums[0] / n_train + self._penalty(), sums[1] / n_train]
        if val_t is not None:
            out += [sums[2] / n_val, sums[3] / n_val]
        return tf.stack(out)  # one tensor: one copy to the host per epoch, not four

    def _replica_step(self):
        """One replica's share of a training step: its slice of the global batch, the loss over the global batch."""
        import tensorflow as tf

        replicas = self.strategy.num_replicas_in_sync
        parts = replicas // self._workers  # the replicas that share a batch of indices: a worker's own in a cluster
        variables = self.classifier.trainable_variables
        optimizer = self.model.optimizer
        # The layer's own matmul and add, with the faster kernel gradient; float32 only (mixed precision keeps the
        # layer's casts).
        big = int(self.classifier.kernel.shape[0]) >= WIDE_FEATURES or self.global_batch // replicas >= WIDE_BATCH
        wide = big and self.standardise.dtype == "float32"

        def replica_step(indices, size, features, targets, weights, rows):
            """`size`: the step's global batch (the last of an epoch may be short), over which the loss is a mean."""
            if indices is None:  # the whole training split, on the one replica
                size, y, w = tf.shape(targets)[0], targets, weights
                x = features if rows is None else tf.gather(features, rows)
            else:
                share = -(-tf.shape(indices)[0] // parts)
                rid = tf.distribute.get_replica_context().replica_id_in_sync_group % parts
                mine = indices[rid * share : (rid + 1) * share]  # empty for a replica past a short batch's end
                y, w = tf.gather(targets, mine), tf.gather(weights, mine)
                x = tf.gather(features, mine if rows is None else tf.gather(rows, mine))
            x = self.standardise.in_graph(x)
            with tf.GradientTape() as tape:
                if wide:
                    logits = _wide_matmul(x, self.classifier.kernel.value) + self.classifier.bias.value
                else:
                    logits = self.classifier(x, training=True)
                loss = tf.nn.compute_average_loss(self._per_example_loss(y, logits) * w, global_batch_size=size)
                loss += tf.nn.scale_regularization_loss(self._penalty())
                scaled = loss * self.loss_scale  # inside the tape: it records only what runs within it
            gradients = [g / self.loss_scale for g in tape.gradient(scaled, variables)]
            optimizer.apply_gradients(zip(gradients, variables, strict=True))
            return loss

        return replica_step

    def _placed(self, train: EpochData, val: EpochData | None, placement: str | None) -> tuple:
        """The splits as tensors where they live: (train as evaluated, train as the replicas read it, val)."""
        from kerasreg.distribution.placement import (
            REPLICAS,
            Placement,
            free_accelerator_bytes,
            place_features,
            replica_devices,
        )

        def tensors(split: EpochData) -> tuple:
            arrays = (split.features, split.targets, split.weights, split.rows)
            return tuple(None if a is None else host_tensor(a) for a in arrays)

        train_t = tensors(train)
        val_t = None if val is None else tensors(val)
        if val is not None and val.features is train.features:
            val_t = (train_t[0], *val_t[1:])  # one tensor over the pixels both splits index
        devices = replica_devices(self.strategy)
        if placement is None:
            shared = val is None or val.features is train.features  # one array, indexed by both splits
            size = train.features.nbytes + (0 if shared else val.features.nbytes)
            self.placement = place_features(size, devices, [free_accelerator_bytes(d) for d in devices])
        else:
            self.placement = Placement(placement, "as asked")
        if self.placement.where != REPLICAS:
            self.feature_devices = (train_t[0].device,)
            return train_t, train_t, val_t
        print(f"features: {self.placement.reason}", flush=True)
        train_t, train_args, val_t = self._replica_copies(train_t, val_t, devices)
        self.feature_devices = tuple(t.device for t in self.strategy.experimental_local_results(train_args[0]))
        return train_t, train_args, val_t

    def _replica_copies(self, train_t: tuple, val_t: tuple | None, devices: list[str]) -> tuple:
        """Each split copied once to every replica's device: (train as evaluated, train per replica, val)."""
        import tensorflow as tf

        strategy = self.strategy

        def per_replica(tensor):
            if tensor is None:
                return None

            def copy(context):
                with tf.device(devices[context.replica_id_in_sync_group % len(devices)]):
                    return tf.identity(tensor)

            return strategy.experimental_distribute_values_from_function(copy)

        train_pr = tuple(per_replica(t) for t in train_t)
        first = tuple(strategy.experimental_local_results(t)[0] for t in train_pr)  # the objective reads one copy
        if val_t is not None:
            with tf.device(devices[0]):
                # The pixels both splits index are copied once: the copy the objective reads serves validation too.
                val_t = tuple(first[0] if t is train_t[0] else None if t is None else tf.identity(t) for t in val_t)
        return first, train_pr, val_t

    @contextlib.contextmanager
    def running(self):
        """The epochs called inside this block run without graph rewrites, set once for all of them."""
        if self._running:
            yield
            return
        with _without_graph_rewrites():
            self._running = True
            try:
                yield
            finally:
                self._running = False

    def run_epoch(self, seed: int, epoch: int) -> dict[str, float]:
        """Train one epoch (order fixed by seed and epoch); the objective and metrics after it."""
        import tensorflow as tf

        if self._train_fn is None:
            raise RuntimeError("CompiledEpoch.compile() first.")
        # The setting is part of the function's instantiation key: the same at every call, or it is rebuilt.
        with self.running():
            inputs = tf.constant([seed, epoch], tf.int64)
            started = time.perf_counter()
            logs = self._train_fn(inputs, *self._inputs)  # returns once the epoch is computed (eager, synchronous)
            self.call_seconds.append(time.perf_counter() - started)
        return dict(zip(self._keys, logs.numpy().tolist(), strict=True))

    def use_chunks(self, total_epochs: int, chunk: int) -> str:
        """Prepare `run_epochs` for a run of `total_epochs` in calls of up to `chunk` epochs; the method chosen.

        "gram" where plain full-batch descent can run through the images' Gram matrix
        (kerasreg/training/gram_descent.py) and that pays; else "epochs", the epoch function in a loop.
        """
        from kerasreg.training import gram_descent

        train, val = self._splits
        n, d = train.shape
        classes = int(self.classifier.kernel.shape[-1])
        self._gram = None
        if gram_descent.eligible(self, train, val, self.model.optimizer) and gram_descent.pays(
            n, d, classes, total_epochs, chunk
        ):
            features = self.standardise.in_numpy(train.gathered())
            self._gram = gram_descent.GramDescent(self, train, features, host_tensor(features))
        return "gram" if self._gram is not None else "epochs"

    def run_epochs(self, seed: int, first: int, count: int) -> tuple[dict[str, float], list[dict[str, float]]]:
        """Train epochs `first` .. `first + count - 1` in one call: (the logs before them, each one's logs after).

        Nothing can change the step or stop the run between them: for runs whose callbacks
        only record (no validation split, no schedule, no convergence stop).
        """
        import tensorflow as tf

        if self._train_fn is None:
            raise RuntimeError("CompiledEpoch.compile() first.")
        with self.running():
            started = time.perf_counter()
            if self._gram is not None:
                logs = self._gram.run(count)
            else:
                seeds = tf.constant([[seed, first + k] for k in range(count)], tf.int64, shape=(count, 2))
                logs = self._epochs_fn(seeds, *self._inputs)
            rows = [dict(zip(self._keys, row, strict=True)) for row in logs.numpy().tolist()]
            elapsed = time.perf_counter() - started
            self.call_seconds.extend([elapsed / max(count, 1)] * count)
        return rows[0], rows[1:]

    def objective(self) -> dict[str, float]:
        """The logs of the current weights (objective, accuracy), without training."""
        return self.run_epochs(0, 0, 0)[0]
