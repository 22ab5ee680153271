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
and rises after it, and the weakest points are the slowest to train. Where the
lowest loss sits at either end of the grid, the path walks on past that end in
half-decades until the loss rises (`grid.next_strength`), so the choice is never
the grid's edge by default; only a bound stops it sooner, and that is warned of. The
path is checkpointed after every point: an interrupted search continues at the next one.
kerasreg/l2_search/choose.py is the entry point: it runs, resumes or reads back a search.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from kerasreg.errors import RESTART, RunDirError
from kerasreg.l2_search.grid import L2_GRID, RISES_TO_STOP, STRONG_BOUND, WEAK_BOUND, c_of, next_strength
from kerasreg.run_directory import files

_RECORD = "path.json"  # a checkpoint's path so far; its atomic write commits the checkpoint
_FINISHED = "search"  # in a finished search's record: the L2Search, which a rerun of its refit reads back


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
    added: tuple[float, ...] = ()  # strengths walked past the grid's end, in order (`grid.next_strength`)
    at_bound: bool = False  # the best point is the walk's bound: a strength beyond it may be better
    folds: int = 1  # 1: chosen on the validation split; k: by the mean over k folds (kerasreg/l2_search/folds.py)
    # The best point's model as an affine map on raw pixels (`folded_affine`): where the refit starts.
    # Not recorded: a resumed refit starts from its backup.
    start: tuple | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        """As config.json and metrics.json record it."""
        record = {**asdict(self), "grid": list(self.grid), "points": [asdict(p) for p in self.points]}
        record["added"] = list(self.added)
        del record["start"]
        return record

    @classmethod
    def from_dict(cls, values: dict) -> L2Search:
        """Read back a recorded search (a resumed refit does not search again)."""
        points = tuple(SearchPoint(**p) for p in values["points"])
        return cls(**{**values, "grid": tuple(values["grid"]), "points": points, "added": tuple(values["added"])})


def search_l2(
    model,
    setup,
    train,
    val,
    checkpoint_dir: Path | None = None,
    grid: tuple[float, ...] = L2_GRID,
    whole_grid: bool = False,
) -> L2Search:
    """Train along `grid` (strong to weak) on `train`, score each point on `val`; see the module docstring.

    `model` is built and compiled for the search split (`setup.split`); `train` and
    `val` are its `EpochData`. The model ends holding the last point's weights.
    With `checkpoint_dir` the path is checkpointed after every point, and a search
    interrupted there continues at the next point, as it would have gone on; the
    finished search is recorded there too (`finished_search` reads it back).
    With `whole_grid` every strength of the grid is trained (a k-fold search's folds, whose losses are averaged
    strength by strength: kerasreg/l2_search/folds.py). Returns the `L2Search`.
    """
    from kerasreg.training.compiled_epoch import CompiledEpoch

    config = setup.config
    started = time.perf_counter()
    n_search = train.n
    task = setup.data.task
    epoch = CompiledEpoch(model, setup.choice.strategy, task, config.batch_size, grid[0], config.mixed_precision)
    epoch.compile(train, val)
    saved = _Checkpoint(checkpoint_dir, grid) if checkpoint_dir is not None else None
    with setup.choice.strategy.scope():  # restoring assigns the model's and the optimizer's variables
        path = saved.restore(model) if saved is not None else None
    if path is None:
        path = _Path()
    else:
        print(f"l2 search: resuming at point {len(path.points) + 1}", flush=True)
    while (step := _next(path.points, grid, whole_grid)) is not None:
        l2, train_it = step
        if not train_it:
            if all(p.stop_reason != "skipped" for p in path.points):
                weaker = sorted(grid, reverse=True)[len(path.points) :]
                print(
                    f"l2 search: the validation loss rose at {RISES_TO_STOP} strengths in a row, so the "
                    f"{len(weaker)} weaker ones (l2 {weaker[0]:g} to {weaker[-1]:g}) are skipped: they only overfit "
                    "more, and train slowest",
                    flush=True,
                )
            path.points.append(SearchPoint(l2, c_of(l2, n_search)))
            continue
        point = _train_point(model, epoch, config, l2, n_search, path)
        if saved is not None:
            saved.save(model, path)
        where = (
            f"{len(path.points)}/{len(grid)}"
            if len(path.points) <= len(grid)
            else f"{len(path.points)} (past the grid)"
        )
        print(
            f"l2 search {where}: l2 {l2:g} (C {point.C:.3g}): val_loss {point.val_loss:.4f}, "
            f"val_accuracy {point.val_accuracy:.4f} after {point.epochs} epochs ({point.stop_reason})",
            flush=True,
        )
    seconds = round(time.perf_counter() - started, 3)
    search = _outcome(path, grid, n_search, n_search + val.n, seconds, fold=whole_grid)
    if saved is not None:
        saved.finish(search)
    return search


def _next(points: list[SearchPoint], grid: tuple[float, ...], whole_grid: bool) -> tuple[float, bool] | None:
    """The path's next strength, and whether to train it (`grid.next_strength`; with `whole_grid` every strength
    of the grid is trained, however the loss went, before any walk past its ends)."""
    if whole_grid and len(points) < len(grid):
        return sorted(grid, reverse=True)[len(points)], True
    return next_strength([(p.l2, p.val_loss) for p in points], grid)


def _train_point(model, epoch, config, l2: float, n_search: int, path: _Path) -> SearchPoint:
    """Train at strength `l2` from where the path is, to convergence; add the point to `path` and return it."""
    from kerasreg.model import folded_affine
    from kerasreg.training.epoch_runner import EpochRunner
    from kerasreg.training.schedule import make_schedule

    epoch.l2.assign(l2)
    model.optimizer.learning_rate.assign(config.resolved_learning_rate)  # Adam's moments carry over
    schedule = make_schedule(config.tol, config.lr_schedule)  # fresh for each point
    # Shuffles are numbered across the path: every epoch of every point gets its own.
    ran = EpochRunner(model, epoch, schedule.callbacks, config.seed).run(0, config.epochs, shuffle_offset=path.epoch)
    path.epoch += ran.epochs
    reason = "converged" if schedule.converged is not None and schedule.converged.converged_epoch else "epoch_cap"
    point = SearchPoint(l2, c_of(l2, n_search), ran.epochs, reason, *(ran.logs[k] for k in files.EPOCH_LOGS))
    path.points.append(point)
    if path.best is None or point.val_loss < path.points[path.best].val_loss:
        path.best, path.start = len(path.points) - 1, folded_affine(model)
    return point


def _outcome(
    path: _Path, grid: tuple[float, ...], n_search: int, n_all: int, seconds: float, fold: bool = False
) -> L2Search:
    """The search the walk made: its best point, the refit's strength, and what it walked past the grid (said).

    A fold's walk says what it did but chooses nothing: the folds' mean chooses, and warns (folds.py `combined`).
    """
    best = path.points[path.best]
    added = tuple(p.l2 for p in path.points[len(grid) :])
    at_bound = bool(added) and best.l2 in (WEAK_BOUND, STRONG_BOUND)
    if at_bound and not fold:
        warn_at_bound(best.l2, f"{len(added)} half-decades past the grid")
    elif added:
        side = "weak" if added[0] < min(grid) else "strong"
        walked = f"{len(added)} half-decades (l2 {', '.join(f'{a:g}' for a in added)})"
        whose = "this fold's" if fold else "the"
        until = "to the search's bound" if at_bound else "until it rose"
        chosen = "." if fold else f"; chosen l2 {best.l2:g}."
        print(
            f"l2 search: {whose} lowest validation loss lay at the grid's {side} end, so the search walked on "
            f"{walked} {until}{chosen}",
            flush=True,
        )
    refit = best.l2 * n_search / n_all
    points = tuple(path.points)
    return L2Search(
        tuple(grid), points, best.l2, refit, best.C, n_search, n_all, seconds, added, at_bound, start=path.start
    )


def warn_at_bound(l2: float, how_far: str) -> None:
    """Say that the chosen strength is the search's bound, where a stronger or weaker one might do better."""
    print(
        f"warning: l2 search: the lowest validation loss is at the search's bound (l2 {l2:g}, {how_far}); a "
        "strength beyond it might do better: try the study (python -m kerasreg.study --l2-strengths ...).",
        flush=True,
    )


def finished_search(checkpoint_dir: Path) -> L2Search | None:
    """The search a checkpoint records as finished (its refit was interrupted), best model included; else None."""
    found = read_checkpoint(Path(checkpoint_dir))
    if found is None or _FINISHED not in found[0]:
        return None
    record, saved = found
    try:
        search = L2Search.from_dict(record[_FINISHED])
    except (KeyError, TypeError, ValueError):
        raise _damaged(Path(checkpoint_dir), f"{_RECORD} holds a damaged {_FINISHED!r} record") from None
    return dataclasses.replace(search, start=(saved["start_kernel"], saved["start_bias"]))


def read_checkpoint(directory: Path) -> tuple[dict, dict] | None:
    """The committed checkpoint's record and arrays, None without one; RunDirError when it is damaged."""

    def damaged(why: str) -> RunDirError:
        return _damaged(directory, why)

    if not (directory / _RECORD).is_file():
        return None
    try:
        record = files.read_json(directory / _RECORD)
    except RunDirError:
        raise damaged(f"{_RECORD} is not JSON") from None
    try:
        points = [SearchPoint(**p) for p in record["points"]]
    except (KeyError, TypeError):
        raise damaged(f"{_RECORD} lacks its points") from None
    if not _well_formed(record, points):
        raise damaged(f"{_RECORD} lacks a field or holds one of another kind")
    try:
        with np.load(directory / record["weights"], allow_pickle=False) as saved:
            arrays = {key: saved[key] for key in saved.files}
    except files.NPZ_ERRORS as e:
        raise damaged(f"{record['weights']}: {type(e).__name__}") from None
    if "start_kernel" not in arrays or "start_bias" not in arrays:
        raise damaged(f"{record['weights']} lacks the best point's model")
    if any(a.dtype.kind == "f" and not np.isfinite(a).all() for a in arrays.values()):
        raise damaged("non-finite values: a diverged search")
    record["points"] = points
    return record, arrays


def _damaged(directory: Path, why: str) -> RunDirError:
    return RunDirError(f"{directory}: the search's checkpoint is damaged ({why}); {RESTART}.")


def _well_formed(record: dict, points: list[SearchPoint]) -> bool:
    """Whether a checkpoint record holds each field, of its kind (the JSON could be anything)."""

    def count(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    best = record.get("best")
    return (
        "best" in record
        and isinstance(record.get("grid"), list)
        and isinstance(record.get("weights"), str)
        and "/" not in record["weights"]
        and count(record.get("epoch"))
        and (best is None or (count(best) and best < len(points)))
        and all(isinstance(p.l2, int | float) and isinstance(p.val_loss, float | type(None)) for p in points)
    )


@dataclass
class _Path:
    """Where the search is: its points (the next follows from them), the epochs run, the best point and its model."""

    points: list[SearchPoint] = field(default_factory=list)
    epoch: int = 0
    best: int | None = None
    start: tuple | None = None


class _Checkpoint:
    """The search's state after each point, so an interrupted search continues at the next one.

    The model's and optimizer's variables (.npz) and the path so far (path.json,
    written last, atomically: its rename commits the checkpoint).
    """

    def __init__(self, directory: Path, grid: tuple[float, ...]):
        self.directory = Path(directory)
        self.grid = list(grid)

    def save(self, model, path: _Path) -> None:
        """Commit the state after the last point of `path`."""
        from kerasreg.training.backup import training_variables

        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"point-{len(path.points):02d}.npz"
        arrays = {f"v{i}": np.asarray(v.numpy()) for i, v in enumerate(training_variables(model))}
        arrays.update(start_kernel=path.start[0], start_bias=path.start[1])
        files.write_npz(self.directory / name, arrays)
        record = {"grid": self.grid, "weights": name, "points": [asdict(p) for p in path.points]}
        record.update(epoch=path.epoch, best=path.best)
        files.write_json(self.directory / _RECORD, record)
        for old in self.directory.glob("point-*.npz"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def finish(self, search: L2Search) -> None:
        """Record the finished search beside its last point (committed by the record's atomic write)."""
        record = files.read_json(self.directory / _RECORD)
        files.write_json(self.directory / _RECORD, {**record, _FINISHED: search.to_dict()})

    def restore(self, model) -> _Path | None:
        """Put the checkpointed state back into `model`; the path so far, or None when there is none for this grid."""
        from kerasreg.training.backup import training_variables

        found = read_checkpoint(self.directory)
        if found is None or found[0]["grid"] != self.grid:
            return None
        record, saved = found
        variables = training_variables(model)
        values = [saved.get(f"v{i}") for i in range(len(variables))]
        if any(v is None or tuple(var.shape) != v.shape for var, v in zip(variables, values, strict=True)):
            raise RunDirError(
                f"{self.directory}: the search's checkpoint holds other variables than this model; {RESTART}."
            )
        for variable, value in zip(variables, values, strict=True):  # by position, as saved
            variable.assign(value)
        start = (saved["start_kernel"], saved["start_bias"])
        return _Path(record["points"], record["epoch"], record["best"], start)
