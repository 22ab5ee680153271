"""Fitting a compiled model under a strategy: data pipelines, callbacks, history."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kerasreg.config import TrainConfig
from kerasreg.datasets import ImageDataset
from kerasreg.datasets.views import balanced_class_weights, split_validation, undersample
from kerasreg.model import build_model, loss_name, pixel_statistics
from kerasreg.pipeline import make_dataset
from kerasreg.strategy import StrategyChoice


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
            name=f"logreg_{data.name}",
        )
        lr = config.resolved_learning_rate
        optimizer = keras.optimizers.Adam(lr) if config.optimizer == "adam" else keras.optimizers.SGD(lr)
        model.compile(optimizer=optimizer, loss=loss_name(data.task), metrics=["accuracy"])
    return model


def fit(
    model,
    data: ImageDataset,
    training: TrainingData,
    config: TrainConfig,
    choice: StrategyChoice,
    history_path: Path | None,
) -> list[dict]:
    """Train `model` with early stopping on validation loss; return one dict per epoch."""
    import keras

    from kerasreg.callbacks import HistoryRecorder

    train_ds = make_dataset(
        training.train_images,
        training.train_labels,
        data.task,
        config.batch_size,
        sample_weights=training.train_weights,
        shuffle_seed=config.seed,
    )
    val_ds = None
    rows: list[dict] = []
    callbacks = [HistoryRecorder(rows, history_path)]
    if training.val is not None:
        val_ds = make_dataset(*training.val, data.task, config.batch_size, sample_weights=training.val_weights)
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=config.patience, restore_best_weights=True, verbose=1
            )
        )
    # A live progress bar on a terminal; one line per epoch in logs and CI.
    verbose = 1 if sys.stdout.isatty() else 2
    model.fit(
        train_ds, validation_data=val_ds, epochs=config.epochs, callbacks=callbacks, verbose=verbose, shuffle=False
    )
    return rows
