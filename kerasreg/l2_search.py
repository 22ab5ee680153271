"""`--l2 auto`: choose the L2 strength on the validation split, as LogisticRegressionCV chooses C.

The path runs from strong to weak regularisation over `L2_GRID`, each point trained
to convergence on the training part of the split and scored on its validation part
(validation loss, class-weighted like the objective; the test split is never read).
The best point's strength is then refitted on training plus validation data at the
same C: scikit-learn's C multiplies a sum over examples, kerasreg's l2 a mean, so
l2 = 1 / (2 C n) and the refit's l2 is the chosen one times n_search / n_all. The
refit starts from the best point's model (as LogisticRegressionCV's refit does), so
it converges in a few dozen epochs even where the regularisation is weak (digits:
31 epochs, against the 100-epoch cap from scratch).

Why it is cheap: one traced epoch function serves the whole path (the strength is a
variable), and each point starts from the previous point's weights and Adam's
moments (a warm start, as scikit-learn's path does), so most points converge in
30-50 epochs. The path also stops once the validation loss has risen at
`RISES_TO_STOP` points in a row: along a regularisation path it falls to one minimum
and rises after it, and the weakest points are the slowest to train.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

# Half-decades from 10 (a near-constant model) down to 1e-5 (C ~ 40 on digits).
# Measured best points on validation: cat vs rest 1, the CIFAR sample 0.3 (0.1 on
# other seeds' splits), MNIST 8k 3e-3, digits 1e-5 to 3e-4 (its validation loss
# still falls at 1e-5, where the run warns; its test accuracy no longer moves).
L2_GRID = tuple(float(f"{v:.3g}") for v in np.logspace(1, -5, 13))
RISES_TO_STOP = 2


def c_of(l2: float, n: int) -> float:
    """scikit-learn's C for kerasreg's l2 on n examples (C = 1 / (2 l2 n)); inf for l2 = 0."""
    return float("inf") if l2 == 0 else 1.0 / (2.0 * l2 * n)


@dataclass(frozen=True)
class SearchPoint:
    """One strength of the path: what training reached on the search split, or why it was skipped."""

    l2: float
    C: float
    epochs: int = 0
    stop_reason: str = "skipped"  # converged, epoch_cap, or skipped (the path stopped before it)
    loss: float | None = None  # the training objective at the end
    accuracy: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None


@dataclass(frozen=True)
class L2Search:
    """The path, its choice, and the strength the refit on all training data uses."""

    grid: tuple[float, ...]
    points: tuple[SearchPoint, ...]
    chosen_l2: float  # on the search split
    refit_l2: float  # on training + validation data, the same C
    C: float
    n_search: int
    n_all: int
    seconds: float
    at_grid_edge: bool = False  # the best point is the grid's first or last: a strength beyond it may be better
    # The best point's model as an affine map on raw pixels (`folded_affine`): where the refit starts.
    # Not recorded: a resumed refit starts from its backup.
    start: tuple | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        """As config.json and metrics.json record it."""
        record = {**asdict(self), "grid": list(self.grid), "points": [asdict(p) for p in self.points]}
        del record["start"]
        return record

    @classmethod
    def from_dict(cls, values: dict) -> L2Search:
        """Read back a recorded search (a resumed refit does not search again)."""
        points = tuple(SearchPoint(**p) for p in values["points"])
        return cls(**{**values, "grid": tuple(values["grid"]), "points": points})


def search_l2(model, setup, train, val, grid: tuple[float, ...] = L2_GRID) -> L2Search:
    """Train along `grid` (strong to weak) on `train`, score each point on `val`; see the module docstring.

    `model` is built and compiled for the search split (`setup.split`); `train` and
    `val` are its `EpochData`. The model ends holding the last point's weights.
    """
    import keras

    from kerasreg.callbacks import Converged
    from kerasreg.epoch_loop import EpochLoop
    from kerasreg.model import folded_affine
    from kerasreg.training import CONVERGED_PATIENCE, LR_FACTOR, LR_MIN_DELTA

    config = setup.config
    started = time.perf_counter()
    n_search = len(train.targets)
    n_all = n_search + len(val.targets)
    loop = EpochLoop(model, setup.choice.strategy, setup.data.task, config.batch_size, grid[0], config.mixed_precision)
    loop.compile(train, val)
    strengths = sorted(grid, reverse=True)
    points: list[SearchPoint] = []
    epoch = 0  # across the path: every epoch gets its own shuffle
    best, rises = None, 0
    for i, l2 in enumerate(strengths):
        if rises >= RISES_TO_STOP:
            points.append(SearchPoint(l2, c_of(l2, n_search)))
            continue
        loop.l2.assign(l2)
        model.optimizer.learning_rate.assign(config.resolved_learning_rate)  # Adam's moments carry over
        callbacks = [
            keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=LR_FACTOR, patience=1, min_delta=LR_MIN_DELTA),
            Converged(config.tol, CONVERGED_PATIENCE),
        ]
        for callback in callbacks:
            callback.set_model(model)
            callback.on_train_begin()
        model.stop_training = False
        for done in range(1, config.epochs + 1):
            logs = loop.run_epoch(config.seed, epoch)
            epoch += 1
            for callback in callbacks:
                callback.on_epoch_end(done - 1, logs)
            if model.stop_training:
                break
        reason = "converged" if callbacks[1].converged_epoch else "epoch_cap"
        point = SearchPoint(l2, c_of(l2, n_search), done, reason, *(logs[k] for k in _LOGS))
        points.append(point)
        rises = rises + 1 if len(points) > 1 and point.val_loss > points[-2].val_loss else 0
        if best is None or point.val_loss < best.val_loss:
            best, start = point, folded_affine(model)
        print(
            f"l2 search {i + 1}/{len(strengths)}: l2 {l2:g} (C {point.C:.3g}): val_loss {point.val_loss:.4f}, "
            f"val_accuracy {point.val_accuracy:.4f} after {done} epochs ({reason})",
            flush=True,
        )
    refit = best.l2 * n_search / n_all
    edge = best.l2 in (strengths[0], strengths[-1])
    if edge:
        print(
            f"warning: l2 search: the lowest validation loss is at the grid's end (l2 {best.l2:g}); a strength "
            "beyond it might do better: try the study (python -m kerasreg.study --l2-strengths ...).",
            flush=True,
        )
    seconds = round(time.perf_counter() - started, 3)
    return L2Search(tuple(grid), tuple(points), best.l2, refit, best.C, n_search, n_all, seconds, edge, start)


_LOGS = ("loss", "accuracy", "val_loss", "val_accuracy")
