"""Fitting a compiled model under a strategy: data, model, callbacks, backup and resume."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kerasreg import run_dir as files
from kerasreg.config import TrainConfig
from kerasreg.datasets import BINARY, ImageDataset
from kerasreg.datasets.views import balanced_class_weights, split_validation, undersample
from kerasreg.model import build_model, loss_name, pixel_statistics
from kerasreg.pipeline import make_dataset
from kerasreg.strategy import StrategyChoice

_PREDICT_BATCH = 1024


@dataclass(frozen=True)
class TrainingData:
    """The training and validation arrays after the task view, split and balancing."""

    train_images: np.ndarray
    train_labels: np.ndarray
    train_weights: np.ndarray | None
    val: tuple[np.ndarray, np.ndarray] | None
    val_weights: np.ndarray | None = None


def prepare_training_data(data: ImageDataset, config: TrainConfig) -> TrainingData:
    """Hold out validation data, then balance the rest as `config.balance` says.

    With class weights the validation loss is weighted the same way, so early
    stopping watches the objective being trained, not the majority-dominated one.
    """
    (images, labels), val = split_validation(data.train_images, data.train_labels, config.val_split, config.seed)
    weights = val_weights = None
    if config.balance == "undersample":
        images, labels = undersample(images, labels, config.seed)
    elif config.balance == "class_weight":
        per_class = balanced_class_weights(labels, data.num_classes)
        weights = per_class[labels]
        val_weights = per_class[val[1]] if val is not None else None
    return TrainingData(images, labels, weights, val, val_weights)


def make_model(data: ImageDataset, training: TrainingData, config: TrainConfig, choice: StrategyChoice):
    """Build and compile the model in the strategy's scope (variables, optimizer, metrics)."""
    import keras

    mean = variance = None
    if config.normalize == "per-pixel":
        mean, variance = pixel_statistics(training.train_images)
    with choice.strategy.scope():
        model = build_model(
            data.input_shape,
            data.num_classes,
            data.task,
            mean=mean,
            variance=variance,
            l2=config.l2,
            mixed_precision=config.mixed_precision,
            name=f"logreg_{data.name}",
        )
        lr = config.resolved_learning_rate
        optimizer = keras.optimizers.Adam(lr) if config.optimizer == "adam" else keras.optimizers.SGD(lr)
        if config.mixed_precision:
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)  # float16 gradients underflow without it
        model.compile(optimizer=optimizer, loss=loss_name(data.task), metrics=["accuracy"])
        # Slots now, in scope: created lazily inside a strategy.run step they would be
        # per-replica placeholders that nothing feeds.
        model.optimizer.build(model.trainable_variables)
    return model


def uses_custom_loop(config: TrainConfig, choice: StrategyChoice) -> bool:
    """Whether to train with the strategy.run loop rather than model.fit."""
    if config.training_loop == "auto":
        return choice.kind == "multi_worker"
    return config.training_loop == "custom"


def fit(
    model, data: ImageDataset, training: TrainingData, config: TrainConfig, choice: StrategyChoice, work_dir: Path
) -> list[dict]:
    """Train with early stopping on validation loss, backing up every epoch; resume a backup if one is there.

    Returns one dict per epoch of the whole run (resumed epochs included).
    """
    import keras

    from kerasreg.callbacks import EpochBackup, HistoryRecorder

    backup = EpochBackup(work_dir / files.BACKUP)
    with choice.strategy.scope():
        initial_epoch = backup.restore(model)
    if initial_epoch:
        print(
            f"resuming from {backup.backup_dir}: {initial_epoch} epochs done, continuing at epoch "
            f"{initial_epoch + 1} of {config.epochs}",
            flush=True,
        )
    rows: list[dict] = []
    # History before backup: if a kill falls between them, the rerun trims the row
    # of the epoch the backup does not hold, and logs it again once.
    callbacks = [HistoryRecorder(rows, work_dir / files.HISTORY, initial_epoch), backup]
    if training.val is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=config.patience, restore_best_weights=True, verbose=1
            )
        )
    if uses_custom_loop(config, choice):
        from kerasreg.distributed_loop import fit_custom

        fit_custom(model, data, training, config, choice.strategy, callbacks, initial_epoch)
        return rows
    train_ds = make_dataset(
        training.train_images,
        training.train_labels,
        data.task,
        config.batch_size,
        sample_weights=training.train_weights,
        shuffle_seed=config.seed,
    )
    val_ds = None
    if training.val is not None:
        val_ds = make_dataset(*training.val, data.task, config.batch_size, sample_weights=training.val_weights)
    if initial_epoch < config.epochs:
        # A live progress bar on a terminal; one line per epoch in logs and CI.
        model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=config.epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            verbose=1 if sys.stdout.isatty() else 2,
            shuffle=False,
        )
    return rows


def predict_probabilities(model, images: np.ndarray, task: str) -> np.ndarray:
    """[N, K] class probabilities, calling the model directly in batches (works under any strategy)."""
    from kerasreg.evaluation import class_probabilities

    outputs = [
        np.asarray(model(images[i : i + _PREDICT_BATCH], training=False), dtype=np.float32)
        for i in range(0, len(images), _PREDICT_BATCH)
    ]
    width = 1 if task == BINARY else None
    stacked = np.concatenate(outputs) if outputs else np.zeros((0, width or 0), np.float32)
    return class_probabilities(stacked, task)


def weights_digest(model) -> str:
    """sha256 of the model's weights: equal on every worker of a synchronous run."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(weight.tobytes())
    return digest.hexdigest()
