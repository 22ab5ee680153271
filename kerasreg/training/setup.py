"""What a training run is made of, before its first epoch: the split, the balancing, the batch, the model."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass

import numpy as np

from kerasreg.config import TrainConfig
from kerasreg.datasets import ImageDataset
from kerasreg.datasets.views import balanced_class_weights, split_validation, undersample
from kerasreg.distribution.strategy import StrategyChoice, even_global_batch
from kerasreg.model import build_model, pixel_statistics


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


@dataclass(frozen=True)
class TrainingSetup:
    """Everything a training run is made of: the data, its split, the options in force, the strategy."""

    data: ImageDataset
    split: TrainingData
    config: TrainConfig  # with the global batch fitted to the replicas
    choice: StrategyChoice


def setup_run(data: ImageDataset, config: TrainConfig, choice: StrategyChoice) -> TrainingSetup:
    """The split and balancing `config` asks for, and the global batch resolved and fitted to the replicas."""
    split = prepare_training_data(data, config)
    return TrainingSetup(data, split, fit_batch_to_replicas(config, len(split.train_labels), choice.replicas), choice)


def fit_batch_to_replicas(config: TrainConfig, n_train: int, replicas: int) -> TrainConfig:
    """The config with the batch resolved for `n_train` images, split evenly across replicas (saying so when not)."""
    batch = config.resolved_batch_size(n_train)
    fitted = even_global_batch(batch, replicas)
    if fitted == batch:
        return dataclasses.replace(config, batch_size=batch)
    print(
        f"warning: global batch {batch} does not divide evenly across {replicas} replicas; "
        f"training with {fitted} ({fitted // replicas} per replica).",
        file=sys.stderr,
        flush=True,
    )
    return dataclasses.replace(config, batch_size=fitted)


def make_model(setup: TrainingSetup):
    """Build the model and its optimizer in the strategy's scope (variables, optimizer slots).

    Its initial weights are the seed's draw: Python's, numpy's and TensorFlow's generators are seeded here (Keras's
    one call for all three), so the search's model and the refit's start alike, whatever ran before.
    Compiled with the optimizer only: the compiled epoch (compiled_epoch.py) computes
    the loss and the metrics itself, so Keras's would never run.
    """
    import keras

    config, data = setup.config, setup.data
    keras.utils.set_random_seed(config.seed)
    mean = variance = None
    if config.normalize == "per-pixel":
        mean, variance = pixel_statistics(setup.split.train_images)
    with setup.choice.strategy.scope():
        model = build_model(
            data.input_shape,
            data.num_classes,
            data.task,
            mean=mean,
            variance=variance,
            mixed_precision=config.mixed_precision,
            name=f"logreg_{data.name}",
            init=config.init,
        )
        lr = config.resolved_learning_rate
        optimizer = keras.optimizers.Adam(lr) if config.optimizer == "adam" else keras.optimizers.SGD(lr)
        model.compile(optimizer=optimizer)
        # Slots now, in scope: created lazily inside a strategy.run step they would be
        # per-replica placeholders that nothing feeds.
        model.optimizer.build(model.trainable_variables)
    return model


def refit_setup(setup: TrainingSetup, l2: float) -> TrainingSetup:
    """The setup of the refit after the search: every training image (no validation split) at strength `l2`."""
    config = dataclasses.replace(setup.config, l2=l2, val_split=0.0)
    return TrainingSetup(setup.data, prepare_training_data(setup.data, config), config, setup.choice)
