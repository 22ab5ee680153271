"""`--l2 auto`'s one entry point: the search run, resumed or read back, and the refit's setup at its choice."""

from __future__ import annotations

import gc
from pathlib import Path

from kerasreg.config import KFOLD_BELOW
from kerasreg.l2_search.path import L2Search, finished_search, search_l2
from kerasreg.run_directory import files
from kerasreg.training.setup import TrainingSetup, make_model, refit_setup

CHECKPOINT = "l2_search"  # inside the run's backup folder: the search's checkpoint, and the finished search


def choose_l2(setup: TrainingSetup, work_dir: Path) -> tuple[TrainingSetup, L2Search]:
    """The search's outcome on the setup's split, and the setup of the refit on all training data at its strength.

    A first run searches; a rerun after an interruption continues the search from its
    checkpoint, or, when the search had finished and the refit was interrupted, reads
    the finished search back (the refit then resumes from its own backup).
    """
    checkpoint = work_dir / files.BACKUP / CHECKPOINT
    if uses_folds(setup):
        from kerasreg.l2_search.folds import folded_search

        search = folded_search(setup, checkpoint)
        gc.collect()
        print(
            f"l2 auto: chose l2 {search.chosen_l2:g} (C {search.C:.3g}) by {search.folds}-fold cross-validation "
            f"in {search.seconds:.1f} s; refitting on all {search.n_all} training images at l2 {search.refit_l2:.4g}",
            flush=True,
        )
        return refit_setup(setup, search.refit_l2), search
    search = finished_search(checkpoint)
    if search is None:
        search = _search(setup, checkpoint)
        # The search's model, traced function and features sit in reference cycles: free
        # them now, before the refit makes its own features.
        gc.collect()
    print(
        f"l2 auto: chose l2 {search.chosen_l2:g} (C {search.C:.3g}) on the validation split in "
        f"{search.seconds:.1f} s; refitting on all {search.n_all} training images at l2 {search.refit_l2:.4g}",
        flush=True,
    )
    return refit_setup(setup, search.refit_l2), search


def uses_folds(setup: TrainingSetup) -> bool:
    """Whether `--l2 auto` chooses by k-fold cross-validation here: --l2-folds above 1 and fewer than KFOLD_BELOW
    training images (validation split included)."""
    n_all = len(setup.split.train_labels) + setup.split.n_val
    return setup.config.l2_folds > 1 and n_all < KFOLD_BELOW


def search_finished(checkpoint: Path) -> bool:
    """Whether `checkpoint` records a finished search, on the split or by folds (a cluster compares it)."""
    from kerasreg.l2_search.folds import finished_folded

    return finished_search(checkpoint) is not None or finished_folded(checkpoint) is not None


def _search(setup: TrainingSetup, checkpoint: Path) -> L2Search:
    """Run (or continue) the search on the setup's split, checkpointed in `checkpoint`."""
    model = make_model(setup)
    train, val = setup.split.epoch_data(setup.data.task)
    return search_l2(model, setup, train, val, checkpoint)
