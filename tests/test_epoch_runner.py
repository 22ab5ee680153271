"""The one epoch runner, and the backup of callback state by role and kind (subclasses included)."""

import contextlib

import keras
import numpy as np
import pytest

from kerasreg.model import build_model
from kerasreg.training.backup import EpochBackup
from kerasreg.training.callbacks import Converged
from kerasreg.training.epoch_runner import EpochRunner
from kerasreg.training.schedule import make_schedule


class ScriptedLoop:
    """An CompiledEpoch stand-in: the objective it reports after each epoch, and the shuffles it was asked for."""

    def __init__(self, losses):
        self.losses = list(losses)
        self.shuffles = []

    @contextlib.contextmanager
    def running(self):
        yield

    def run_epoch(self, seed, epoch):
        self.shuffles.append((seed, epoch))
        return {"loss": self.losses[len(self.shuffles) - 1], "accuracy": 0.5}


class Recorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.events = []

    def on_train_begin(self, logs=None):
        self.events.append("begin")

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(epoch)

    def on_train_end(self, logs=None):
        self.events.append("end")


def _model():
    model = build_model((2, 2, 1), 2, "multiclass")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    return model


def test_the_driver_tells_every_callback_in_order_and_stops_when_one_asks():
    schedule = make_schedule(tol=1e-4)
    recorder = Recorder()
    # Falls for 3 epochs, then flat: Converged stops after CONVERGED_PATIENCE epochs without progress.
    loop = ScriptedLoop([1.0, 0.5, 0.25] + [0.25] * 20)
    ran = EpochRunner(_model(), loop, [recorder, *schedule.callbacks], seed=7).run(0, 20, shuffle_offset=100)
    assert schedule.converged.converged_epoch == 8 and ran.epochs == 8
    assert recorder.events == ["begin", *range(8), "end"]
    assert loop.shuffles == [(7, 100 + e) for e in range(8)]
    assert (ran.logs["loss"], ran.logs["accuracy"], len(ran.epoch_seconds)) == (0.25, 0.5, 8)
    assert ran.logs["learning_rate"] < 0.01  # the schedule halved the step on the flat epochs


def test_a_driver_with_nothing_left_to_run_still_begins_and_ends():
    recorder = Recorder()
    ran = EpochRunner(_model(), None, [recorder], seed=0).run(5, 5)
    assert (ran.epochs, recorder.events) == (0, ["begin", "end"])


class PatientEarlyStopping(keras.callbacks.EarlyStopping):
    """A user's subclass: its state must be backed up as early stopping's."""


def test_a_subclass_of_a_stateful_callback_keeps_its_state_across_a_backup(tmp_path):
    model = _model()
    model.optimizer.build(model.trainable_variables)
    early = PatientEarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    early.set_model(model)
    early.on_train_begin()
    for epoch, val_loss in enumerate([0.9, 0.5, 0.6, 0.7]):
        early.on_epoch_end(epoch, {"val_loss": val_loss})
    backup = EpochBackup(tmp_path / "backup")
    backup.track({"early_stopping": early})
    backup.save(model, 4)

    resumed = PatientEarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    again = EpochBackup(tmp_path / "backup")
    again.track({"early_stopping": resumed})
    assert again.restore(model) == 4
    resumed.set_model(model)
    resumed.on_train_begin()  # resets its state, then the backup puts it back
    again.on_train_begin()
    assert (resumed.wait, resumed.best, resumed.best_epoch) == (2, pytest.approx(0.5), 1)
    for restored, kept in zip(resumed.best_weights, early.best_weights, strict=True):
        np.testing.assert_array_equal(restored, kept)


def test_a_callback_of_an_unknown_kind_is_refused_when_tracked(tmp_path):
    with pytest.raises(TypeError, match="cannot back up the state of a Recorder"):
        EpochBackup(tmp_path).track({"mine": Recorder()})


def test_the_convergence_stops_count_comes_back_from_a_backup(tmp_path):
    model = _model()
    model.optimizer.build(model.trainable_variables)
    converged = Converged(tol=1e-4, patience=5)
    converged.set_model(model)
    converged.on_train_begin()
    for epoch, loss in enumerate([1.0, 0.5, 0.5, 0.5]):  # two epochs without progress after the best
        converged.on_epoch_end(epoch, {"loss": loss})
    backup = EpochBackup(tmp_path / "backup")
    backup.track({"converged": converged})
    backup.save(model, 4)

    resumed = Converged(tol=1e-4, patience=5)
    again = EpochBackup(tmp_path / "backup")
    again.track({"converged": resumed})
    assert again.restore(model) == 4
    resumed.set_model(model)
    resumed.on_train_begin()  # resets its count, then the backup puts it back
    again.on_train_begin()
    assert (resumed.wait, resumed.best, resumed.converged_epoch) == (2, 0.5, 0)
    for epoch in (4, 5, 6):  # three more without progress: five in a row, as the uninterrupted run would count
        resumed.on_epoch_end(epoch, {"loss": 0.5})
    assert resumed.converged_epoch == 7 and model.stop_training
