"""What a training run is made of, before its first epoch: the split, the balancing, the batch, the model."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass

import numpy as np

from kerasreg.config import TrainConfig
from kerasreg.datasets import ImageDataset
from kerasreg.datasets.shards import Shard, take_shard
from kerasreg.datasets.views import balanced_class_weights, stratified_split, undersampled
from kerasreg.distribution.strategy import StrategyChoice, even_global_batch
from kerasreg.model import build_model, pixel_rows, pixel_sums, statistics_of


@dataclass(frozen=True)
class TrainingData:
    """The training and validation parts after the task view, split and balancing: index sets into one array of
    every training image's pixel rows, not copies of them (a copy of each part was 0.8 times the pixels more at the
    peak of a run; benchmarks/memory_bench.py).

    In a cluster, `pixels` holds this worker's shard only (kerasreg/datasets/shards.py): the parts still index
    every training image, and `epoch_data` gives the compiled epoch the rows this worker holds.
    """

    pixels: np.ndarray  # [N, H*W*C] uint8, every training image (`kerasreg.model.pixel_rows`), or the shard's
    train_rows: np.ndarray  # int32 indices of every training image, ascending
    train_labels: np.ndarray
    train_weights: np.ndarray | None
    val_rows: np.ndarray | None = None
    val_labels: np.ndarray | None = None
    val_weights: np.ndarray | None = None
    labels: np.ndarray | None = None  # every training image's label: what later splits (folds, the refit) start from
    shard: Shard | None = None

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
        return TrainingData(
            self.pixels, rows, labels, weights, val_rows, val_labels, val_weights, self.labels, self.shard
        )

    def held(self, rows: np.ndarray, labels: np.ndarray, weights: np.ndarray | None) -> tuple:
        """(rows as indices into `pixels`, labels, weights, every worker's count) of a part's rows this worker holds;
        the count is None outside a cluster."""
        if self.shard is None:
            return rows, labels, weights, None
        mine = self.shard.mine(rows)
        kept = None if weights is None else weights[mine]
        return self.shard.local(rows[mine]), labels[mine], kept, self.shard.sizes(rows)

    def epoch_data(self, task: str) -> tuple:
        """(training part, validation part or None) as the compiled epoch reads them (`EpochData`)."""
        from kerasreg.training.compiled_epoch import epoch_data

        rows, labels, weights, sizes = self.held(self.train_rows, self.train_labels, self.train_weights)
        train = epoch_data(self.pixels, labels, task, weights, rows, sizes)
        if self.val_rows is None:
            return train, None
        rows, labels, weights, sizes = self.held(self.val_rows, self.val_labels, self.val_weights)
        return train, epoch_data(self.pixels, labels, task, weights, rows, sizes)


def prepare_training_data(data: ImageDataset, config: TrainConfig, like: TrainingData | None = None) -> TrainingData:
    """Hold out validation data, then balance the rest as `config.balance` says.

    `like`: a TrainingData over the same images whose pixels (and shard) this one shares (the search's, for its
    refit and folds).

    With class weights the validation loss is weighted the same way, so early
    stopping watches the objective being trained, not the majority-dominated one.
    """
    labels = data.train_labels if like is None else like.labels
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
    pixels = pixel_rows(data.train_images) if like is None else like.pixels
    val = (None, None, None) if held is None else (held.astype(np.int32), labels[held], val_weights)
    shard = data.shard if like is None else like.shard
    return TrainingData(pixels, train.astype(np.int32), labels[train], weights, *val, labels, shard)


@dataclass(frozen=True)
class TrainingSetup:
    """Everything a training run is made of: the data, its split, the options in force, the strategy."""

    data: ImageDataset
    split: TrainingData
    config: TrainConfig  # with the global batch fitted to the replicas
    choice: StrategyChoice


def setup_run(data: ImageDataset, config: TrainConfig, choice: StrategyChoice, owned: bool = False) -> TrainingSetup:
    """The split and balancing `config` asks for, and the global batch resolved and fitted to the replicas.

    In a cluster the returned setup holds this worker's shard of the training images only; `owned`: the run loaded
    them itself (nobody else holds them), so the shard is taken in their own memory (`shards.take_shard`).
    """
    if choice.num_workers > 1:
        data = _as_shard(data, Shard(choice.worker_index, choice.num_workers), owned)
    split = prepare_training_data(data, config)
    if data.shard is not None:  # the split is drawn: from here on the dataset is the shard's images and labels
        shard = data.shard
        data = dataclasses.replace(data, train_labels=data.train_labels[shard.index :: shard.count], shard=None)
    return TrainingSetup(data, split, fit_batch_to_replicas(config, len(split.train_labels), choice.replicas), choice)


def _as_shard(data: ImageDataset, shard: Shard, owned: bool) -> ImageDataset:
    """`data` holding only `shard`'s training images and every label, as a source that reads a shard gives it (the
    images are taken here where the source read them all)."""
    read = data.shard == shard
    images = data.train_images if read else take_shard(data.train_images, shard, owned)
    i, w = shard.index, shard.count
    how = "the only ones read" if read else "the others let go once loaded"
    print(f"worker {i} holds {len(images)} of the {len(data.train_labels)} training images: {i}, {i + w}, ... ({how})")
    sys.stdout.flush()
    return dataclasses.replace(data, train_images=images, shard=shard)


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
        mean, variance = training_statistics(setup)
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


def training_statistics(setup: TrainingSetup) -> tuple[np.ndarray, np.ndarray]:
    """The per-pixel mean and variance of the training part: in a cluster, summed over every worker's shard."""
    split = setup.split
    rows = split.held(split.train_rows, split.train_labels, None)[0]
    total, squares = pixel_sums(split.pixels, rows)
    if split.shard is not None:
        from kerasreg.distribution.cluster import exchange

        everyone = exchange(setup.choice, [total.tolist(), squares.tolist()])  # exact: JSON writes floats by repr
        total = np.sum([np.array(sums[0]) for sums in everyone], axis=0)
        squares = np.sum([np.array(sums[1]) for sums in everyone], axis=0)
    return statistics_of(total, squares, len(split.train_rows))


def refit_setup(setup: TrainingSetup, l2: float) -> TrainingSetup:
    """The setup of the refit after the search: every training image (no validation split) at strength `l2`."""
    config = dataclasses.replace(setup.config, l2=l2, val_split=0.0)
    split = prepare_training_data(setup.data, config, setup.split)
    return TrainingSetup(setup.data, split, config, setup.choice)
