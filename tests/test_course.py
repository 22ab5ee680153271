"""--preset course: the deep-learning course's week-2 notebook, reproduced to the digit on its own files; and the
preset's rules (explicit flags win, the cost lines, chunks that resume exactly)."""

import argparse
import subprocess
import sys

import numpy as np
import pytest

from kerasreg.config import PRESETS, TrainConfig
from kerasreg.flags import add_config_flags, config_from_args
from kerasreg.training.progress import EpochProgress

# The notebook's figures, as ../shared/data/README.md gives them (numpy float64, measured there).
NOTEBOOK_COSTS = {0: 0.693147, 100: 0.584508, 1900: 0.140872}
NOTEBOOK_TRAIN, NOTEBOOK_TEST = 207 / 209, 35 / 50


def notebook_costs(directory) -> np.ndarray:
    """The notebook's own loop in numpy float64: the cost before each of its 2,000 updates."""
    import h5py

    with h5py.File(directory / "train_catvnoncat.h5") as f:
        x, y = np.array(f["train_set_x"]), np.array(f["train_set_y"])
    x = x.reshape(len(x), -1).T / 255.0
    y = y.reshape(1, -1)
    w, b, m = np.zeros((x.shape[0], 1)), 0.0, x.shape[1]
    costs = []
    for _ in range(2000):
        a = 1 / (1 + np.exp(-(w.T @ x + b)))
        costs.append(-np.mean(y * np.log(a) + (1 - y) * np.log(1 - a)))
        w -= 0.005 * (x @ (a - y).T) / m
        b -= 0.005 * np.mean(a - y)
    return np.array(costs)


@pytest.mark.slow
@pytest.mark.realdata
def test_the_course_preset_gives_back_the_notebooks_numbers(real_data, tmp_path):
    data_dir = real_data / "catvnoncat"
    out = tmp_path / "course"
    command = [sys.executable, "-m", "kerasreg.train", "--preset", "course", "--dataset", "catvnoncat"]
    done = subprocess.run(
        [*command, "--data-dir", str(data_dir), "--out", str(out)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    printed = {
        int(line.split()[3][:-1]): float(line.split()[4]) for line in lines if line.startswith("Cost after iteration ")
    }
    assert sorted(printed) == list(range(0, 2000, 100))  # the notebook's 20 lines
    assert len(lines) < 35  # and little else: no line per iteration
    reference = notebook_costs(data_dir)
    for iteration, cost in printed.items():
        assert cost == pytest.approx(reference[iteration], abs=1e-4), iteration
    for iteration, cost in NOTEBOOK_COSTS.items():
        # Printed with 6 decimals, as the notebook: float32 sums in another order (another CPU's kernels) may move
        # the last digit by one (0.140871 on an AVX-512 host for the notebook's 0.140872).
        assert printed[iteration] == pytest.approx(cost, abs=2.5e-6)
    from kerasreg.run_directory import files

    history = files.read_history(out / files.HISTORY)
    assert len(history) == 2000  # every iteration's cost: row i holds the cost after i + 1 updates
    for iteration in range(100, 2000, 100):
        assert history[iteration - 1]["loss"] == pytest.approx(reference[iteration], abs=1e-4)
    metrics = files.read_json(out / files.METRICS)
    assert metrics["train_accuracy"] == NOTEBOOK_TRAIN and metrics["accuracy"] == NOTEBOOK_TEST
    assert metrics["timings"]["descent"] == "gram" and metrics["stop_reason"] == "epoch_cap"
    recorded = files.read_json(out / files.CONFIG)["options"]
    assert {k: recorded[k] for k in PRESETS["course"]} == PRESETS["course"]


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    return parser.parse_args(argv)


def test_a_flag_given_overrides_the_preset_and_the_rest_is_the_preset():
    config = config_from_args(_parse(["--preset", "course", "--learning-rate", "0.01", "--epochs", "1500"]))
    assert (config.learning_rate, config.epochs) == (0.01, 1500)
    assert (config.normalize, config.init, config.batch_size, config.l2, config.val_split) == (
        "none",
        "zeros",
        "full",
        0.0,
        0.0,
    )
    assert (config.lr_schedule, config.tol, config.print_cost_every) == ("none", 0.0, 100)
    # A command's own default sits beneath the preset; its default for the preset above it.
    study = config_from_args(_parse(["--preset", "course"]), {"l2": 0.01}, {"course": {"epochs": 1500}})
    assert (study.l2, study.epochs) == (0.0, 1500)
    assert config_from_args(_parse([]), {"l2": 0.01}).l2 == 0.01
    assert TrainConfig.resolve(preset="course", l2=0.1).l2 == 0.1  # Python's way: the same order


def test_without_a_preset_the_defaults_are_kerasregs():
    config = config_from_args(_parse([]))
    assert (config.preset, config.normalize, config.init, config.lr_schedule) == (
        None,
        "per-pixel",
        "glorot",
        "plateau",
    )


def test_the_cost_lines_are_the_notebooks(capsys):
    progress = EpochProgress(2000, 0, print_cost_every=100)
    progress.start({"loss": 0.6931471805599453, "accuracy": 0.5})
    for epoch in range(2000):
        progress.update(epoch, {"loss": 1.0 / (epoch + 2), "accuracy": 0.5})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Cost after iteration 0: 0.693147"
    assert lines[1] == f"Cost after iteration 100: {1 / 101:f}"  # the cost after 100 updates: epoch 99's
    assert len(lines) == 20 and lines[-1].startswith("Cost after iteration 1900: ")
    resumed = EpochProgress(2000, 500, print_cost_every=100)
    resumed.start({"loss": 0.3, "accuracy": 0.5})  # a resumed run printed iteration 0 before
    assert capsys.readouterr().out == ""


def test_in_a_notebook_progress_is_one_bar_updating_in_place(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ipykernel", sys)  # what in_notebook() looks for
    progress = EpochProgress(2000, 0)
    assert progress.bar is not None
    for epoch in range(2000):
        progress.update(epoch, {"loss": 0.5, "accuracy": 0.5})
    out = capsys.readouterr().out
    assert out.count("\n") <= 3 and "\r" in out  # one line rewritten, not 2,000


def _course_run(tmp_path, name, epochs, interrupt_at_call=None):
    """A course-preset run on small arrays (Gram's case), optionally interrupted at a compiled call."""
    from kerasreg.datasets.arrays import from_arrays
    from kerasreg.pipeline import train_and_evaluate
    from kerasreg.training.compiled_epoch import CompiledEpoch

    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (120, 8, 8, 3), dtype=np.uint8)
    labels = (images[..., 0].mean(axis=(1, 2)) > 127).astype(np.int64)
    data = from_arrays(images[:100], labels[:100], images[100:], labels[100:], ["dark", "light"])
    config = TrainConfig.resolve(preset="course", dataset="arrays", epochs=epochs, backup_interval=0.0)
    real, calls = CompiledEpoch.run_epochs, []

    def counted(self, seed, first, count):
        calls.append((first, count))
        if len(calls) == interrupt_at_call:
            raise KeyboardInterrupt
        return real(self, seed, first, count)

    CompiledEpoch.run_epochs = counted
    try:
        return train_and_evaluate(config, tmp_path / name, datasets=data), calls
    finally:
        CompiledEpoch.run_epochs = real


def test_a_chunked_run_resumes_exactly_where_it_was_cut(tmp_path):
    from kerasreg.run_directory import files

    whole, calls = _course_run(tmp_path, "whole", 1200)
    assert calls == [(0, 512), (512, 512), (1024, 176)] and whole["timings"]["descent"] == "gram"
    with pytest.raises(KeyboardInterrupt):
        _course_run(tmp_path, "cut", 1200, interrupt_at_call=2)
    resumed, calls = _course_run(tmp_path, "cut", 1200)
    assert calls == [(512, 512), (1024, 176)]  # from the backup after the first chunk, cut where the whole run was
    for a, b in zip(*(files.load_run_model(tmp_path / name).get_weights() for name in ("whole", "cut")), strict=True):
        np.testing.assert_array_equal(a, b)
    assert resumed["accuracy"] == whole["accuracy"]
    whole_history = files.read_history(tmp_path / "whole" / files.HISTORY)
    assert files.read_history(tmp_path / "cut" / files.HISTORY) == whole_history
