"""`--l2 auto` on a small set: k stratified folds, the strength of the lowest mean validation loss, the refit on
every image, and a search that resumes fold by fold."""

from __future__ import annotations

import numpy as np
import pytest
from trained_runs import synthetic_dataset

from kerasreg.config import KFOLD_BELOW, TrainConfig
from kerasreg.errors import KerasregError
from kerasreg.l2_search.folds import FOLDED, combined, fold_indices
from kerasreg.l2_search.path import L2Search, SearchPoint
from kerasreg.pipeline import train_and_evaluate
from kerasreg.run_directory import files

SMALL = TrainConfig(dataset="digits", epochs=2, l2_folds=3, backup_interval=0)  # trained on the arrays given


def test_the_folds_are_stratified_cover_every_image_once_and_follow_the_seed():
    labels = np.array([0] * 30 + [1] * 12 + [2] * 18)
    folds = fold_indices(labels, 3, seed=0)
    held = np.concatenate([h for _, h in folds])
    assert sorted(held.tolist()) == list(range(60))  # each image validates once
    for train, held in folds:
        assert np.intersect1d(train, held).size == 0 and len(train) + len(held) == 60
        assert np.bincount(labels[held]).tolist() == [10, 4, 6]  # each class in its share
    assert [h.tolist() for _, h in fold_indices(labels, 3, seed=0)] == [h.tolist() for _, h in folds]
    assert [h.tolist() for _, h in fold_indices(labels, 3, seed=1)] != [h.tolist() for _, h in folds]


def _search(losses: dict[float, float], n_search: int = 80) -> L2Search:
    points = tuple(SearchPoint(l2, 1.0, 3, "converged", 0.1, 0.9, loss, 0.8) for l2, loss in losses.items())
    return L2Search((1.0, 0.1, 0.01), points, 0.1, 0.08, 1.0, n_search, 100, 1.0)


def test_the_choice_is_the_lowest_mean_over_the_strengths_every_fold_trained():
    folds = [
        _search({1.0: 0.50, 0.1: 0.40, 0.01: 0.45, 3.16: 0.60}),  # this fold walked past the grid's strong end
        _search({1.0: 0.30, 0.1: 0.42, 0.01: 0.46}),
        _search({1.0: 0.31, 0.1: 0.38, 0.01: 0.44}),
    ]
    search = combined(folds, n_all=100, seconds=2.0)
    assert [p.l2 for p in search.points] == [1.0, 0.1, 0.01]  # 3.16: one fold only, so compared on none
    assert search.points[0].val_loss == pytest.approx((0.50 + 0.30 + 0.31) / 3)
    assert search.chosen_l2 == 1.0 and search.folds == 3  # 0.37 against 0.40 and 0.45
    assert search.refit_l2 == pytest.approx(1.0 * 80 / 100)  # the same C on every image
    assert search.start is None  # the refit starts afresh: no fold's weights are the better start


def test_a_small_set_is_searched_by_folds_and_a_large_one_on_its_split():
    from kerasreg.l2_search.choose import uses_folds
    from kerasreg.training.setup import TrainingData, TrainingSetup

    def setup(n: int, folds: int) -> TrainingSetup:
        kept, held = np.arange(n - n // 10), np.arange(n - n // 10, n)
        split = TrainingData(np.zeros((n, 1), np.uint8), kept, np.zeros(len(kept)), None, held, np.zeros(len(held)))
        return TrainingSetup(None, split, TrainConfig(l2_folds=folds), None)

    assert uses_folds(setup(KFOLD_BELOW - 10, 5))
    assert not uses_folds(setup(KFOLD_BELOW, 5))
    assert not uses_folds(setup(200, 1))  # --l2-folds 1: always the split


@pytest.mark.parametrize(
    ("folds", "said"),
    [
        (0, "Expected an integer 1..20 (1: no folds)."),
        (21, "Expected an integer 1..20 (1: no folds)."),
        (2.5, "Expected an integer."),
        (True, "Expected an integer."),
    ],
)
def test_a_fold_count_out_of_range_is_one_line(folds, said):
    with pytest.raises(KerasregError) as raised:
        TrainConfig(l2_folds=folds)
    assert str(raised.value) == f"Received l2_folds={folds!r}. {said}"


@pytest.mark.slow
def test_the_bound_is_warned_of_once_and_only_when_the_folds_mean_lands_on_it(capsys):
    from kerasreg.l2_search.grid import STRONG_BOUND
    from kerasreg.l2_search.path import _outcome, _Path

    # One fold walked past the strong end to the bound; a fold's walk says so in its own words, no warning.
    walked = _Path()
    walked.points = [SearchPoint(l2, 1.0, 3, "converged", 0.1, 0.9, loss, 0.8) for l2, loss in
                     ((1.0, 0.5), (0.1, 0.6), (0.01, 0.7), (STRONG_BOUND, 0.4))]  # fmt: skip
    walked.best = 3
    fold = _outcome(walked, (1.0, 0.1, 0.01), 80, 100, 1.0, fold=True)
    said = capsys.readouterr().out
    assert fold.at_bound and "warning" not in said
    assert said.startswith("l2 search: this fold's lowest validation loss lay at the grid's strong end")
    assert said.strip().endswith("to the search's bound.")
    # The mean chooses inside the grid: nothing warns. The mean at the bound: one warning, naming the folds.
    inside = combined([_search({1.0: 0.3, 0.1: 0.4, STRONG_BOUND: 0.5}) for _ in range(3)], 100, 1.0)
    assert inside.chosen_l2 == 1.0 and not inside.at_bound and capsys.readouterr().out == ""
    edge = combined([_search({1.0: 0.3, 0.1: 0.4, STRONG_BOUND: 0.2}) for _ in range(3)], 100, 1.0)
    assert edge.chosen_l2 == STRONG_BOUND and edge.at_bound
    assert capsys.readouterr().out == (
        f"warning: l2 search: the lowest validation loss is at the search's bound (l2 {STRONG_BOUND:g}, the mean "
        "over 3 folds); a strength beyond it might do better: try the study (python -m kerasreg.study "
        "--l2-strengths ...).\n"
    )


def test_a_folded_search_chooses_refits_on_every_image_and_resumes_fold_by_fold(tmp_path, capsys):
    data = synthetic_dataset((8, 8, 1), 3, n=160)
    metrics = train_and_evaluate(SMALL, tmp_path / "run", datasets=data)
    search = metrics["l2_search"]
    assert search["folds"] == 3 and search["n_all"] == 120 and search["n_search"] == 80
    assert search["chosen_l2"] == min(search["points"], key=lambda p: p["val_loss"])["l2"]
    out = capsys.readouterr().out
    assert out.count("l2 search: fold ") == 3 and "by 3-fold cross-validation" in out
    assert f"refitting on all {search['n_all']} training images" in out
    # Interrupted in its second fold, the search goes on from there (the first fold's path read back) to the
    # same choice and the same model as the run left alone.
    _stopped_in_the_second_fold(SMALL, data, tmp_path / "partial")
    capsys.readouterr()
    resumed = train_and_evaluate(SMALL, tmp_path / "partial", datasets=data)
    out = capsys.readouterr().out
    assert out.count("l2 search: fold ") == 3 and out.count("l2 search 1/13") == 2  # folds 2 and 3 trained
    assert resumed["l2_search"] == {**search, "seconds": resumed["l2_search"]["seconds"]}
    assert resumed["accuracy"] == metrics["accuracy"] and resumed["loss"] == metrics["loss"]


def _stopped_in_the_second_fold(config, data, out) -> None:
    """Leave in `out` the backup of a run stopped (as by Ctrl-C) as its second fold began."""
    from kerasreg.l2_search import folds

    real = folds._fold
    calls = []

    def first_only(setup, model, checkpoint):
        if calls:
            raise KeyboardInterrupt  # as Ctrl-C in the second fold
        calls.append(checkpoint)
        return real(setup, model, checkpoint)

    folds._fold = first_only
    try:
        with pytest.raises(KeyboardInterrupt):
            train_and_evaluate(config, out, datasets=data)
    finally:
        folds._fold = real
    checkpoint = out / files.BACKUP / "l2_search"
    assert (checkpoint / "fold-1").is_dir() and not (checkpoint / "fold-2").exists()
    assert not (checkpoint / FOLDED).exists()
