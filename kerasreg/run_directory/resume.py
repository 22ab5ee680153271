"""Starting, resuming or refusing a run directory: it must check itself before a rerun continues it.

A rerun into an unfinished run resumes it, but only when config.json, history.csv
and the backup agree with each other and with the options given: a backup with no
config.json to hold it to (an earlier rerun with other options would have been
mixed into it silently), a history that lost epochs the backup holds, options that
differ, are each one line and exit 2, and `--restart` starts over. Damaged backups
are refused where they are read (kerasreg/training/backup.py, kerasreg/l2_search/path.py), in
the same words.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from kerasreg.errors import RESTART, RunDirError
from kerasreg.run_directory import files

if TYPE_CHECKING:
    from kerasreg.config import TrainConfig


def prepare_run_dir(run_dir: Path, config: TrainConfig, resume: str = "auto") -> None:
    """Refuse a finished run or a mismatched unfinished one; `resume` "restart" discards, "required" insists."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"--out {run_dir} is a file; expected a directory.")
    if (run_dir / files.METRICS).exists():
        raise RunDirError(f"{run_dir} already holds a finished run; choose another --out or delete it.")
    backup = run_dir / files.BACKUP
    if resume == "restart":
        shutil.rmtree(backup, ignore_errors=True)
        (run_dir / files.HISTORY).unlink(missing_ok=True)
        return
    if backup.exists() and not (run_dir / files.CONFIG).exists():
        raise RunDirError(f"{run_dir} holds a backup but no config.json to check it against these options; {RESTART}.")
    unfinished = backup.exists()
    if resume == "required" and not unfinished:
        raise RunDirError(f"{run_dir} holds no unfinished run to resume; run without --resume to start one.")
    if unfinished:
        recorded = recorded_options(run_dir)
        differences = config.resume_differences(recorded)
        if differences:
            raise RunDirError(
                f"{run_dir} holds an unfinished run with other {', '.join(differences)}; rerun with its options "
                f"to resume it, or {RESTART}."
            )


def recorded_options(run_dir: Path) -> dict:
    """config.json's "options", or RunDirError saying the file is damaged."""
    try:
        options = files.read_json(run_dir / files.CONFIG).get("options")
    except RunDirError as e:
        raise RunDirError(f"{e} {RESTART[0].upper()}{RESTART[1:]}.") from None
    if not isinstance(options, dict) or "dataset" not in options:
        raise RunDirError(f"{run_dir / files.CONFIG}: holds no training options; {RESTART}.")
    return options


def resumed_history(run_dir: Path, epochs_backed_up: int) -> list[dict]:
    """The rows of history.csv a resumed run keeps: one per epoch the backup holds (later ones are trained again).

    Raises RunDirError when history.csv lacks an epoch the backup holds: the run directory is damaged.
    """
    rows = files.read_history(run_dir / files.HISTORY)
    logged = {row["epoch"] for row in rows}
    if not set(range(epochs_backed_up)) <= logged:
        raise RunDirError(
            f"{run_dir / files.HISTORY} holds {len(logged & set(range(epochs_backed_up)))} of the {epochs_backed_up} "
            f"epochs the backup holds: the run directory is damaged; {RESTART}."
        )
    return [row for row in rows if row["epoch"] < epochs_backed_up]


def worker_dir(run_dir: Path, worker_index: int) -> Path:
    """Where a non-chief worker keeps its history and backup: beside --out, as `<out>.worker<N>`; removed when the
    run ends.

    Beside the run directory, not in /tmp: a container or pod that restarts comes back with a fresh /tmp but the
    same volume, and must find its backup there, or the whole cluster starts over. Beside it, not in it: workers
    that share one volume (a TFJob's) each have a folder of their own, and the chief's run directory holds only
    its run.
    """
    run_dir = run_dir.resolve()
    return run_dir.parent / f"{run_dir.name}.worker{worker_index}"


def discard_state(run_dir: Path) -> None:
    """Remove what a rerun would resume from (the backup, history.csv): a diverged run keeps nothing to resume."""
    shutil.rmtree(run_dir / files.BACKUP, ignore_errors=True)
    (run_dir / files.HISTORY).unlink(missing_ok=True)
