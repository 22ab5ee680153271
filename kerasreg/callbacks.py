"""Keras callbacks of kerasreg's own. Imports Keras at module level: import lazily."""

from __future__ import annotations

from pathlib import Path

import keras

from kerasreg import run_dir as files


class HistoryRecorder(keras.callbacks.Callback):
    """Appends each finished epoch's logs to `rows` and rewrites history.csv whole.

    Rewriting (atomically) rather than appending means the file always holds
    exactly the epochs in `rows`, which a resumed run can trim and continue.
    """

    def __init__(self, rows: list[dict], path: Path | None = None):
        super().__init__()
        self.rows = rows
        self.path = path

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Record the epoch; write history.csv when this process writes the run."""
        logs = logs or {}
        self.rows.append({"epoch": epoch, **{k: float(logs[k]) for k in files.HISTORY_FIELDS[1:] if k in logs}})
        if self.path is not None:
            files.write_history(self.path, self.rows)
