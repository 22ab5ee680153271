"""Commands that never lose a run: one process per --out, divergence caught, a run directory that checks itself,
and an export's --overwrite that cannot leave nothing behind."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kerasreg.run_directory import files
from kerasreg.run_directory.lock import RunLock
from kerasreg.train import main

REPO = Path(__file__).resolve().parent.parent
QUICK = ["--dataset", "digits", "--epochs", "3", "--l2", "0.01", "--backup-interval", "0"]


def _error(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and "Traceback" not in "\n".join(lines)
    return lines[-1]


def test_a_second_run_into_a_locked_out_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    with RunLock(out):  # another run holds it
        assert main([*QUICK, "--out", str(out)]) == 2
        line = _error(capsys)
    expected = f"python -m kerasreg.train: error: {out} is in use by another kerasreg run (pid {os.getpid()} "
    assert line.startswith(expected)
    assert line.endswith("); wait for it to end, or choose another --out.")
    assert main([*QUICK, "--out", str(out)]) == 0  # once it is gone, the run goes ahead


@pytest.mark.slow
def test_the_lock_of_a_killed_process_is_taken_over(tmp_path, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from kerasreg.run_directory.lock import RunLock; RunLock({str(out)!r}).acquire(); "
            "print('locked', flush=True); import time; time.sleep(600)",
        ],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    assert main([*QUICK, "--out", str(out)]) == 2
    assert f"pid {holder.pid} " in _error(capsys)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert main([*QUICK, "--out", str(out)]) == 0  # the kernel dropped the dead process's lock
    assert (out / files.METRICS).is_file()


@pytest.mark.parametrize("flag, value", [("--learning-rate", "1e308"), ("--l2", "1e308")])
def test_divergence_stops_the_run_keeps_nothing_and_a_saner_rerun_starts_clean(tmp_path, capsys, flag, value):
    out = tmp_path / "run"
    options = ["--dataset", "digits", "--epochs", "3", "--backup-interval", "0", "--out", str(out)]
    if flag == "--learning-rate":
        options += ["--l2", "0.01"]
    assert main([*options, flag, value]) == 2
    line = _error(capsys)
    assert line.startswith("python -m kerasreg.train: error: training diverged in epoch 1 (")
    assert line.endswith(
        "is too large for this data; lower it and rerun (nothing of this run is kept, so the rerun starts clean)."
    )
    assert not (out / files.BACKUP).exists() and not (out / files.HISTORY).exists()
    saner = "0.01"
    assert main([*options, flag, saner]) == 0
    assert "resuming" not in capsys.readouterr().out
    assert json.loads((out / files.METRICS).read_text())["epochs_trained"] >= 1


def _interrupted(tmp_path, capsys) -> Path:
    """A digits run stopped after its second epoch's backup (Ctrl-C in the third), as a kill would leave it."""
    from kerasreg.training.compiled_epoch import CompiledEpoch

    out = tmp_path / "run"
    real = CompiledEpoch.run_epoch

    def stop_in_the_third(self, seed, epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        return real(self, seed, epoch)

    CompiledEpoch.run_epoch = stop_in_the_third
    try:
        assert main([*QUICK, "--epochs", "6", "--out", str(out)]) == 130
    finally:
        CompiledEpoch.run_epoch = real
    capsys.readouterr()
    assert json.loads((out / files.BACKUP / "latest.json").read_text())["epoch"] == 2
    return out


def test_a_run_that_lost_its_history_is_refused(tmp_path, capsys):
    out = _interrupted(tmp_path, capsys)
    (out / files.HISTORY).unlink()
    assert main([*QUICK, "--epochs", "6", "--out", str(out)]) == 2
    assert _error(capsys) == (
        f"python -m kerasreg.train: error: {out / files.HISTORY} holds 0 of the 2 epochs the backup holds: the run "
        "directory is damaged; pass --restart to discard it and start over."
    )
    assert main([*QUICK, "--epochs", "6", "--out", str(out), "--restart"]) == 0


def test_a_backup_without_its_config_is_not_resumed_with_other_options(tmp_path, capsys):
    out = _interrupted(tmp_path, capsys)
    (out / files.CONFIG).unlink()
    assert main(["--dataset", "digits", "--l2", "0.5", "--batch-size", "64", "--out", str(out)]) == 2
    assert _error(capsys) == (
        f"python -m kerasreg.train: error: {out} holds a backup but no config.json to check it against these options; "
        "pass --restart to discard it and start over."
    )


def test_an_intact_interrupted_run_resumes(tmp_path, capsys):
    out = _interrupted(tmp_path, capsys)
    assert main([*QUICK, "--epochs", "6", "--out", str(out)]) == 0
    assert "2 epochs done, continuing at epoch 3 of 6" in capsys.readouterr().out


def test_an_export_onto_a_full_disk_is_one_line_and_leaves_nothing(digits_export, tmp_path, capsys, monkeypatch):
    import tensorflow as tf

    import export.saved_model
    from export.cli import main as export_main

    def full(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "saved_model.pb; No space left on device")

    monkeypatch.setattr(export.saved_model, "write_saved_model", full)
    out = tmp_path / "out"
    assert export_main([str(digits_export.parent.parent / "run"), "--out", str(out)]) == 2
    assert _error(capsys) == (
        f"python -m export: error: no space left on the device of {tmp_path} while writing the export; free some and "
        "rerun (nothing was written)."
    )
    assert list(tmp_path.iterdir()) == []


def test_an_overwrite_killed_between_its_renames_is_put_right_by_the_next_export(digits_export, tmp_path, monkeypatch):
    import datetime as dt

    from export import card
    from export.exporter import export_run
    from export.staging import OWNER

    def exported_at() -> str:
        return json.loads((out / "model.json").read_text())["exported_at"]

    run = digits_export.parent.parent / "run"
    out = tmp_path / "out"
    monkeypatch.setattr(card, "utc_now", lambda: dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    export_run(run, out)
    first = (out / "model.json").read_bytes()
    # What a kill between the two renames of a fallback swap leaves: the old export aside, nothing at --out.
    aside = tmp_path / ".out.old-killed"
    aside.mkdir()
    (aside / OWNER).write_text(f"{socket.gethostname()} 999999999\n")  # a process that is gone
    os.replace(out, aside / "out")
    with pytest.raises(Exception, match="already exists; pass --overwrite"):
        export_run(run, out)  # the previous export is back, so this one is refused without --overwrite
    assert (out / "model.json").read_bytes() == first and not aside.exists()
    assert exported_at() == "2026-01-01T00:00:00+00:00"
    monkeypatch.setattr(card, "utc_now", lambda: dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc))
    export_run(run, out, overwrite=True)
    assert exported_at() == "2026-01-02T00:00:00+00:00"  # the new export is in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_the_overwrite_swaps_atomically_where_the_system_can(digits_export, tmp_path):
    from export.staging import exchange

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a")
    (b / "x").write_text("b")
    if not exchange(a, b):
        pytest.skip("no renameat2 RENAME_EXCHANGE here: the fallback (tested above) does the swap")
    assert ((a / "x").read_text(), (b / "x").read_text()) == ("b", "a")
    shutil.rmtree(a)
