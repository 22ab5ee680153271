"""What a training run is made of, before its first epoch: the split, the balancing, the batch, the model."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass

import numpy as np

from kerasreg.config import TrainConfig
from kerasreg.datasets import ImageDataset
from kerasreg.datasets.views import balanced_class_weights, stratified_split, undersampled
from kerasreg.distribution.strategy import StrategyChoice, even_global_batch
from kerasreg.model import build_model, pixel_rows, pixel_statistics


@dataclass(frozen=True)
class TrainingData:
    """The training and validation parts after the task view, split and balancing: index sets into one array of
    every training image's pixel rows, not copies of them (a copy of each part was 0.8 times the pixels more at the
    peak of a run; benchmarks/memory_bench.py)."""

    pixels: np.ndarray  # [N, H*W*C] uint8, every training image (`kerasreg.model.pixel_rows`)
    train_rows: np.ndarray  # int32 indices into `pixels`, ascending
    train_labels: np.ndarray
    train_weights: np.ndarray | None
    val_rows: np.ndarray | None = None
    val_labels: np.ndarray | None = None
    val_weights: np.ndarray | None = None

    @property
    def has_val(self) -> bool:
        """Whether a validation part is held out (early stopping watches it)."""
        return self.val_rows is not None

    @property
    def n_val(self) -> int:
        """Images held out for validation (0 without a validation part)."""
        return 0 if self.val_rows is None else len(self.val_rows)

    def part(
        self, rows: np.ndarray, labels: np.ndarray, weights: np.ndarray | None, val: tuple | None = None
    ) -> TrainingData:
        """A TrainingData over the same pixels: `rows` to train on (indices into `pixels`), and `val` as
        (rows, labels, weights) or None."""
        val_rows, val_labels, val_weights = val if val is not None else (None, None, None)
        return TrainingData(self.pixels, rows, labels, weights, val_rows, val_labels, val_weights)

    def epoch_data(self, task: str) -> tuple:
        """(training part, validation part or None) as the compiled epoch reads them (`EpochData`)."""
        from kerasreg.training.compiled_epoch import epoch_data

        train = epoch_data(self.pixels, self.train_labels, task, self.train_weights, self.train_rows)
        if self.val_rows is None:
            return train, None
        return train, epoch_data(self.pixels, self.val_labels, task, self.val_weights, self.val_rows)


def prepare_training_data(data: ImageDataset, config: TrainConfig, pixels: np.ndarray | None = None) -> TrainingData:
    """Hold out validation data, then balance the rest as `config.balance` says.

    `pixels`: the training images' pixel rows when another part already holds them (the search's, for its refit).

    With class weights the validation loss is weighted the same way, so early
    stopping watches the objective being trained, not the majority-dominated one.
    """
    labels = data.train_labels
    train = np.arange(len(labels))
    held = None
    if config.val_split:
        train, held = stratified_split(labels, config.val_split, config.seed, what=f"val_split={config.val_split}")
    if config.balance == "undersample":
        train = train[undersampled(labels[train], config.seed)]
    weights = val_weights = None
    if config.balance == "class_weight":
        per_class = balanced_class_weights(labels[train], data.num_classes)
        weights = per_class[labels[train]]
        val_weights = per_class[labels[held]] if held is not None else None
    pixels = pixel_rows(data.train_images) if pixels is None else pixels
    val = (None, None, None) if held is None else (held.astype(np.int32), labels[held], val_weights)
    return TrainingData(pixels, train.astype(np.int32), labels[train], weights, *val)


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
        mean, variance = pixel_statistics(setup.split.pixels, setup.split.train_rows)
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
    split = prepare_training_data(setup.data, config, setup.split.pixels)
    return TrainingSetup(setup.data, split, config, setup.choice)
