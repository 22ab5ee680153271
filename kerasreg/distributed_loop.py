"""A custom training loop with `strategy.run`, for where Keras's `model.fit` cannot go.

Keras 3's `model.fit` fails under MultiWorkerMirroredStrategy (keras-team/keras#20585,
"PerReplica ... to a Tensor"). This loop trains the same Keras model with the same
optimizer, callbacks (history, backup, early stopping) and run directory:

- input: `distribute_datasets_from_function`, each worker reading its own shard,
  repeated, so every worker runs the same number of steps (a worker with one
  batch more would wait forever in the all-reduce);
- loss: per-example loss x sample weight, averaged over the GLOBAL batch with
  `tf.nn.compute_average_loss`, L2 scaled with `tf.nn.scale_regularization_loss`,
  so gradients summed across replicas equal the single-process gradient;
- validation: every worker evaluates the whole validation split with the same
  weights, so their early-stopping decisions agree without communication.
"""

from __future__ import annotations

import math

import numpy as np

from kerasreg.datasets import BINARY, ImageDataset
from kerasreg.pipeline import as_targets

_EVAL_BATCH = 1024
STATIC_LOSS_SCALE = 1024.0  # mixed precision only: lifts small float16 gradients clear of underflow


def _loss_object(task: str):
    import keras

    if task == BINARY:
        return keras.losses.BinaryCrossentropy(reduction=None)
    return keras.losses.SparseCategoricalCrossentropy(reduction=None)


def weighted_loss(model, images: np.ndarray, labels: np.ndarray, weights: np.ndarray | None, task: str) -> tuple:
    """(loss, accuracy) of `model` on arrays, as Keras reports them: mean(loss*w) + regularisation."""
    loss_object = _loss_object(task)
    targets = as_targets(labels, task)
    total, correct = 0.0, 0
    for start in range(0, len(images), _EVAL_BATCH):
        x, y = images[start : start + _EVAL_BATCH], targets[start : start + _EVAL_BATCH]
        p = model(x, training=False)
        per_example = np.asarray(loss_object(y, p))
        w = np.ones(len(x)) if weights is None else weights[start : start + _EVAL_BATCH]
        total += float((per_example * w).sum())
        p = np.asarray(p)
        predicted = (p[:, 0] > 0.5).astype(int) if task == BINARY else p.argmax(axis=1)
        correct += int((predicted == labels[start : start + _EVAL_BATCH]).sum())
    regularisation = float(sum(np.asarray(v) for v in model.losses)) if model.losses else 0.0
    return total / len(images) + regularisation, correct / len(images)


def _distributed_input(strategy, images, labels, weights, task: str, global_batch: int, seed: int):
    import tensorflow as tf

    targets = as_targets(labels, task)
    weights = np.ones(len(labels), np.float32) if weights is None else weights.astype(np.float32)

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        per_replica = context.get_per_replica_batch_size(global_batch)
        ds = tf.data.Dataset.from_tensor_slices((images, targets, weights))
        ds = ds.shard(context.num_input_pipelines, context.input_pipeline_id)
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True).repeat()
        return ds.batch(per_replica, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    return strategy.distribute_datasets_from_function(dataset_fn)


def train_step_fn(model, strategy, task: str, global_batch: int):
    """A tf.function running one synchronous step on every replica; returns (loss, correct) summed."""
    import keras
    import tensorflow as tf

    loss_object = _loss_object(task)
    optimizer, loss_scale = model.optimizer, 1.0
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        # Keras's LossScaleOptimizer fails inside strategy.run ("No gradients provided",
        # from its dynamic-scale cond); a static scale on its inner optimizer does the
        # same job for a one-layer model, whose gradients stay far from float16's limits.
        optimizer, loss_scale = optimizer.inner_optimizer, STATIC_LOSS_SCALE

    def replica_step(x, y, w):
        with tf.GradientTape() as tape:
            p = tf.cast(model(x, training=True), tf.float32)
            loss = tf.nn.compute_average_loss(loss_object(y, p) * w, global_batch_size=global_batch)
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n([tf.cast(v, tf.float32) for v in model.losses]))
            scaled_loss = loss * loss_scale  # inside the tape: it records only what runs within it
        variables = model.trainable_variables
        gradients = [g / loss_scale for g in tape.gradient(scaled_loss, variables)]
        optimizer.apply_gradients(zip(gradients, variables, strict=True))
        if task == BINARY:
            predicted = tf.cast(p[:, 0] > 0.5, tf.int64)
            truth = tf.cast(y[:, 0], tf.int64)
        else:
            predicted, truth = tf.argmax(p, axis=1), tf.cast(y, tf.int64)
        return loss, tf.reduce_sum(tf.cast(predicted == truth, tf.float32))

    @tf.function
    def step(iterator):
        loss, correct = strategy.run(replica_step, args=next(iterator))
        return (
            strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None),
            strategy.reduce(tf.distribute.ReduceOp.SUM, correct, axis=None),
        )

    return step


def fit_custom(
    model, data: ImageDataset, training, config, strategy, callbacks: list, initial_epoch: int, verbose: bool = True
) -> None:
    """Train for epochs initial_epoch..config.epochs-1, calling `callbacks` as model.fit would."""
    global_batch = config.batch_size
    n = len(training.train_labels)
    steps = max(1, math.ceil(n / global_batch))
    dist_input = _distributed_input(
        strategy,
        training.train_images,
        training.train_labels,
        training.train_weights,
        data.task,
        global_batch,
        config.seed,
    )
    iterator = iter(dist_input)
    step = train_step_fn(model, strategy, data.task, global_batch)
    for callback in callbacks:
        callback.set_model(model)
        callback.on_train_begin()
    model.stop_training = False
    for epoch in range(initial_epoch, config.epochs):
        total_loss = total_correct = 0.0
        for _ in range(steps):
            loss, correct = step(iterator)
            total_loss += float(loss)
            total_correct += float(correct)
        logs = {"loss": total_loss / steps, "accuracy": total_correct / (steps * global_batch)}
        if training.val is not None:
            logs["val_loss"], logs["val_accuracy"] = weighted_loss(
                model, *training.val, training.val_weights, data.task
            )
        if verbose:
            print(
                f"Epoch {epoch + 1}/{config.epochs} - " + " - ".join(f"{k}: {v:.4f}" for k, v in logs.items()),
                flush=True,
            )
        for callback in callbacks:
            callback.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    for callback in callbacks:
        callback.on_train_end()
