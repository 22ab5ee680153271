"""How a run shows its epochs: the course's cost lines, a Keras progress bar (terminal, notebook), or a line each."""

from __future__ import annotations

import sys

from kerasreg.run_directory.files import EPOCH_LOGS


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel: its output is a cell, where one bar updating in place reads best."""
    return "ipykernel" in sys.modules and not sys.stdout.isatty()


class EpochProgress:
    """Shows each epoch as it ends.

    With `print_cost_every` N > 0, as the course's notebook: "Cost after iteration i: C"
    for i = 0, N, 2N, ... below the number of epochs (the cost of the weights after i
    steps), and nothing else. Otherwise a Keras progress bar over epochs on a terminal
    or in a notebook, and one line per epoch elsewhere (logs, CI).
    """

    def __init__(self, epochs: int, initial_epoch: int, print_cost_every: int = 0):
        self.epochs = epochs
        self.initial_epoch = initial_epoch
        self.every = print_cost_every
        self.bar = None
        if not self.every and (sys.stdout.isatty() or in_notebook()):
            import keras

            self.bar = keras.utils.Progbar(epochs, unit_name="epoch", stateful_metrics=list(EPOCH_LOGS))
            self.bar.update(initial_epoch)

    def start(self, logs: dict) -> None:
        """Show the weights before the first epoch: the cost after iteration 0, for a run that starts there."""
        if self.every and self.initial_epoch == 0:
            _cost_line(0, logs)

    def update(self, epoch: int, logs: dict) -> None:
        """Show the epoch just finished."""
        if self.every:
            done = epoch + 1
            if done % self.every == 0 and done < self.epochs:
                _cost_line(done, logs)
        elif self.bar is not None:
            self.bar.update(epoch + 1, values=list(logs.items()), finalize=epoch + 1 == self.epochs)
        else:
            print(f"Epoch {epoch + 1}/{self.epochs} - " + " - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))


def _cost_line(iteration: int, logs: dict) -> None:
    print(f"Cost after iteration {iteration}: {logs['loss']:f}", flush=True)
