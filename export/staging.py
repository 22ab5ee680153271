"""Atomic export directories: build beside the target, rename into place when valid."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

from export.errors import ExportError


def check_target(out: Path, overwrite: bool) -> None:
    """Refuse an existing target unless `overwrite`, and a parent that cannot be written.

    First, an earlier --overwrite killed in the middle of its swap is put right (`recover_swap`).
    """
    if out.parent.is_dir():
        recover_swap(out)
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
        if _dead(stage):
            shutil.rmtree(stage, ignore_errors=True)
            removed.append(stage)
    return removed


def _dead(folder: Path) -> bool:
    """Whether the process that owns `folder` (its .owner file) is gone; unowned counts as gone, another host's not."""
    try:
        host, pid = (folder / OWNER).read_text().split()
        pid = int(pid)
    except (OSError, ValueError):
        return True  # an unreadable or unowned folder: from a killed export (or the old export after an exchange)
    return host == socket.gethostname() and not _alive(pid)


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
    """Move the validated `stage` to `out`; an existing `out` is swapped out, then removed.

    On Linux the swap is one atomic rename (renameat2's RENAME_EXCHANGE): `out` is
    the old export, then the new one, never missing. Elsewhere, or on a filesystem
    without it, the old `out` is renamed aside first (into a folder that names this
    process), then the stage into place; a kill between the two is put right by the
    next export (`recover_swap`), which restores the old export.
    """
    (stage / OWNER).unlink(missing_ok=True)
    if out.exists() and exchange(stage, out):
        shutil.rmtree(stage, ignore_errors=True)  # the stage's path now holds the old export
        return
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
        (old / OWNER).write_text(f"{socket.gethostname()} {os.getpid()}\n")
        os.replace(out, old / out.name)
    os.replace(stage, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def recover_swap(out: Path) -> list[str]:
    """Put right what an --overwrite killed mid-swap left: restore the old export if `out` is missing, else drop it.

    Leftovers of a swap still under way (its process alive on this host) are left alone. Returns what was done.
    """
    done = []
    for old in sorted(out.parent.glob(f".{out.name}.old-*")):
        if not _dead(old):
            continue
        previous = old / out.name
        if previous.exists() and not out.exists():
            os.replace(previous, out)
            done.append(f"restored {out} from an export interrupted while replacing it")
        shutil.rmtree(old, ignore_errors=True)
        done.append(f"removed {old}")
    return done


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux's renameat2 with RENAME_EXCHANGE); False where that is not there."""
    if sys.platform != "linux":
        return False
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:  # a C library older than glibc 2.28
        return False
    at_cwd, rename_exchange = -100, 2
    if renameat2(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # a filesystem or kernel without it
        return False
    raise OSError(code, os.strerror(code), str(b))


def discard(stage: Path) -> None:
    """Remove a stage that will not be published."""
    shutil.rmtree(stage, ignore_errors=True)
