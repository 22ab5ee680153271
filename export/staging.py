"""Atomic export directories: build beside the target, rename into place when valid."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

from export.errors import ExportError


def check_target(out: Path, overwrite: bool) -> None:
    """Refuse an existing target unless `overwrite`, and a parent that cannot be written."""
    if out.exists() and not overwrite:
        raise ExportError(f"{out} already exists; pass --overwrite to replace it, or choose another --out.")
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} is a file; --out must name a directory.")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot create {parent} ({e.strerror}); choose a writable --out.") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(f"{parent} is not writable; choose a writable --out.")


OWNER = ".owner"  # in a stage: "host pid" of the export building it


def make_stage(out: Path) -> Path:
    """A fresh temporary directory beside `out`, on the same filesystem so a rename is atomic.

    Stages left by exports that were killed are removed first (see `remove_stale_stages`).
    """
    remove_stale_stages(out)
    try:
        stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
        (stage / OWNER).write_text(f"{socket.gethostname()} {os.getpid()}\n")
    except OSError as e:
        raise ExportError(f"cannot write in {out.parent} ({e.strerror}); choose a writable --out.") from None
    umask = os.umask(0)
    os.umask(umask)
    stage.chmod(0o777 & ~umask)  # mkdtemp's 0700 would follow the directory into place
    return stage


def remove_stale_stages(out: Path) -> list[Path]:
    """Remove `.NAME.partial-*` stages beside `out` whose export process is gone; the ones removed.

    A stage whose owner runs on this host and is alive is another export still
    running and is left alone, as is one from another host (shared storage), which
    this machine cannot check.
    """
    removed = []
    for stage in out.parent.glob(f".{out.name}.partial-*"):
        try:
            host, pid = (stage / OWNER).read_text().split()
        except (OSError, ValueError):
            host, pid = socket.gethostname(), "0"  # an unreadable or unowned stage: from a killed export
        if host != socket.gethostname() or _alive(int(pid)):
            continue
        shutil.rmtree(stage, ignore_errors=True)
        removed.append(stage)
    return removed


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def publish(stage: Path, out: Path) -> None:
    """Move the validated `stage` to `out`; an old `out` is renamed aside first, then removed."""
    (stage / OWNER).unlink(missing_ok=True)
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
        os.replace(out, old / out.name)
    os.replace(stage, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def discard(stage: Path) -> None:
    """Remove a stage that will not be published."""
    shutil.rmtree(stage, ignore_errors=True)
