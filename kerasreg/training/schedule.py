"""The learning-rate schedule and the convergence stop: every run's, and each point's of the L2 search.

Below both fit.py and the L2 search, so each builds the same schedule without importing the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kerasreg.config import CONVERGED_PATIENCE

LR_FACTOR = 0.5
LR_MIN_DELTA = 1e-4  # an epoch must lower the objective by this much to count as progress


@dataclass(frozen=True)
class Schedule:
    """The schedule's callbacks, by name (None where switched off): callers read their state by role."""

    reduce_lr: Any  # kerasreg.training.callbacks.ReduceLROnPlateau, or None (--lr-schedule none)
    converged: Any  # kerasreg.training.callbacks.Converged, or None (--tol 0)

    @property
    def callbacks(self) -> list:
        """Those switched on, in the order they run after an epoch."""
        return [c for c in (self.reduce_lr, self.converged) if c is not None]

    @property
    def tracked(self) -> dict:
        """Those switched on, by role: what a backup keeps of their state."""
        return {role: c for role, c in (("reduce_lr", self.reduce_lr), ("converged", self.converged)) if c is not None}


def make_schedule(tol: float, lr_schedule: str = "plateau") -> Schedule:
    """A fresh schedule: halve the step when an epoch stops lowering the objective (unless `lr_schedule` is "none");
    stop once converged (unless `tol` is 0)."""
    from kerasreg.training.callbacks import Converged, ReduceLROnPlateau

    reduce_lr = None
    if lr_schedule == "plateau":
        # Halving the step when an epoch stops lowering the training objective lets Adam
        # settle instead of circling the optimum (measured on validation loss: MNIST 8k
        # 0.347 -> 0.328 at batch 1024).
        reduce_lr = ReduceLROnPlateau(monitor="loss", factor=LR_FACTOR, patience=1, min_delta=LR_MIN_DELTA)
    return Schedule(reduce_lr, Converged(tol, CONVERGED_PATIENCE) if tol > 0 else None)
