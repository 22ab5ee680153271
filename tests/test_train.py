"""The training path end to end: train_and_evaluate, the run directory, the CLI."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from kerasreg.config import TrainConfig
from kerasreg.evaluate import evaluate_run
from kerasreg.evaluate import main as evaluate_main
from kerasreg.pipeline import train_and_evaluate
from kerasreg.run_directory import files
from kerasreg.train import main

# Small batches, so three epochs take enough steps to learn digits well enough to test.
SMALL = TrainConfig(dataset="digits", epochs=3, patience=2, batch_size=128, l2=0.01, learning_rate=0.01)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "digits"
    metrics = train_and_evaluate(SMALL, run)
    return run, metrics


def test_run_directory_holds_everything(digits_run):
    run, metrics = digits_run
    config = json.loads((run / files.CONFIG).read_text())
    assert config["options"]["learning_rate"] == 0.01 and config["options"]["epochs"] == 3
    assert config["strategy"] == {
        "kind": "default",
        "replicas": 1,
        "devices": ["/CPU:0"],
        "is_chief": True,
        "worker_index": 0,
        "num_workers": 1,
    }
    assert config["dataset"]["n_train"] + config["dataset"]["n_val"] == 1437
    assert set(config["versions"]) >= {"tensorflow", "keras", "numpy", "kerasreg"}
    stored = json.loads((run / files.METRICS).read_text())
    assert stored == metrics
    assert {"accuracy", "loss", "per_class_accuracy", "confusion_matrix", "n_test"} <= set(stored)
    assert stored["n_test"] == 360 and np.sum(stored["confusion_matrix"]) == 360
    assert stored["accuracy"] > 0.8  # 3 epochs on digits
    history = files.read_history(run / files.HISTORY)
    assert [row["epoch"] for row in history] == [0, 1, 2]
    assert stored["stop_reason"] == "epoch_cap" and 1 <= stored["best_epoch"] <= 3
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    import csv

    with (run / files.PREDICTIONS).open() as table:
        rows = list(csv.DictReader(table))
    assert [int(r["image"]) for r in rows] == list(range(360))  # digits has no files: each test image's index
    assert sum(int(r["correct"]) for r in rows) / 360 == pytest.approx(stored["accuracy"])
    assert all((r["true_class"] == r["predicted_class"]) == (r["correct"] == "1") for r in rows)
    for plot in (files.LEARNING_CURVES, files.CONFUSION_MATRIX, files.WEIGHTS, files.MISTAKES):
        assert (run / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    from kerasreg.reports.drawing import image_grid

    wrong = int(round((1 - stored["accuracy"]) * 360))
    ten = image_grid([np.zeros((8, 8), np.uint8)] * 10, ["true\nsaid"] * 10, title="")
    assert wrong >= 10 and Image.open(run / files.MISTAKES).size == ten.size  # 2 rows of 5 mistakes
    images, labels = files.read_sample(run / files.TEST_SAMPLE)
    assert images.shape == (360, 8, 8, 1) and images.dtype == np.uint8 and len(labels) == 360


def test_saved_model_reloads_and_evaluate_recomputes_the_metrics(digits_run, capsys):
    run, metrics = digits_run
    again = evaluate_run(run)
    assert again["accuracy"] == metrics["accuracy"]
    assert again["confusion_matrix"] == metrics["confusion_matrix"]
    assert evaluate_main([str(run), "--on", "sample", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["accuracy"] == metrics["accuracy"]  # the sample is the whole digits test split


@pytest.mark.slow
def test_same_seed_same_weights(tmp_path):
    config = TrainConfig(dataset="digits", epochs=2, l2=0.01, seed=7)
    a = train_and_evaluate(config, tmp_path / "a")
    b = train_and_evaluate(config, tmp_path / "b")
    assert a["loss"] == b["loss"]
    wa = files.load_run_model(tmp_path / "a").get_layer("classifier").get_weights()[0]
    wb = files.load_run_model(tmp_path / "b").get_layer("classifier").get_weights()[0]
    np.testing.assert_array_equal(wa, wb)


def test_mirrored_strategy_on_two_logical_cpus(tmp_path, two_cpu_strategy):
    assert len(tf.config.list_logical_devices("CPU")) == 2
    strategy = two_cpu_strategy
    metrics = train_and_evaluate(SMALL, tmp_path / "m", strategy=strategy)
    config = json.loads((tmp_path / "m" / files.CONFIG).read_text())
    assert config["strategy"]["kind"] == "mirrored" and config["strategy"]["replicas"] == 2
    assert config["per_replica_batch_size"] == 64
    assert metrics["accuracy"] > 0.8


def test_binary_task_reports_balance_aware_metrics(tmp_path):
    from kerasreg.datasets import load_dataset
    from kerasreg.datasets.views import one_vs_rest

    eights = one_vs_rest(load_dataset("digits"), 8, name="eights")
    metrics = train_and_evaluate(SMALL, tmp_path / "b", datasets=eights)
    assert {"balanced_accuracy", "precision", "recall", "roc_auc", "majority_baseline_accuracy"} <= set(metrics)
    assert metrics["majority_baseline_accuracy"] == pytest.approx(1 - (eights.test_labels == 1).mean())
    assert metrics["roc_auc"] > 0.9 and metrics["balanced_accuracy"] > 0.8
    assert np.array(metrics["confusion_matrix"]).shape == (2, 2)


def test_val_split_zero_trains_on_everything_without_early_stopping(tmp_path, capsys):
    config = TrainConfig(dataset="digits", epochs=2, l2=0.01, val_split=0)
    train_and_evaluate(config, tmp_path / "v")
    assert "val-split 0: training on all training data; early stopping is off." in capsys.readouterr().out
    assert json.loads((tmp_path / "v" / files.CONFIG).read_text())["dataset"]["n_train"] == 1437
    assert files.read_history(tmp_path / "v" / files.HISTORY)[0]["val_loss"] is None


def test_cli_refuses_to_overwrite_a_finished_run(digits_run, capsys):
    run, _ = digits_run
    assert main(["--dataset", "digits", "--out", str(run)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"python -m kerasreg.train: error: {run} already holds a finished run; choose another --out or delete it."
    )


def test_cli_data_error_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["--dataset", "catvnoncat", "--data-dir", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("python -m kerasreg.train: error: catvnoncat: train_catvnoncat.h5, test_catvnoncat.h5")
    assert "\n" not in err
    assert not (tmp_path / "r").exists()  # nothing written for a run that could not start


def _run_cli(*args):
    return subprocess.run([sys.executable, "-m", "kerasreg.train", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_help_shows_every_option_with_its_default():
    result = _run_cli("--help")
    assert result.returncode == 0
    for flag in (
        "--dataset",
        "--source",
        "--data-dir",
        "--epochs",
        "--batch-size",
        "--learning-rate",
        "--optimizer",
        "--l2",
        "--seed",
        "--balance",
        "--val-split",
        "--patience",
        "--out",
        "--normalize",
    ):
        assert flag in result.stdout
    assert "(default: auto)" in result.stdout and "GLOBAL batch size" in result.stdout
    assert "examples:" in result.stdout


@pytest.mark.slow
def test_every_option_is_a_flag_in_help_and_a_row_of_the_reference():
    import dataclasses
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "docs" / "reference" / "cli.md").read_text()
    help_text = _run_cli("--help").stdout
    flags = ["--" + f.name.replace("_", "-") for f in dataclasses.fields(TrainConfig)] + [
        "--out",
        "--resume",
        "--restart",
    ]
    for flag in flags:
        assert flag in help_text, flag
        assert f"| `{flag}` |" in readme, f"the command-line reference has no row for {flag}"
    assert "--training-loop" not in help_text and "| `--training-loop` |" not in readme


def test_resume_with_nothing_to_resume_is_refused(tmp_path, capsys):
    assert main(["--dataset", "digits", "--out", str(tmp_path / "new"), "--resume"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"python -m kerasreg.train: error: {tmp_path / 'new'} holds no unfinished run to resume; "
        "run without --resume to start one."
    )


@pytest.mark.slow
def test_bad_flag_value_is_one_line_and_exit_2():
    result = _run_cli("--batch-size", "0")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "python -m kerasreg.train: error: Received batch_size=0. Expected auto, full or a positive integer."
    )


def test_evaluate_refuses_to_reload_data_given_in_python(tmp_path, capsys):
    import dataclasses

    from kerasreg.datasets import load_dataset

    run = tmp_path / "py"
    data = dataclasses.replace(load_dataset("digits"), source="python")
    train_and_evaluate(TrainConfig(dataset="digits", epochs=1, l2=0.01), run, datasets=data)
    assert evaluate_main([str(run)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"python -m kerasreg.evaluate: error: {run} was trained on data given in Python (python); "
        "evaluate it with --on sample."
    )


def test_converged_stops_after_five_epochs_without_progress_beyond_tol():
    from types import SimpleNamespace

    from kerasreg.training.callbacks import Converged

    callback = Converged(tol=1e-3, patience=5)
    callback.set_model(SimpleNamespace(stop_training=False))
    callback.on_train_begin()
    losses = [1.0, 0.5, 0.4, 0.3999, 0.39995, 0.3999, 0.39989, 0.39988, 0.2]
    stopped = None
    for epoch, loss in enumerate(losses):
        callback.on_epoch_end(epoch, {"loss": loss})
        if callback.model.stop_training:
            stopped = epoch
            break
    assert stopped == 7 and callback.converged_epoch == 8  # epochs 3-7: less than 0.1% better than 0.4


def test_the_worst_mistakes_are_the_most_confident_wrong_answers():
    from kerasreg.reports.figures import worst_mistakes

    labels = np.array([0, 1, 1, 0, 1])
    probabilities = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.3, 0.7], [0.6, 0.4]])
    # Wrong: image 1 (said 0 at 0.8), 3 (said 1 at 0.7), 4 (said 0 at 0.6); most confident first.
    assert worst_mistakes(labels, probabilities).tolist() == [1, 3, 4]
    assert worst_mistakes(labels, probabilities, n=2).tolist() == [1, 3]
    assert worst_mistakes(np.array([0]), np.array([[1.0, 0.0]])).tolist() == []


def test_write_atomic_syncs_the_file_and_its_folder(tmp_path, monkeypatch):
    import os

    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")) or real_fsync(fd))
    files.write_atomic(tmp_path / "a.json", b"{}")
    assert (tmp_path / "a.json").read_bytes() == b"{}"
    # The data before the rename (the temporary file), then the folder holding the new name.
    assert len(synced) == 2 and synced[0].startswith(str(tmp_path / ".a.json.")) and synced[1] == str(tmp_path)
