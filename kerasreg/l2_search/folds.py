"""`--l2 auto` on a small training set: the path walked on each of k stratified folds, the strength chosen by the
mean validation loss over them, as LogisticRegressionCV chooses.

With 25 validation images the strength a single split chooses is noise: catvnoncat's
default accuracy moved from 0.82 to 0.74 between two draws of its 21-image split.
Below KFOLD_BELOW training images (config.py) the search therefore walks the grid
on each of `--l2-folds` folds (scikit-learn's StratifiedKFold, shuffled by the seed):
each fold's path is `search_l2`'s, from a fresh model, checkpointed in a folder of
its own (a rerun continues the fold it was in and reads back those finished), and
warm-started along its strengths as a single path is. Every fold trains the whole
grid, then walks on past an end where its loss still falls there; the folds' losses
are averaged at the strengths every fold trained. The refit then trains
on every training image at the chosen C, from the start (no fold's weights are a
better start than another's).
"""

from __future__ import annotations

import dataclasses
import gc
import time
from pathlib import Path

import numpy as np

from kerasreg.l2_search.grid import STRONG_BOUND, WEAK_BOUND, c_of
from kerasreg.l2_search.path import L2Search, SearchPoint, finished_search, search_l2, warn_at_bound
from kerasreg.run_directory import files

FOLDED = "folds.json"  # in the search's checkpoint folder: the finished k-fold search


def fold_indices(labels: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, validation) indices of each stratified fold, shuffled by `seed`."""
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [(np.sort(train), np.sort(held)) for train, held in splitter.split(np.zeros(len(labels)), labels)]


def folded_search(setup, checkpoint: Path) -> L2Search:
    """The k-fold search over every training image of `setup` (its split's validation part included)."""
    from kerasreg.training.setup import TrainingSetup, make_model, prepare_training_data

    done = finished_folded(checkpoint)
    if done is not None:
        return done
    started = time.perf_counter()
    config = setup.config
    every = dataclasses.replace(config, val_split=0.0, l2=0.0)
    whole = prepare_training_data(setup.data, every, setup.split)  # every image
    folds = fold_indices(whole.train_labels, config.l2_folds, config.seed)
    searches = []
    for number, (train, held) in enumerate(folds, 1):
        print(f"l2 search: fold {number}/{len(folds)} ({len(train)} images, {len(held)} to validate)", flush=True)
        split = _fold_split(whole, train, held)
        fold_setup = TrainingSetup(setup.data, split, config, setup.choice)
        model = make_model(fold_setup)
        searches.append(_fold(fold_setup, model, checkpoint / f"fold-{number}"))
        del model
        gc.collect()
    search = combined(searches, len(whole.train_labels), round(time.perf_counter() - started, 3))
    checkpoint.mkdir(parents=True, exist_ok=True)
    files.write_json(checkpoint / FOLDED, search.to_dict())
    return search


def _fold(setup, model, checkpoint: Path) -> L2Search:
    """One fold's path over the whole grid: resumed, or read back once finished."""
    finished = finished_search(checkpoint)
    if finished is not None:
        return finished
    train, val = setup.split.epoch_data(setup.data.task)
    return search_l2(model, setup, train, val, checkpoint, whole_grid=True)


def _fold_split(whole, train: np.ndarray, held: np.ndarray):
    """A fold as a TrainingData over the same pixels: its training part (with its weights) and its validation
    part, each an index set (`train` and `held` index `whole`'s training part)."""

    def weights(kept):
        return None if whole.train_weights is None else whole.train_weights[kept]

    val = (whole.train_rows[held], whole.train_labels[held], weights(held))
    return whole.part(whole.train_rows[train], whole.train_labels[train], weights(train), val)


def combined(searches: list[L2Search], n_all: int, seconds: float) -> L2Search:
    """The folds' paths as one search: at each strength, the mean over the folds; the best mean chosen."""
    grid = searches[0].grid
    n_search = round(float(np.mean([s.n_search for s in searches])))
    trained = [{p.l2: p for p in s.points if p.val_loss is not None} for s in searches]
    shared = sorted(set.intersection(*(set(t) for t in trained)), reverse=True)  # trained on every fold
    points = []
    for l2 in shared:
        at = [t[l2] for t in trained]
        points.append(
            SearchPoint(
                l2,
                c_of(l2, n_search),
                sum(p.epochs for p in at),
                at[0].stop_reason if len({p.stop_reason for p in at}) == 1 else "mixed",
                *(float(np.mean([getattr(p, key) for p in at])) for key in ("loss", "accuracy", "val_loss")),
                float(np.mean([p.val_accuracy for p in at])),
            )
        )
    best = min(points, key=lambda p: p.val_loss)
    refit = best.l2 * n_search / n_all  # the same C on every training image
    added = tuple(p.l2 for p in points if p.l2 not in grid)
    at_bound = bool(added) and best.l2 in (WEAK_BOUND, STRONG_BOUND)
    if at_bound:  # said once, for the choice: a single fold's walk to its bound is only that fold's
        warn_at_bound(best.l2, f"the mean over {len(searches)} folds")
    return L2Search(
        grid, tuple(points), best.l2, refit, best.C, n_search, n_all, seconds, added, at_bound, folds=len(searches)
    )


def finished_folded(checkpoint: Path) -> L2Search | None:
    """The finished k-fold search recorded in `checkpoint`, or None."""
    path = Path(checkpoint) / FOLDED
    if not path.is_file():
        return None
    return L2Search.from_dict(files.read_json(path))
