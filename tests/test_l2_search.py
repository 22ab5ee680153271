"""`--l2 auto`: the search on the validation split, its record, the refit, and resuming it."""

import dataclasses
import json

import numpy as np
import pytest

from kerasreg.config import TrainConfig
from kerasreg.datasets import load_dataset
from kerasreg.l2_search.grid import L2_GRID, STRONG_BOUND, WEAK_BOUND, c_of, next_strength
from kerasreg.pipeline import train_and_evaluate
from kerasreg.run_directory import files

pytestmark = pytest.mark.slow  # about eight whole --l2 auto runs

# The defaults (l2 auto, batch auto), on the validation split: digits' 1,437 images would take the k-fold search
# (tests/test_l2_folds.py).
AUTO = TrainConfig(dataset="digits", backup_interval=0, l2_folds=1)


@pytest.fixture(scope="module")
def auto_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("auto") / "digits"
    metrics = train_and_evaluate(AUTO, run)
    return run, metrics


def test_the_default_is_auto_and_the_search_is_recorded_in_metrics(auto_run):
    run, metrics = auto_run
    config = json.loads((run / files.CONFIG).read_text())
    assert config["options"]["l2"] == "auto" and config["options"]["batch_size"] == "auto"
    assert "l2_search" not in config  # config.json is written once, before the search: the options, not outcomes
    search = metrics["l2_search"]
    assert search == json.loads((run / files.METRICS).read_text())["l2_search"]
    assert search["grid"] == list(L2_GRID)
    walked = [p["l2"] for p in search["points"]]
    assert walked[: len(L2_GRID)] == sorted(L2_GRID, reverse=True)  # strong to weak, then past an end
    assert search["added"] == walked[len(L2_GRID) :]
    n_search, n_all = search["n_search"], search["n_all"]
    assert (n_search, n_all) == (
        config["dataset"]["n_train"],
        config["dataset"]["n_train"] + config["dataset"]["n_val"],
    )
    trained = [p for p in search["points"] if p["stop_reason"] != "skipped"]
    assert len(trained) >= 3 and all(p["val_loss"] > 0 and 0 < p["val_accuracy"] <= 1 for p in trained)
    for p in search["points"]:
        assert p["C"] == pytest.approx(c_of(p["l2"], n_search))
    best = min(trained, key=lambda p: p["val_loss"])
    assert search["chosen_l2"] == best["l2"] and search["C"] == pytest.approx(best["C"])
    # The refit keeps C: l2 * n is the same on all the training data as on the search split.
    assert search["refit_l2"] == pytest.approx(best["l2"] * n_search / n_all)
    assert c_of(search["refit_l2"], n_all) == pytest.approx(search["C"])
    assert search["at_bound"] == (best["l2"] in (WEAK_BOUND, STRONG_BOUND))
    assert 0 < search["seconds"] < metrics["train_seconds"]


def test_the_refit_trains_on_all_training_data_with_no_validation_split(auto_run):
    run, metrics = auto_run
    history = files.read_history(run / files.HISTORY)
    assert history and all(row.get("val_loss") is None for row in history)
    assert metrics["stop_reason"] in ("converged", "epoch_cap") and metrics["epochs_trained"] == len(history)
    assert metrics["accuracy"] >= 0.95
    assert (run / files.L2_SEARCH).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def check_path_rule(points: list[dict]) -> None:
    """The path is the one `next_strength` gives for the losses it met, point by point, and it ended there."""
    replay: list[tuple[float, float | None]] = []
    for point in points:
        assert next_strength(replay) == (point["l2"], point["stop_reason"] != "skipped"), point
        replay.append((point["l2"], point["val_loss"]))
    assert next_strength(replay) is None


def test_the_path_stops_after_two_rises_and_walks_past_an_end_where_the_loss_still_falls(auto_run):
    check_path_rule(auto_run[1]["l2_search"]["points"])


def test_the_search_never_reads_the_test_split(auto_run, tmp_path):
    run, metrics = auto_run
    data = load_dataset("digits")
    rng = np.random.default_rng(1)
    other_test = dataclasses.replace(
        data,
        test_images=rng.integers(0, 256, data.test_images.shape, dtype=np.uint8),
        test_labels=rng.permutation(data.test_labels),
    )
    other = train_and_evaluate(AUTO, tmp_path / "other", datasets=other_test)
    assert other["l2_search"]["points"] == metrics["l2_search"]["points"]
    assert (tmp_path / "other" / files.HISTORY).read_text() == (run / files.HISTORY).read_text()
    assert other["accuracy"] < 0.5  # the test split did change, and only the test metrics saw it


def _same_run(run, whole) -> None:
    assert (run / files.HISTORY).read_text() == (whole / files.HISTORY).read_text()
    for a, b in zip(files.load_run_model(run).get_weights(), files.load_run_model(whole).get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("killed_at", [0, 3])  # before the refit's first backup, and after three
def test_an_interrupted_refit_resumes_without_searching_again(auto_run, tmp_path, monkeypatch, killed_at):
    import kerasreg.l2_search.choose as choose
    import kerasreg.training.fit as training
    from kerasreg.training.compiled_epoch import CompiledEpoch

    whole, metrics = auto_run
    fit, run_epoch = training.fit, CompiledEpoch.run_epoch
    refitting = []

    def fit_marked(*args, **kwargs):
        refitting.append(True)
        return fit(*args, **kwargs)

    def crash(self, seed, epoch):
        if refitting and epoch == killed_at:
            raise KeyboardInterrupt
        return run_epoch(self, seed, epoch)

    monkeypatch.setattr(training, "fit", fit_marked)
    monkeypatch.setattr(CompiledEpoch, "run_epoch", crash)
    with pytest.raises(KeyboardInterrupt):
        train_and_evaluate(AUTO, tmp_path / "run")
    monkeypatch.setattr(CompiledEpoch, "run_epoch", run_epoch)

    def no_search(setup, checkpoint):
        raise AssertionError("searched again")

    monkeypatch.setattr(choose, "_search", no_search)
    resumed = train_and_evaluate(AUTO, tmp_path / "run")
    assert {**resumed["l2_search"], "seconds": 0} == {**metrics["l2_search"], "seconds": 0}
    _same_run(tmp_path / "run", whole)


@pytest.mark.parametrize("done", [3, len(L2_GRID)])  # inside the grid, and in the walk past its weak end
def test_an_interrupted_search_continues_at_the_next_point(auto_run, tmp_path, monkeypatch, capsys, done):
    from kerasreg.training.compiled_epoch import CompiledEpoch

    whole, metrics = auto_run
    points = metrics["l2_search"]["points"]
    assert len(points) > len(L2_GRID)  # digits' lowest loss is at the grid's weak end: the search walks on
    killed_at = sum(p["epochs"] for p in points[:done]) + 2  # two epochs into the next point
    run_epoch = CompiledEpoch.run_epoch

    def crash(self, seed, epoch):
        if epoch == killed_at:
            raise KeyboardInterrupt
        return run_epoch(self, seed, epoch)

    monkeypatch.setattr(CompiledEpoch, "run_epoch", crash)
    with pytest.raises(KeyboardInterrupt):
        train_and_evaluate(AUTO, tmp_path / "run")
    monkeypatch.setattr(CompiledEpoch, "run_epoch", run_epoch)
    capsys.readouterr()
    resumed = train_and_evaluate(AUTO, tmp_path / "run")
    printed = capsys.readouterr().out
    assert f"l2 search: resuming at point {done + 1}\n" in printed and f"l2 search {done}" not in printed
    assert resumed["l2_search"]["points"] == points
    _same_run(tmp_path / "run", whole)
    assert not (tmp_path / "run" / files.BACKUP).exists()  # the checkpoint goes with the backup once finished


@pytest.mark.parametrize(
    "n_train, batch", [(100, 32), (1295, 64), (3661, 128), (7200, 256), (16384, 1024), (54000, 1024)]
)
def test_the_auto_batch_aims_at_16_steps_an_epoch_within_32_to_1024(n_train, batch):
    assert TrainConfig().resolved_batch_size(n_train) == batch
    assert TrainConfig(batch_size=100).resolved_batch_size(n_train) == 100


def test_the_resolved_batch_is_recorded_beside_the_option(auto_run):
    run, _ = auto_run
    config = json.loads((run / files.CONFIG).read_text())
    assert config["global_batch_size"] == TrainConfig().resolved_batch_size(config["dataset"]["n_train"]) == 64


def test_the_search_and_its_refit_run_the_same_on_two_replicas(auto_run, tmp_path, two_cpu_strategy):
    _, metrics = auto_run
    mirrored = train_and_evaluate(AUTO, tmp_path / "mirrored", strategy=two_cpu_strategy)
    ours, theirs = metrics["l2_search"], mirrored["l2_search"]
    assert theirs["chosen_l2"] == ours["chosen_l2"]
    trained = [(a, b) for a, b in zip(ours["points"], theirs["points"], strict=True) if a["val_loss"] is not None]
    for a, b in trained:
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-3, abs=1e-4)
    assert mirrored["accuracy"] == pytest.approx(metrics["accuracy"], abs=0.01)
