"""The corruption sweep: every file of an interrupted run's backup and of an interrupted search's checkpoint,
damaged in several ways (64 cases in all), then the same command again. Each case has its expected outcome:
exit 2 with one line that says --restart starts over, or a clean run, which must end with the very weights of
an uninterrupted run (resumed from what was intact, or started afresh where nothing was committed), so a
damaged backup that is silently trained on fails. Never a traceback, never exit 1."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from kerasreg.run_directory import files
from kerasreg.train import main

pytestmark = pytest.mark.slow  # ~60 runs of the train command

EPOCHS_RUN = ["--dataset", "digits", "--l2", "0.01", "--epochs", "6", "--backup-interval", "0"]
# --l2 auto, the default, on the validation split (digits' 1,437 images would take the k-fold search).
SEARCH_RUN = ["--dataset", "digits", "--epochs", "2", "--backup-interval", "0", "--l2-folds", "1"]


def _interrupt(argv: list[str], out: Path, at_epoch: int) -> None:
    """Run the command and stop it (Ctrl-C) as the epoch numbered `at_epoch` (in shuffle order) begins."""
    from kerasreg.training.compiled_epoch import CompiledEpoch

    real = CompiledEpoch.run_epoch

    def stop(self, seed, epoch):
        if epoch == at_epoch:
            raise KeyboardInterrupt
        return real(self, seed, epoch)

    CompiledEpoch.run_epoch = stop
    try:
        assert main([*argv, "--out", str(out)]) == 130
    finally:
        CompiledEpoch.run_epoch = real


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pristine")
    _interrupt(EPOCHS_RUN, root / "epochs", at_epoch=3)
    assert json.loads((root / "epochs" / files.BACKUP / "latest.json").read_text())["epoch"] == 3
    _interrupt(SEARCH_RUN, root / "search", at_epoch=5)  # two points of two epochs each, then a third
    assert (root / "search" / files.BACKUP / "l2_search" / "path.json").is_file()
    return {"epochs": root / "epochs", "search": root / "search"}


def _bytes_damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "garbled":
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 32]) + data[middle + 32 :])
    elif how == "garbage":
        path.write_bytes(b"not a kerasreg file\n")
    elif how == "deleted":
        path.unlink()


def _json_damage(path: Path, key: str, how: str) -> None:
    record = json.loads(path.read_text())
    if how == "without":
        del record[key]
    else:
        record[key] = "x" if not isinstance(record[key], str) else 7
    path.write_text(json.dumps(record))


def _npz_damage(path: Path, how: str) -> None:
    with np.load(path) as stored:
        arrays = {k: stored[k] for k in stored.files}
    if how == "without v0":
        del arrays["v0"]
    elif how == "v0 of another shape":
        arrays["v0"] = np.zeros((3, 3), np.float32)
    elif how == "v0 not finite":
        arrays["v0"] = np.full_like(arrays["v0"], np.nan)
    elif how == "without start_kernel":
        del arrays["start_kernel"]
    np.savez(path, **arrays)


BYTES = ("empty", "truncated", "garbled", "garbage", "deleted")


def cases() -> list[tuple[str, str, str, str]]:
    """(run, file relative to the run, kind of damage, how) for every case of the sweep."""
    found = []
    npz_ways = ("without v0", "v0 of another shape", "v0 not finite")
    for run, saved, record_keys, extra_ways in (
        ("epochs", "backup/epoch-00003.npz", ("epoch", "weights", "finished", "variables", "callbacks"), ()),
        (
            "search",
            "backup/l2_search/point-02.npz",
            ("grid", "weights", "points", "epoch", "best"),
            ("without start_kernel",),
        ),
    ):
        record = "backup/latest.json" if run == "epochs" else "backup/l2_search/path.json"
        for target in (record, saved, "config.json") + (("history.csv",) if run == "epochs" else ()):
            found += [(run, target, "bytes", how) for how in BYTES]
        for key in record_keys:
            found += [(run, record, "json", f"without {key}"), (run, record, "json", f"{key} of another kind")]
        found += [(run, saved, "npz", how) for how in (*npz_ways, *extra_ways)]
        found += [(run, "config.json", "json", "without options")]
    return found


CASES = cases()


# The cases that run clean: the record that commits a backup (or a search checkpoint) is gone, so nothing was
# committed and the rerun starts afresh. Every other case is refused in one line.
CLEAN = {"epochs:backup/latest.json:deleted", "search:backup/l2_search/path.json:deleted"}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict[str, list[np.ndarray]]:
    """The weights of each command run without interruption: what a clean rerun must end with."""
    root = tmp_path_factory.mktemp("whole")
    weights = {}
    for run, argv in (("epochs", EPOCHS_RUN), ("search", SEARCH_RUN)):
        assert main([*argv, "--out", str(root / run)]) == 0
        weights[run] = files.load_run_model(root / run).get_weights()
    return weights


@pytest.mark.parametrize("run, target, kind, how", CASES, ids=[f"{r}:{t}:{h}" for r, t, _, h in CASES])
def test_a_damaged_run_is_refused_in_one_line_or_runs_cleanly(
    interrupted, uninterrupted, tmp_path, capsys, run, target, kind, how
):
    out = tmp_path / run
    shutil.copytree(interrupted[run], out)
    path = out / target
    if kind == "bytes":
        _bytes_damage(path, how)
    elif how.startswith("without ") and kind == "json":
        _json_damage(path, how.removeprefix("without "), "without")
    elif kind == "json":
        _json_damage(path, how.split(" of ")[0], "retyped")
    else:
        _npz_damage(path, how)
    capsys.readouterr()
    code = main([*(EPOCHS_RUN if run == "epochs" else SEARCH_RUN), "--out", str(out)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    if f"{run}:{target}:{how}" in CLEAN:
        assert code == 0 and (out / files.METRICS).is_file(), captured.err
        for ran, whole in zip(files.load_run_model(out).get_weights(), uninterrupted[run], strict=True):
            np.testing.assert_array_equal(ran, whole)  # not trained on damaged values
    else:
        lines = captured.err.strip().splitlines()
        assert code == 2 and len(lines) == 1, captured.err
        assert lines[0].startswith("python -m kerasreg.train: error: ") and "--restart" in lines[0], lines[0]
