"""Fitting the model under a strategy: data, model, the epoch loop, callbacks, backup and resume."""

from __future__ import annotations

import dataclasses
import hashlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kerasreg import run_dir as files
from kerasreg.config import TrainConfig
from kerasreg.datasets import ImageDataset
from kerasreg.datasets.views import balanced_class_weights, split_validation, undersample
from kerasreg.errors import RunDirError
from kerasreg.model import build_model, loss_name, pixel_statistics, preprocess
from kerasreg.resume import check_history
from kerasreg.schedule import make_schedule
from kerasreg.strategy import StrategyChoice

if TYPE_CHECKING:
    from kerasreg.l2_search import L2Search

SEARCH_CHECKPOINT = "l2_search"  # inside the backup folder: an interrupted search continues from it


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


def make_model(setup: TrainingSetup):
    """Build and compile the model in the strategy's scope (variables, optimizer slots)."""
    import keras

    config, data = setup.config, setup.data
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
        )
        lr = config.resolved_learning_rate
        optimizer = keras.optimizers.Adam(lr) if config.optimizer == "adam" else keras.optimizers.SGD(lr)
        model.compile(optimizer=optimizer, loss=loss_name(data.task), metrics=["accuracy"])
        # Slots now, in scope: created lazily inside a strategy.run step they would be
        # per-replica placeholders that nothing feeds.
        model.optimizer.build(model.trainable_variables)
    return model


def run_search(setup: TrainingSetup, work_dir: Path) -> L2Search:
    """`--l2 auto`'s search on the setup's split (kerasreg/l2_search.py), checkpointed in the run's backup folder."""
    from kerasreg.epoch_loop import epoch_data
    from kerasreg.l2_search import search_l2

    split, task = setup.split, setup.data.task
    model = make_model(setup)
    train = epoch_data(preprocess(model, split.train_images), split.train_labels, task, split.train_weights)
    val = epoch_data(preprocess(model, split.val[0]), split.val[1], task, split.val_weights)
    return search_l2(model, setup, train, val, work_dir / files.BACKUP / SEARCH_CHECKPOINT)


def recorded_search(work_dir: Path) -> L2Search | None:
    """The search an unfinished refit in `work_dir` was started with, so a rerun resumes it; else None."""
    from kerasreg.l2_search import L2Search, checkpointed_start

    if not (work_dir / files.BACKUP).is_dir() or not (work_dir / files.CONFIG).is_file():
        return None
    recorded = files.read_json(work_dir / files.CONFIG).get("l2_search")
    if not recorded:
        return None
    try:
        search = L2Search.from_dict(recorded)
    except (KeyError, TypeError, ValueError):
        raise RunDirError(
            f"{work_dir / files.CONFIG}: its l2_search record is damaged; pass --restart to discard the run and "
            "start over."
        ) from None
    # Where the refit starts, should it not have backed up an epoch yet.
    return dataclasses.replace(search, start=checkpointed_start(work_dir / files.BACKUP / SEARCH_CHECKPOINT))


def refit_setup(setup: TrainingSetup, l2: float) -> TrainingSetup:
    """The setup of the refit after the search: every training image (no validation split) at strength `l2`."""
    config = dataclasses.replace(setup.config, l2=l2, val_split=0.0)
    return TrainingSetup(setup.data, prepare_training_data(setup.data, config), config, setup.choice)


def fit(model, setup: TrainingSetup, work_dir: Path) -> tuple[list[dict], dict, dict]:
    """Train with early stopping on validation loss, backing up the state; resume a backup if one is there.

    Returns one dict per epoch of the whole run (resumed epochs included), where
    the time went (seconds per phase), and why training stopped.
    """
    import keras

    from kerasreg.callbacks import EpochBackup, HistoryRecorder
    from kerasreg.epoch_driver import EpochDriver
    from kerasreg.epoch_loop import EpochLoop, epoch_data

    config, split, task = setup.config, setup.split, setup.data.task
    timings: dict = {}
    started = time.perf_counter()
    backup = EpochBackup(work_dir / files.BACKUP, config.backup_interval)
    with setup.choice.strategy.scope():
        initial_epoch = backup.restore(model)
    if initial_epoch:
        check_history(work_dir, initial_epoch)
        print(
            f"resuming from {backup.backup_dir}: {initial_epoch} epochs done, continuing at epoch "
            f"{initial_epoch + 1} of {config.epochs}",
            flush=True,
        )
    last_epoch = initial_epoch if backup.finished else config.epochs
    loop = None
    if initial_epoch < last_epoch:
        train = epoch_data(preprocess(model, split.train_images), split.train_labels, task, split.train_weights)
        val = None
        if split.val is not None:
            val = epoch_data(preprocess(model, split.val[0]), split.val[1], task, split.val_weights)
        loop = EpochLoop(model, setup.choice.strategy, task, config.batch_size, config.l2, config.mixed_precision)
        loop.compile(train, val)
    rows: list[dict] = []
    schedule = make_schedule(config.tol)
    early = None
    if split.val is not None:
        early = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.patience, restore_best_weights=True, verbose=1
        )
    # Early stopping's and the schedule's state resume too: the run is the same run.
    tracked = {"reduce_lr": schedule.reduce_lr, "converged": schedule.converged}
    if early is not None:
        tracked["early_stopping"] = early
    backup.track(tracked)
    # History before backup: if a kill falls between them, the rerun trims the row
    # of the epoch the backup does not hold, and logs it again once.
    # The backup last: its final save holds the weights early stopping restored.
    callbacks = [HistoryRecorder(rows, work_dir / files.HISTORY, initial_epoch), *schedule.callbacks]
    callbacks += [early, backup] if early is not None else [backup]
    timings["setup_seconds"] = time.perf_counter() - started
    progress = _Progress(config.epochs, initial_epoch)
    ran = EpochDriver(model, loop, callbacks, config.seed, on_epoch=progress.update).run(initial_epoch, last_epoch)
    timings.update(
        first_epoch_seconds=ran.epoch_seconds[0] if ran.epoch_seconds else 0.0,
        epoch_seconds_median=float(np.median(ran.epoch_seconds[1:])) if len(ran.epoch_seconds) > 1 else None,
        epochs_seconds=float(sum(ran.epoch_seconds)),
        callbacks_seconds=ran.callback_seconds,
    )
    return rows, timings, _stop_reason(early, schedule.converged, len(rows), config.epochs)


def _stop_reason(early, converged, epochs_done: int, epoch_cap: int) -> dict:
    """Why training ended, for metrics.json: early stopping (and its best epoch), convergence, or the epoch cap."""
    if early is not None and early.stopped_epoch > 0:
        return {"stop_reason": "early_stopping", "best_epoch": int(early.best_epoch) + 1}
    if converged.converged_epoch > 0:
        reason = {"stop_reason": "converged"}
    else:
        reason = {"stop_reason": "epoch_cap" if epochs_done >= epoch_cap else "interrupted"}
    if early is not None and early.best_weights is not None:
        reason["best_epoch"] = int(early.best_epoch) + 1  # the weights kept: the best, restored at the end
    return reason


class _Progress:
    """A Keras progress bar over epochs on a terminal; one line per epoch otherwise (logs, CI)."""

    def __init__(self, epochs: int, initial_epoch: int):
        self.epochs = epochs
        self.bar = None
        if sys.stdout.isatty():
            import keras

            keys = ["loss", "accuracy", "val_loss", "val_accuracy"]
            self.bar = keras.utils.Progbar(epochs, unit_name="epoch", stateful_metrics=keys)
            self.bar.update(initial_epoch)

    def update(self, epoch: int, logs: dict) -> None:
        """Show the epoch just finished."""
        if self.bar is not None:
            self.bar.update(epoch + 1, values=list(logs.items()), finalize=epoch + 1 == self.epochs)
        else:
            print(f"Epoch {epoch + 1}/{self.epochs} - " + " - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))


def weights_digest(model) -> str:
    """sha256 of the model's weights: equal on every worker of a synchronous run."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(weight.tobytes())
    return digest.hexdigest()
