"""Fitting the model: the compiled epoch, the callbacks, the backup it resumes from, and why it stopped."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kerasreg.run_directory import files
from kerasreg.run_directory.resume import resumed_history
from kerasreg.training.schedule import make_schedule
from kerasreg.training.setup import TrainingSetup

WORK_PER_CALL = 4e9  # multiply-adds: MNIST-8k's 16 epochs at 784 features, the course's 512 iterations
MAX_EPOCHS_PER_CALL = 512


@dataclass(frozen=True)
class Fitted:
    """What `fit` did: one row per epoch of the whole run (resumed epochs included), where the time went, and why
    training stopped (metrics.json's `stop_reason` and `best_epoch`)."""

    history: list[dict]
    timings: dict[str, float] = field(default_factory=dict)
    stop: dict = field(default_factory=dict)


def fit(model, setup: TrainingSetup, work_dir: Path, resume_at: tuple[int, bool] | None = None) -> Fitted:
    """Train with early stopping on validation loss, backing up the state; resume a backup if one is there.

    history.csv is written with each backup (and the last one, at the end), not after every epoch:
    it then holds exactly the epochs the backup holds, and a resumed run logs each epoch once.
    A cluster's workers resume from the commit `resume_at` they agreed on (kerasreg/training/agreement.py).
    """
    from kerasreg.training.agreement import chief_interval
    from kerasreg.training.backup import EpochBackup
    from kerasreg.training.epoch_runner import EpochRunner
    from kerasreg.training.progress import EpochProgress

    config = setup.config
    started = time.perf_counter()
    rows: list[dict] = []
    cluster = setup.choice.num_workers > 1
    backup = EpochBackup(
        work_dir / files.BACKUP,
        config.backup_interval,
        before_commit=lambda: files.write_history(work_dir / files.HISTORY, rows),
        keep=2 if cluster else 1,
        agree_every=chief_interval(setup.choice) if cluster else None,
    )
    with setup.choice.strategy.scope():
        initial_epoch = backup.restore(model, at=resume_at)
    if initial_epoch:
        rows[:] = resumed_history(work_dir, initial_epoch)
        print(
            f"resuming from {backup.backup_dir}: {initial_epoch} epochs done, continuing at epoch "
            f"{initial_epoch + 1} of {config.epochs}",
            flush=True,
        )
    # Stopped: early stopping or the convergence stop had ended the run when this backup was taken.
    last_epoch = initial_epoch if backup.finished or backup.stopped else config.epochs
    epoch = compiled_epoch(model, setup) if initial_epoch < last_epoch else None
    callbacks, early, converged = _callbacks(setup, rows, backup)
    chunk, method = 1, "epochs"
    if epoch is not None:
        chunk = epochs_per_call(setup, *epoch.features_shape, int(model.get_layer("classifier").kernel.shape[-1]))
        method = epoch.use_chunks(config.epochs, chunk) if chunk > 1 else method
    setup_seconds = time.perf_counter() - started
    progress = EpochProgress(config.epochs, initial_epoch, config.print_cost_every)
    runner = EpochRunner(
        model,
        epoch,
        callbacks,
        config.seed,
        on_epoch=progress.update,
        at_chunk_end=[backup],  # last: its final save holds the weights early stopping restored
        chunk=chunk,
        on_start=progress.start if config.print_cost_every else None,
    )
    ran = runner.run(initial_epoch, last_epoch)
    timings = {"setup_seconds": setup_seconds, **epoch_timings(ran, epoch.call_seconds if epoch is not None else [])}
    timings.update(epochs_per_call=chunk, descent=method)
    return Fitted(rows, timings, stop_reason(early, converged, len(rows), config.epochs))


def epochs_per_call(setup: TrainingSetup, n: int, d: int, classes: int) -> int:
    """How many epochs one compiled call runs: 1 where a callback may act after any epoch; else a power of 2
    giving each call about `WORK_PER_CALL` multiply-adds (a second or so), so progress and backups keep coming.

    A function of the data's shape only: a resumed run cuts its epochs where the uninterrupted one did.
    """
    config = setup.config
    if setup.split.has_val or config.lr_schedule != "none" or config.tol > 0:
        return 1  # early stopping, the schedule and the convergence stop act between epochs
    per_epoch = 3 * n * d * classes  # forward, backward, the objective after
    return int(min(MAX_EPOCHS_PER_CALL, 2 ** max(0, int(np.log2(max(1.0, WORK_PER_CALL / per_epoch))))))


def epoch_timings(ran, call_seconds: list[float]) -> dict[str, float]:
    """Where an epoch's time goes, for metrics.json: the first (tracing), the steady ones, and the fixed cost.

    The fixed cost is everything of a steady epoch outside its compiled call: building the
    call's inputs, reading its logs back, the progress line and the callbacks.
    """

    def steady(values) -> float | None:
        return float(np.median(values[1:])) if len(values) > 1 else None

    fixed = [whole - call for whole, call in zip(ran.iteration_seconds, call_seconds, strict=False)]
    timings = {
        "first_epoch_seconds": ran.epoch_seconds[0] if ran.epoch_seconds else 0.0,
        "epoch_seconds_median": steady(ran.epoch_seconds),
        "steady_epoch_seconds": steady(ran.iteration_seconds),  # callbacks included
        "compiled_call_seconds": steady(call_seconds),
        "fixed_seconds_per_epoch": steady(fixed),
        "epochs_seconds": float(sum(ran.epoch_seconds)),
        "callbacks_seconds": ran.callback_seconds,
    }
    return {k: round(v, 6) for k, v in timings.items() if v is not None}


def compiled_epoch(model, setup: TrainingSetup):
    """The model's `CompiledEpoch` over the setup's features (computed once here), traced and ready."""
    from kerasreg.training.compiled_epoch import CompiledEpoch

    config, task = setup.config, setup.data.task
    train, val = setup.split.epoch_data(task)
    epoch = CompiledEpoch(model, setup.choice.strategy, task, config.batch_size, config.l2, config.mixed_precision)
    return epoch.compile(train, val)


def _callbacks(setup: TrainingSetup, rows: list[dict], backup) -> tuple[list, object, object]:
    """The callbacks of a run but the backup, in the order they run after an epoch; early stopping and the
    convergence stop."""
    from kerasreg.training.callbacks import EarlyStopping, HistoryRecorder

    config = setup.config
    schedule = make_schedule(config.tol, config.lr_schedule)
    early = None
    if setup.split.has_val:
        early = EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True, verbose=1)
    # Early stopping's and the schedule's state resume too: the run is the same run.
    tracked = dict(schedule.tracked)
    if early is not None:
        tracked["early_stopping"] = early
    backup.track(tracked)
    return (
        [HistoryRecorder(rows), *schedule.callbacks, *([early] if early is not None else [])],
        early,
        schedule.converged,
    )


def stop_reason(early, converged, epochs_done: int, epoch_cap: int) -> dict:
    """Why training ended, for metrics.json: early stopping (and its best epoch), convergence, or the epoch cap."""
    if early is not None and early.stopped_epoch > 0:
        return {"stop_reason": "early_stopping", "best_epoch": int(early.best_epoch) + 1}
    if converged is not None and converged.converged_epoch > 0:
        reason = {"stop_reason": "converged"}
    else:
        reason = {"stop_reason": "epoch_cap" if epochs_done >= epoch_cap else "interrupted"}
    if early is not None and early.best_weights is not None:
        reason["best_epoch"] = int(early.best_epoch) + 1  # the weights kept: the best, restored at the end
    else:
        reason["best_epoch"] = epochs_done  # no early stopping: the weights kept are the last epoch's
    return reason
