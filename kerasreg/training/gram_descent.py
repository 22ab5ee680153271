"""Full-batch gradient descent in the span of the training images: the course's recipe at a fraction of its cost.

Plain gradient descent from weights W0, without L2, only ever adds X^T G (X the
training features, n x D; G a gradient per image) to the weights, and sum(G) to the
bias. After any number of steps the weights are W0 + X^T A for some A with one row
per image, and the bias b0 + 1^T A. The training logits are then

    X W0 + b0 + (X X^T + 1) A = q + K A

with K = X X^T + 1 computed once: an n x n product per step instead of the two
n x D ones (forward and backward) of the usual step. For the course's 209 images of
12,288 pixels that is 60 times less arithmetic; measured, 2,000 steps take ~0.1 s
where TensorFlow's usual step takes ~1.2 s and the notebook's numpy loop ~2 s (it is
memory-bound: X is read twice a step). The iterates are plain descent's up to float
rounding: tests/test_chunked_epochs.py compares the two, and the course's costs agree
with the notebook's to 1e-5.

Used by `CompiledEpoch.run_epochs` only where it is the same algorithm (`eligible`):
one step per epoch over every training image, Keras SGD without momentum, no L2,
one replica, float32, no validation split; and where it pays (`pays`).
"""

from __future__ import annotations

import numpy as np

from kerasreg.datasets import BINARY

MAX_GRAM_BYTES = 256 * 2**20  # K is n x n float32: up to 8,192 training images
_UNROLL = 8  # steps per turn of the while loop: its own overhead per turn was half a step's time (measured)


def eligible(loop, train, val, optimizer) -> bool:
    """Whether `loop` (a CompiledEpoch) trains exactly as plain full-batch gradient descent without L2."""
    import keras

    n = len(train.targets)
    return (
        val is None
        and loop.global_batch >= n
        and loop.strategy.num_replicas_in_sync == 1
        and loop.loss_scale == 1.0
        and float(loop.l2.numpy()) == 0.0
        and type(optimizer) is keras.optimizers.SGD
        and float(optimizer.momentum) == 0.0
        and not optimizer.nesterov
        and not any(
            getattr(optimizer, name, None)
            for name in ("weight_decay", "clipnorm", "clipvalue", "global_clipnorm", "use_ema")
        )
        and n * n * 4 <= MAX_GRAM_BYTES
    )


def pays(n: int, d: int, classes: int, epochs: int, chunk: int) -> bool:
    """Whether `epochs` steps cost less this way than the usual way, counting multiply-adds.

    Usual: 3 n D C a step (forward, backward, the objective after it). This way: n^2 D
    once for K, n^2 C a step, and 2 n D C a chunk (the logits of its first weights and
    its last weights from A).
    """
    usual = 3 * n * d * classes * epochs
    gram = n * n * d + n * n * classes * epochs + 2 * n * d * classes * -(-epochs // chunk)
    return gram < usual


class GramDescent:
    """Runs chunks of full-batch descent steps through K; see the module docstring."""

    def __init__(self, loop, train, features: np.ndarray, features_tensor):
        """`loop` a CompiledEpoch; `train` its training split (EpochData); `features` the split's standardised
        features (every step reads every image, so they are made once), and the same as a tensor."""
        import tensorflow as tf

        self.loop = loop
        self.classifier = loop.classifier
        self.optimizer = loop.model.optimizer
        # K in numpy: OpenBLAS makes it in 11 ms here, TensorFlow's CPU matmul in 40 (measured).
        gram = features @ features.T + np.float32(1.0)
        self._inputs = (features_tensor, tf.constant(gram), *self._targets(train))
        self._fn = tf.function(self._chunk, autograph=False, reduce_retracing=True)

    def _targets(self, train) -> tuple:
        """The targets as the gradient wants them ([n, C], one-hot for softmax) and each image's weight / n."""
        import tensorflow as tf

        classes = int(self.classifier.kernel.shape[-1])
        if self.loop.task == BINARY:
            onehot = train.targets
        else:
            onehot = np.eye(classes, dtype=np.float32)[train.targets]
        per_image = (train.weights / len(train.weights)).astype(np.float32)[:, None]
        return tf.constant(onehot), tf.constant(per_image), tf.constant(train.targets), tf.constant(train.weights)

    def run(self, count: int):
        """`count` steps; a [count + 1, 2] tensor: the objective and accuracy before them, then after each."""
        import tensorflow as tf

        whole = count - count % _UNROLL
        logs = self._fn(tf.constant(whole, tf.int32), _UNROLL, *self._inputs)
        if whole == count:
            return logs
        # The last few steps of an odd chunk, one a turn: a second, small trace, made only when a run needs it.
        rest = self._fn(tf.constant(count - whole, tf.int32), 1, *self._inputs)
        return tf.concat([logs, rest[1:]], axis=0)

    def _chunk(self, count, turns: int, features, gram, onehot, per_image, targets, weights):
        """`count` steps (a multiple of `turns`); see the module docstring for what runs.

        The loop carries the logits z alone: z <- z - K diag(step) (activation(z) - y), 4 operations
        a step. A, which the weights need, is summed from the logits kept for the history afterwards.
        """
        import tensorflow as tf

        activation = tf.sigmoid if self.loop.task == BINARY else tf.nn.softmax
        kernel, bias = self.classifier.kernel, self.classifier.bias
        w0, b0 = tf.convert_to_tensor(kernel), tf.convert_to_tensor(bias)
        q = tf.matmul(features, w0) + b0
        step = tf.cast(self.optimizer.learning_rate, tf.float32) * per_image  # [n, 1]: each image's step
        scaled = gram * tf.transpose(step)  # K diag(step)
        pull = tf.matmul(scaled, onehot)

        def body(t, z, zs):
            for j in range(turns):
                z = (z + pull) - tf.matmul(scaled, activation(z))
                zs = zs.write(t * turns + j + 1, z)  # after the step: row 0 holds the logits before any
            return t + 1, z, zs

        zs = tf.TensorArray(tf.float32, size=count + 1).write(0, q)
        _, _, zs = tf.while_loop(lambda t, *_: t < count // turns, body, [tf.constant(0), q, zs])
        logits = zs.stack()  # [count + 1, n, C]
        a = -step * tf.reduce_sum(activation(logits[:-1]) - onehot, axis=0)
        kernel.assign(w0 + tf.matmul(features, a, transpose_a=True))
        bias.assign(b0 + tf.reduce_sum(a, axis=0))
        self.optimizer.iterations.assign_add(tf.cast(count, self.optimizer.iterations.dtype))
        return self._logs(logits, targets, weights)

    def _logs(self, logits, targets, weights):
        """[rows, 2]: each row's mean weighted loss (no penalty: there is no L2 here) and accuracy."""
        import tensorflow as tf

        rows, n = tf.shape(logits)[0], tf.shape(logits)[1]
        flat = tf.reshape(logits, [rows * n, -1])
        tiled = tf.tile(targets, [rows] + [1] * (len(targets.shape) - 1))
        loss = self.loop._per_example_loss(tiled, flat) * tf.tile(weights, [rows])
        correct = self.loop._correct(tiled, flat)
        loss = tf.reduce_mean(tf.reshape(loss, [rows, n]), axis=1)
        accuracy = tf.reduce_mean(tf.reshape(correct, [rows, n]), axis=1)
        return tf.stack([loss, accuracy], axis=1)
