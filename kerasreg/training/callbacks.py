"""Keras callbacks of kerasreg's own: the history of a run, its convergence stop, and Keras's early stopping and
learning-rate schedule at a fraction of their cost per epoch. Imports Keras: import lazily.

The backup of a run's state is a callback too, in backup.py.
"""

from __future__ import annotations

import keras
import numpy as np

from kerasreg.run_directory import files


def _float32_less(a: float, b: float) -> bool:
    return bool(np.float32(a) < np.float32(b))


def _float32_greater(a: float, b: float) -> bool:
    return bool(np.float32(a) > np.float32(b))


class _LearningRate:
    """The optimizer as Keras's schedule sees it: its learning rate, read once and kept (written through)."""

    def __init__(self, optimizer):
        self._optimizer = optimizer
        self._value = float(keras.ops.convert_to_numpy(optimizer.learning_rate))

    @property
    def learning_rate(self) -> float:
        return self._value

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._optimizer.learning_rate = value
        self._value = float(np.float32(value))  # as the float32 variable now holds it, without reading it back


class _CheapModel:
    """The model as Keras's early stopping and schedule see it, without the eager TensorFlow calls.

    Each of those calls costs 0.05-0.3 ms on this 2-core machine (a variable read, a
    comparison of two floats as tensors, `get_weights` walking every layer): 1.4 ms an
    epoch for the two callbacks, against a 1 ms budget for everything outside the
    compiled epoch (README, Performance). The learning rate is read once per run and
    kept; the weights early stopping keeps are the trainable ones, the only ones that
    change.
    """

    def __init__(self, model):
        self._model = model
        self._variables = list(model.trainable_variables)
        self.optimizer = _LearningRate(model.optimizer) if model.optimizer is not None else None

    @property
    def stop_training(self) -> bool:
        return self._model.stop_training

    @stop_training.setter
    def stop_training(self, value: bool) -> None:
        self._model.stop_training = value

    def get_weights(self) -> list[np.ndarray]:
        return [v.value.numpy() for v in self._variables]  # TensorFlow's variable under Keras's: a copy, not a view

    def set_weights(self, weights: list) -> None:
        for variable, value in zip(self._variables, weights, strict=True):
            variable.assign(value)


class _HostComparisons:
    """Compares monitored values in numpy float32, as Keras's `ops.less` does on the device, without the device."""

    def set_model(self, model) -> None:
        """Keep a `_CheapModel` view of `model`."""
        super().set_model(_CheapModel(model))

    def _set_monitor_op(self) -> None:
        super()._set_monitor_op()  # also turns min_delta's sign, as Keras does
        self.monitor_op = {keras.ops.less: _float32_less, keras.ops.greater: _float32_greater}[self.monitor_op]


class EarlyStopping(_HostComparisons, keras.callbacks.EarlyStopping):
    """Keras's EarlyStopping, deciding exactly as it does; see `_CheapModel` for what differs and why."""


class ReduceLROnPlateau(_HostComparisons, keras.callbacks.ReduceLROnPlateau):
    """Keras's ReduceLROnPlateau, deciding exactly as it does; see `_CheapModel` for what differs and why."""


class HistoryRecorder(keras.callbacks.Callback):
    """Appends each finished epoch's logs (the history's columns) to `rows`.

    It writes no file: history.csv is written with each backup (training/fit.py), so
    the file holds exactly the epochs the backup holds, and costs nothing per epoch.
    """

    def __init__(self, rows: list[dict]):
        super().__init__()
        self.rows = rows

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Record the epoch."""
        logs = logs or {}
        self.rows.append({"epoch": epoch, **{k: float(logs[k]) for k in files.HISTORY_FIELDS[1:] if k in logs}})


class Converged(keras.callbacks.Callback):
    """Stops training once the training objective has stopped improving: the optimum is reached.

    As scikit-learn's `tol`: an epoch whose objective is not below the best so far by
    more than `tol` (relative) counts as no progress; `patience` such epochs in a
    row end the run, whatever the epoch cap. (The learning-rate schedule halves the
    step on each of them first, so this is the optimum, not a plateau of a too-large step.)
    """

    def __init__(self, tol: float, patience: int = 5):
        super().__init__()
        self.tol = tol
        self.patience = patience

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Start counting afresh (a resumed run then gets its count back from the backup)."""
        self.wait, self.best, self.converged_epoch = 0, None, 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Count an epoch without progress; stop after `patience` of them in a row."""
        loss = float((logs or {})["loss"])
        if self.best is not None and loss > self.best - self.tol * abs(self.best):
            self.wait += 1
        else:
            self.wait = 0
        self.best = loss if self.best is None else min(self.best, loss)
        if self.wait >= self.patience:
            self.converged_epoch = epoch + 1
            self.model.stop_training = True
