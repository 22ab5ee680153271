"""How a run shows its epochs: a Keras progress bar on a terminal, one line per epoch otherwise (logs, CI)."""

from __future__ import annotations

import sys

from kerasreg.run_directory.files import EPOCH_LOGS


class EpochProgress:
    """A Keras progress bar over epochs on a terminal; one line per epoch otherwise."""

    def __init__(self, epochs: int, initial_epoch: int):
        self.epochs = epochs
        self.bar = None
        if sys.stdout.isatty():
            import keras

            self.bar = keras.utils.Progbar(epochs, unit_name="epoch", stateful_metrics=list(EPOCH_LOGS))
            self.bar.update(initial_epoch)

    def update(self, epoch: int, logs: dict) -> None:
        """Show the epoch just finished."""
        if self.bar is not None:
            self.bar.update(epoch + 1, values=list(logs.items()), finalize=epoch + 1 == self.epochs)
        else:
            print(f"Epoch {epoch + 1}/{self.epochs} - " + " - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
