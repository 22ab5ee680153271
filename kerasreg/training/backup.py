"""The backup of a run's state after an epoch, which a rerun resumes from. Imports Keras: import lazily."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from kerasreg.errors import RESTART, RunDirError
from kerasreg.run_directory import files
from kerasreg.training.callbacks import Converged

LATEST = "latest.json"
PREVIOUS = "previous.json"  # a cluster worker's commit before the latest: the workers may be one commit apart


class EpochBackup(keras.callbacks.Callback):
    """Backs up weights and optimizer state every `interval_seconds` and at the end, so a rerun resumes there.

    The state is every variable of the model and its optimizer (slots, step count,
    learning rate), saved by path in an .npz: 1 ms, where Keras's save_weights
    takes 20 ms, longer than a compiled epoch of MNIST 8k. An interval, not every epoch,
    all the same: even 1 ms an epoch adds up. A crash loses at most `interval_seconds` of training; 0 backs up
    after every epoch. The backup at the end (after early stopping has restored the
    best weights) is marked finished: a rerun after a crash while the results were
    being written goes straight to writing them.

    Crash-safe at any instant: the weights go to a new file renamed into place,
    then `latest.json`, written atomically, names it; that rename is the commit.
    A kill before it leaves the previous backup whole. (Keras's BackupAndRestore
    writes in place: a kill during its write can leave a file that will not load.)
    `before_commit` runs first at every backup (the run writes history.csv there).

    A cluster's workers each commit their own backup, so a kill can leave them one
    commit apart. There `keep=2` keeps the commit before the latest too (`PREVIOUS`),
    the workers resume from the newest epoch all of them hold, and `agree_every`
    turns the interval into a number of epochs once, on the chief's clock, for all:
    every worker then backs up at the same epochs.
    """

    def __init__(
        self,
        backup_dir: Path,
        interval_seconds: float = 0.0,
        before_commit: Callable[[], None] | None = None,
        keep: int = 1,
        agree_every: Callable[[int], int] | None = None,
    ):
        super().__init__()
        self.backup_dir = Path(backup_dir)
        self.interval_seconds = interval_seconds
        self.before_commit = before_commit
        self.keep = keep
        self.agree_every = agree_every  # this worker's epochs per interval -> the chief's
        self.every_epochs: int | None = None
        self.finished = False
        self.stopped = False  # a callback had stopped training when this backup was taken
        self.tracked: dict = {}  # role -> callback whose state is backed up too (early stopping, the LR schedule)
        self._restored: tuple[dict, dict] | None = None
        self._epochs_done = 0
        self._saved_epoch = 0
        self._begun_epoch = 0
        self._saved_at = time.monotonic()

    def track(self, callbacks: dict) -> None:
        """Back up these callbacks' state too (by role name), so a resumed run decides as the uninterrupted one.

        Each must be one of the kinds `_state_names` knows (a subclass counts as its kind).
        """
        for callback in callbacks.values():
            _state_names(callback)  # fails now, not at the first backup, for a kind it cannot back up
        self.tracked = dict(callbacks)

    def restore(self, model, at: tuple[int, bool] | None = None) -> int:
        """Load the latest backup (or the commit `at`, (epoch, finished)) into `model` (optimizer built first);
        the epochs it holds, or 0 without one (or `at` epoch 0: start over).

        Raises:
            RunDirError: the backup is damaged (unreadable, incomplete, of another model, or holding
                non-finite values): one line that says --restart starts over.
        """
        latest = self.backup_dir / LATEST
        if at is not None:
            if at[0] == 0:
                return 0
            latest = next(path for path, epoch, finished in committed(self.backup_dir) if (epoch, finished) == at)
        if not latest.is_file():
            return 0  # no backup committed yet (a kill before the first one): nothing to resume
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        variables = training_variables(model)
        record, values, arrays = read_backup(self.backup_dir, latest)
        # By position, as saved (model weights, then the optimizer's): names carry per-process suffixes.
        if [tuple(v.shape) for v in variables] != [value.shape for value in values]:
            raise RunDirError(f"{self.backup_dir}: the backup holds other variables than this model; {RESTART}.")
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)
        self._restored = (record["callbacks"], arrays)
        self.finished = record["finished"]
        self.stopped = record.get("stopped") is True
        self._epochs_done = self._saved_epoch = self._begun_epoch = record["epoch"]
        return self._epochs_done

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Put back the tracked callbacks' state from the backup (they reset theirs just before); start the clock.

        Put this callback after the ones it tracks: their on_train_begin resets them first.
        """
        if self._restored is not None:
            states, arrays = self._restored
            for role, callback in self.tracked.items():
                if role in states:
                    _set_callback_state(callback, states[role], arrays, f"cb_{role}")
        self._saved_at = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Commit a backup of the state after `epoch` (0-based) when the interval has passed."""
        self._epochs_done = epoch + 1
        if self.agree_every is None:
            due = time.monotonic() - self._saved_at >= self.interval_seconds
        else:
            if self.every_epochs is None:  # the first epochs this process ran: the same call on every worker
                per_epoch = (time.monotonic() - self._saved_at) / max(1, self._epochs_done - self._begun_epoch)
                mine = 1 if self.interval_seconds <= 0 else max(1, math.ceil(self.interval_seconds / per_epoch))
                self.every_epochs = self.agree_every(mine)
            due = self._epochs_done - self._saved_epoch >= self.every_epochs
        if due:
            self.save(self.model, self._epochs_done)

    def on_train_end(self, logs: dict | None = None) -> None:
        """Commit the final state, marked finished."""
        self.save(self.model, self._epochs_done, finished=True)

    def save(self, model, epochs_done: int, finished: bool = False) -> None:
        """Atomically back up `model` as having finished `epochs_done` epochs."""
        if self.before_commit is not None:
            self.before_commit()
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{epochs_done:05d}{'-final' if finished else ''}.npz"
        state = training_variables(model)
        arrays = {f"v{i}": np.asarray(v.numpy()) for i, v in enumerate(state)}
        callbacks = {}
        for role, callback in self.tracked.items():
            values, weights = _callback_state(callback)
            callbacks[role] = values
            arrays.update({f"cb_{role}_w{j}": w for j, w in enumerate(weights)})
        files.write_npz(self.backup_dir / name, arrays)
        record = {
            "epoch": epochs_done,
            "weights": name,
            "finished": finished,
            "stopped": bool(getattr(model, "stop_training", False)),
            "variables": [v.path for v in state],
            "callbacks": callbacks,
        }
        kept = {name}
        if self.keep > 1:
            if (self.backup_dir / LATEST).is_file():
                latest = json.loads((self.backup_dir / LATEST).read_text())
                if latest.get("weights") != name:  # else: this epoch committed again (after a rollback)
                    files.write_json(self.backup_dir / PREVIOUS, latest)
            if (self.backup_dir / PREVIOUS).is_file():
                kept.add(json.loads((self.backup_dir / PREVIOUS).read_text()).get("weights"))
        files.write_json(self.backup_dir / LATEST, record)
        for old in self.backup_dir.glob("epoch-*.npz"):
            if old.name not in kept:
                old.unlink(missing_ok=True)
        self._saved_at = time.monotonic()
        self._saved_epoch = epochs_done


def committed(backup_dir: Path) -> list[tuple[Path, int, bool]]:
    """The commits a backup folder holds, newest first: (record, epoch, finished); RunDirError if one is damaged."""
    found = []
    for name in (LATEST, PREVIOUS):
        path = Path(backup_dir) / name
        if path.is_file():
            record = read_record(Path(backup_dir), path)
            found.append((path, record["epoch"], record["finished"]))
    return found


def roll_back(backup_dir: Path, at: tuple[int, bool]) -> bool:
    """Make the commit `at` ((epoch, finished), which the folder holds) the latest: every newer commit goes, its
    record and its file. Whether there was one.

    A cluster's workers resume from the newest commit all of them hold. One that holds a
    newer commit must drop it: else its next commit pushes the agreed one out (it keeps
    two), and a second failure before the others commit leaves them sharing no epoch.
    """
    backup_dir = Path(backup_dir)
    commits = committed(backup_dir)
    if not commits or (commits[0][1], commits[0][2]) == at:
        return False
    agreed = next(path for path, epoch, finished in commits if (epoch, finished) == at)
    record = json.loads(agreed.read_text())
    files.write_json(backup_dir / LATEST, record)  # the rename is the rollback's commit
    (backup_dir / PREVIOUS).unlink(missing_ok=True)
    for old in backup_dir.glob("epoch-*.npz"):
        if old.name != record["weights"]:
            old.unlink(missing_ok=True)
    return True


def drop_commits(backup_dir: Path) -> None:
    """Remove every commit of a backup folder (the records first, then their files), keeping anything else."""
    for name in (LATEST, PREVIOUS):
        (Path(backup_dir) / name).unlink(missing_ok=True)
    for old in Path(backup_dir).glob("epoch-*.npz"):
        old.unlink(missing_ok=True)


def training_variables(model) -> list:
    """Every variable a resumed run needs: the model's and its optimizer's."""
    return [*model.weights, *(model.optimizer.variables if model.optimizer is not None else [])]


# What a resumed run needs of each stateful Keras callback, beyond the model's variables.
# By isinstance, so a subclass keeps its backed-up state.
_CALLBACK_STATE = (
    (keras.callbacks.EarlyStopping, ("wait", "stopped_epoch", "best", "best_epoch")),
    (keras.callbacks.ReduceLROnPlateau, ("wait", "cooldown_counter", "best")),
    (Converged, ("wait", "best", "converged_epoch")),
)


def _state_names(callback) -> tuple[str, ...]:
    """The attributes of `callback` that a resumed run needs back."""
    for kind, names in _CALLBACK_STATE:
        if isinstance(callback, kind):
            return names
    raise TypeError(f"cannot back up the state of a {type(callback).__name__}: not a kind EpochBackup knows.")


def _callback_state(callback) -> tuple[dict, list[np.ndarray]]:
    """JSON-ready attributes (an infinite or missing best as None) and weights (early stopping's best)."""
    values = {}
    for name in _state_names(callback):
        value = getattr(callback, name)
        if value is not None and not isinstance(value, int):
            value = float(value) if np.isfinite(value) else None
        values[name] = value
    weights = getattr(callback, "best_weights", None) or []
    return values, [np.asarray(w) for w in weights]


def _set_callback_state(callback, values: dict, arrays: dict, prefix: str) -> None:
    for name, value in values.items():
        if value is not None:  # None: the value its on_train_begin just set (no best yet)
            setattr(callback, name, value)
    weights = sorted((k for k in arrays if k.startswith(prefix + "_w")), key=lambda k: int(k.rsplit("w", 1)[1]))
    if weights:
        callback.best_weights = [arrays[k] for k in weights]


def _damaged(backup_dir: Path, why: str) -> RunDirError:
    return RunDirError(f"{backup_dir}: the backup is damaged ({why}); {RESTART}.")


def read_record(backup_dir: Path, latest: Path) -> dict:
    """A commit's record (latest.json or previous.json), checked; RunDirError if damaged."""

    def damaged(why: str) -> RunDirError:
        return _damaged(backup_dir, why)

    try:
        record = json.loads(latest.read_text())
    except (OSError, ValueError) as e:
        raise damaged(f"{latest.name}: {type(e).__name__}") from None
    if not isinstance(record, dict):
        raise damaged(f"{latest.name} is not an object")
    kinds = {"epoch": int, "weights": str, "finished": bool, "variables": list, "callbacks": dict}
    for key, kind in kinds.items():
        if not isinstance(record.get(key), kind) or isinstance(record.get(key), bool) != (kind is bool):
            raise damaged(f"{latest.name} has no valid {key!r}")
    if (
        record["epoch"] < 0
        or "/" in record["weights"]
        or not all(
            isinstance(state, dict) and all(v is None or isinstance(v, int | float) for v in state.values())
            for state in record["callbacks"].values()
        )
    ):
        raise damaged(f"{latest.name} holds values out of range")
    return record


def read_backup(backup_dir: Path, latest: Path) -> tuple[dict, list[np.ndarray], dict]:
    """The committed backup's record, its variables in order, and the callbacks' arrays; RunDirError if damaged."""

    def damaged(why: str) -> RunDirError:
        return _damaged(backup_dir, why)

    record = read_record(backup_dir, latest)
    try:
        with np.load(backup_dir / record["weights"], allow_pickle=False) as saved:
            values = [saved[f"v{i}"] for i in range(len(record["variables"]))]
            arrays = {key: saved[key] for key in saved.files if key.startswith("cb")}
    except files.NPZ_ERRORS as e:
        raise damaged(f"{record['weights']}: {type(e).__name__}") from None
    for value in [*values, *arrays.values()]:
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise damaged("non-finite values: a diverged run")
    return record, values, arrays
