"""One process per run directory: an exclusive lock on RUN_DIR/.lock for as long as the process trains into it.

A second `python -m kerasreg.train --out RUN_DIR` while the first runs is refused
(two seeds into one --out would overwrite each other; the same command twice would
"resume" a live run and both would train). The lock is the operating system's
(flock, or msvcrt's on Windows): it goes with the process, so one left by a killed
process is no lock at all and the next run takes it. On a network filesystem flock
works where the server supports it (NFSv4 does); where it does not, the run is
refused with the reason rather than trained unprotected.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from pathlib import Path

from kerasreg.errors import RunDirError

LOCK = ".lock"  # in the run directory; it stays after the run (removing a lock file races with its next user)


class RunLock:
    """The lock of one run directory; `with RunLock(run_dir):` holds it for the block."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK
        self._fd: int | None = None
        self._made_folder = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock, or raise RunDirError saying who holds it or why it cannot be had."""
        self._made_folder = not self.path.parent.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)  # an OSError here is the caller's one line
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock(fd)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunDirError(
                f"{self.path.parent} is in use by another kerasreg run ({holder}); wait for it to end, or choose "
                "another --out."
            ) from None
        except OSError as e:
            os.close(fd)
            raise RunDirError(
                f"{self.path.parent}: cannot lock it ({e.strerror}): this filesystem does not support file locks, "
                "so a second run could not be kept out; choose an --out on a local disk."
            ) from None
        holder = f"pid {os.getpid()} on {socket.gethostname()}, since {dt.datetime.now().isoformat(timespec='seconds')}"
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode() + b"\n", 0)
        self._fd = fd

    def release(self) -> None:
        """Let the lock go (closing the file releases it); a folder made only to hold it goes too.

        So a run that could not start (bad data, a bad option) leaves nothing behind.
        """
        if self._fd is None:
            return
        folder = self.path.parent
        try:
            if self._made_folder and [p.name for p in folder.iterdir()] == [LOCK]:
                self.path.unlink(missing_ok=True)
                folder.rmdir()
        except OSError:
            pass  # already gone (a worker's folder is removed when its run ends), or not ours to tidy
        os.close(self._fd)
        self._fd = None


def _lock(fd: int) -> None:
    """An exclusive, non-blocking lock on `fd`: BlockingIOError when another process holds it."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            raise BlockingIOError from None
        return
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
