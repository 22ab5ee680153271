"""One driver for every run of epochs: a training run's, and each point's of the L2 search.

    runner = EpochRunner(model, compiled_epoch, [history, *schedule.callbacks, early], seed, at_chunk_end=[backup])
    ran = runner.run(first_epoch, last_epoch)

It calls the `CompiledEpoch` once per epoch and tells the Keras callbacks it was given
(`set_model`, `on_train_begin`, `on_epoch_end`, `on_train_end`), in their order,
stopping when one of them sets `model.stop_training`. With `chunk` > 1 it runs up to
`chunk` epochs per call instead (chunks end at multiples of `chunk`, so a resumed run
has the same ones as an uninterrupted run), then tells the callbacks of each epoch in
turn: only for callbacks that just record, as nothing can act between the epochs of a
call. Callbacks in `at_chunk_end` read the weights (the backup): they hear of a chunk's
last epoch only, whose weights the model holds. An epoch whose objective or
validation loss is not finite raises `Diverged` before any callback sees it, so it
is neither logged nor backed up. Callers keep their own
references to the callbacks whose state they read afterwards (the schedule's
convergence stop, early stopping): nothing here finds a callback by position or
by class name.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from kerasreg.errors import KerasregError


class Diverged(KerasregError):
    """An epoch ended with a non-finite objective: the step or the penalty is too large for this data."""

    def __init__(self, epoch: int, logs: dict[str, float]):
        bad = ", ".join(f"{k} {v}" for k, v in logs.items() if not math.isfinite(v))
        super().__init__(f"training diverged in epoch {epoch + 1} ({bad})")
        self.epoch = epoch


@dataclass
class EpochsRun:
    """What one `EpochRunner.run` did: the epochs it ran, the last epoch's logs, where the time went."""

    epochs: int = 0
    logs: dict[str, float] = field(default_factory=dict)
    epoch_seconds: list[float] = field(default_factory=list)  # each epoch's compiled call, with its inputs and logs
    iteration_seconds: list[float] = field(default_factory=list)  # each epoch whole: the call and the callbacks
    callback_seconds: float = 0.0


class EpochRunner:
    """Runs epochs of an `CompiledEpoch` through a fixed list of Keras callbacks; see the module docstring.

    Args:
        model: the Keras model the loop trains (callbacks see it, and its `stop_training`).
        loop: a compiled `CompiledEpoch`, or None when no epoch is left to run (a finished backup).
        callbacks: Keras callbacks, called in this order after every epoch.
        seed: the run's seed; each epoch's shuffle is fixed by (seed, shuffle_offset + epoch).
        on_epoch: called with (epoch, logs) before the callbacks, e.g. to show progress.
        at_chunk_end: callbacks that read the weights, called after the others (see the module docstring).
        chunk: epochs per call of the loop; above 1 only for callbacks that cannot stop or change a run.
        on_start: called with the logs of the weights before the first epoch (chunked runs have them for free).
    """

    def __init__(
        self,
        model,
        loop,
        callbacks: Sequence,
        seed: int,
        on_epoch: Callable[[int, dict], None] | None = None,
        at_chunk_end: Sequence = (),
        chunk: int = 1,
        on_start: Callable[[dict], None] | None = None,
    ):
        self.model = model
        self.loop = loop
        self.callbacks = list(callbacks)
        self.at_chunk_end = list(at_chunk_end)
        self.seed = seed
        self.on_epoch = on_epoch
        self.chunk = chunk
        self.on_start = on_start

    def run(self, first: int, stop: int, shuffle_offset: int = 0) -> EpochsRun:
        """Epochs `first` .. `stop - 1` (0-based), or fewer when a callback stops training."""
        ran = EpochsRun()
        everyone = [*self.callbacks, *self.at_chunk_end]
        tick = time.perf_counter()
        for callback in everyone:
            callback.set_model(self.model)
            callback.on_train_begin()
        self.model.stop_training = False
        ran.callback_seconds += time.perf_counter() - tick
        if self.loop is not None:
            with self.loop.running():  # one setting for all the epochs, not one per call
                if self.chunk > 1:
                    self._chunks(ran, first, stop, shuffle_offset)
                else:
                    self._epochs(ran, first, stop, shuffle_offset)
        tick = time.perf_counter()
        for callback in everyone:
            callback.on_train_end()
        ran.callback_seconds += time.perf_counter() - tick
        return ran

    def _epochs(self, ran: EpochsRun, first: int, stop: int, shuffle_offset: int) -> None:
        if self.on_start is not None and first < stop:
            self.on_start(self.loop.objective())
        for epoch in range(first, stop):
            tick = time.perf_counter()
            logs = self.loop.run_epoch(self.seed, shuffle_offset + epoch)
            _check_finite(epoch, logs)
            tock = time.perf_counter()
            ran.epoch_seconds.append(tock - tick)
            self._tell(ran, epoch, logs, last=True)
            done = time.perf_counter()
            ran.callback_seconds += done - tock
            ran.iteration_seconds.append(done - tick)
            if self.model.stop_training:
                break

    def _chunks(self, ran: EpochsRun, first: int, stop: int, shuffle_offset: int) -> None:
        epoch = first
        while epoch < stop:
            end = min(stop, (epoch // self.chunk + 1) * self.chunk)
            tick = time.perf_counter()
            before, rows = self.loop.run_epochs(self.seed, shuffle_offset + epoch, end - epoch)
            for k, logs in enumerate(rows):
                _check_finite(epoch + k, logs)  # the whole chunk first: its weights are the last epoch's
            tock = time.perf_counter()
            if epoch == first and self.on_start is not None:
                self.on_start(before)
            for k, logs in enumerate(rows):
                self._tell(ran, epoch + k, logs, last=epoch + k == end - 1)
            done = time.perf_counter()
            ran.epoch_seconds.extend([(tock - tick) / len(rows)] * len(rows))
            ran.iteration_seconds.extend([(done - tick) / len(rows)] * len(rows))
            ran.callback_seconds += done - tock
            epoch = end
            if self.model.stop_training:
                break

    def _tell(self, ran: EpochsRun, epoch: int, logs: dict, last: bool) -> None:
        """Record `epoch` and tell the progress and the callbacks; those that read weights only when `last`."""
        ran.epochs, ran.logs = ran.epochs + 1, logs
        if self.on_epoch is not None:
            self.on_epoch(epoch, logs)
        for callback in self.callbacks:
            callback.on_epoch_end(epoch, logs)
        if last:
            for callback in self.at_chunk_end:
                callback.on_epoch_end(epoch, logs)


def _check_finite(epoch: int, logs: dict) -> None:
    if not all(math.isfinite(value) for value in logs.values()):
        raise Diverged(epoch, logs)  # before any callback: the epoch is neither logged nor backed up
