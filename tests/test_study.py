"""`python -m kerasreg.study`: several settings, each a normal run, one overlaid picture, a table; it continues."""

import csv
import json

import pytest

from kerasreg.run_directory import files
from kerasreg.study import main

pytestmark = pytest.mark.slow  # trains several models

ARGS = ["--dataset", "digits", "--epochs", "3", "--batch-size", "128", "--backup-interval", "0"]


def test_with_no_validation_split_the_best_is_marked_by_the_training_loss_and_said_so(tmp_path, capsys):
    out = tmp_path / "course"
    argv = [*ARGS, "--val-split", "0", "--l2", "0", "--learning-rates", "0.03", "0.003", "--out", str(out)]
    assert main(argv) == 0
    rows = list(csv.DictReader((out / "results.csv").open()))
    [best] = [r for r in rows if r["best"] == "True"]  # before, none was: no validation loss to rank by
    assert float(best["final_train_loss"]) == min(float(r["final_train_loss"]) for r in rows)
    assert all(r["val_accuracy"] == "" for r in rows)
    assert (out / "results.md").read_text().endswith("best: training loss (no validation split)\n")
    assert f"best by training loss (no validation split): {best['setting']}" in capsys.readouterr().out


def test_a_learning_rate_study_end_to_end(tmp_path, capsys):
    out = tmp_path / "lr"
    assert main([*ARGS, "--learning-rates", "0.03", "0.003", "--out", str(out)]) == 0
    for name in ("learning_rate-0.03", "learning_rate-0.003"):
        assert json.loads((out / name / files.METRICS).read_text())["epochs_trained"] == 3
        assert json.loads((out / name / files.CONFIG).read_text())["options"]["learning_rate"] == float(
            name.split("-")[1]
        )
    assert (out / "loss_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["setting"] for r in rows] == ["learning_rate=0.03", "learning_rate=0.003"]
    best = [r for r in rows if r["best"] == "True"]
    assert len(best) == 1 and float(best[0]["best_val_loss"]) == min(float(r["best_val_loss"]) for r in rows)
    table = [line for line in (out / "results.md").read_text().splitlines() if line.startswith("|")]
    assert len(table) == 4 and sum(line.endswith("| best |") for line in table[2:]) == 1
    assert (out / "results.md").read_text().endswith("best: validation loss\n")
    assert f"best by validation loss: {best[0]['setting']}" in capsys.readouterr().out


def test_an_interrupted_study_keeps_finished_runs_and_resumes_the_other(tmp_path, capsys, monkeypatch):
    from kerasreg.training.compiled_epoch import CompiledEpoch

    out = tmp_path / "l2"
    argv = [*ARGS, "--l2-strengths", "0.001", "0.1", "--out", str(out)]
    run_epoch = CompiledEpoch.run_epoch
    calls = {"n": 0}

    def interrupt_in_the_second_run(self, seed, epoch):
        calls["n"] += 1
        if calls["n"] == 5:  # the second setting's second epoch
            raise KeyboardInterrupt
        return run_epoch(self, seed, epoch)

    monkeypatch.setattr(CompiledEpoch, "run_epoch", interrupt_in_the_second_run)
    assert main(argv) == 130
    assert "rerun the same command to continue the study" in capsys.readouterr().err
    finished = out / "l2-0.001" / files.METRICS
    stamp = finished.stat().st_mtime_ns
    assert not (out / "l2-0.1" / files.METRICS).exists()
    monkeypatch.setattr(CompiledEpoch, "run_epoch", run_epoch)
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "l2=0.001: finished earlier, kept" in printed
    assert "1 epochs done, continuing at epoch 2 of 3" in printed
    assert finished.stat().st_mtime_ns == stamp
    assert [r["epoch"] for r in files.read_history(out / "l2-0.1" / files.HISTORY)] == [0, 1, 2]


@pytest.mark.parametrize(
    "sweep, message",
    [
        (["--learning-rates", "0.01", "0.01"], "Received learning_rate values [0.01, 0.01]. Expected each value once."),
        (["--l2-strengths", "0.01", "-1"], "Received l2=-1.0. Expected auto, or a number >= 0 (0 turns L2 off)."),
        (
            ["--learning-rates", "0.01", "--l2", "auto"],
            "Received l2=auto: a study compares validation curves, and auto refits on the validation data. "
            "Give l2 a number, or sweep it with --l2-strengths.",
        ),
    ],
)
def test_bad_sweeps_are_one_line_and_exit_2(tmp_path, capsys, sweep, message):
    with pytest.raises(SystemExit) as e:
        main([*ARGS, *sweep, "--out", str(tmp_path / "s")])
    assert e.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"python -m kerasreg.study: error: {message}"
    assert not (tmp_path / "s").exists()


def test_a_study_trains_at_a_fixed_l2_by_default_and_says_why():
    from kerasreg.flags import config_from_args
    from kerasreg.study import DEFAULTS, PRESET_DEFAULTS, STUDY_L2, build_parser

    parser = build_parser()

    def config(*argv: str):
        return config_from_args(parser.parse_args(["--learning-rates", "0.01", "--out", "s", *argv]), DEFAULTS,
                                PRESET_DEFAULTS)  # fmt: skip

    assert config().l2 == STUDY_L2 and config().epochs == 100
    assert (config("--preset", "course").l2, config("--preset", "course").epochs) == (0.0, 1500)  # the notebook's
    assert config("--preset", "course", "--epochs", "20").epochs == 20
    assert "(default: 0.01: a study compares validation curves" in " ".join(parser.format_help().split())
