"""What ties a server's processes together: one server per port, and workers that die with their main process.

- A port is claimed before the workers start: a lock file per port (flock, released by
  the kernel however the server ends) refuses a second kerasreg server, and a bind
  without SO_REUSEPORT refuses a port anyone else listens on. granian's workers set
  SO_REUSEPORT, so without this a second server on the same port started without
  error and the kernel split the traffic between the two.
- Each worker asks the kernel for SIGTERM when its main process dies (Linux's
  PR_SET_PDEATHSIG, shared/processes.py): after a `kill -9` of the main process its workers stop too,
  instead of serving on, owned by init; and a thread of the worker looks for its main process four
  times a second, since that signal can be lost while the worker starts (`watch_parent`).
- The metrics folder of a server whose main process was killed is removed by the next
  server that starts (its name carries the main process's id).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

from serve.errors import ServeError

log = logging.getLogger("serve.http")
METRICS_PREFIX = "kerasreg-metrics-"


def claim_port(host: str, port: int, flag: str = "--port") -> IO | None:
    """Hold `port` for this server (keep the returned file open while serving); ServeError when it is taken,
    naming `flag`, the option that chose it.

    Port 0 (any free port) claims nothing.
    """
    if port == 0:
        return None
    lock = open(Path(tempfile.gettempdir()) / f"kerasreg-serve-port-{port}.lock", "a+")  # noqa: SIM115 - held open
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.seek(0)
        owner = lock.read().strip() or "another process"
        lock.close()
        raise ServeError(
            f"port {port} is already served by a kerasreg server ({owner}); stop it or choose another {flag}."
        ) from None
    _refuse_other_listeners(host, port, lock, flag)
    lock.seek(0)
    lock.truncate()
    lock.write(f"pid {os.getpid()}")
    lock.flush()
    return lock


def _refuse_other_listeners(host: str, port: int, lock: IO, flag: str) -> None:
    """A bind without SO_REUSEPORT fails where anyone listens on the port (with SO_REUSEPORT or not)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed connection's TIME_WAIT is no owner
        probe.bind((host, port))
    except OSError as e:
        lock.close()
        if e.errno == errno.EADDRINUSE:
            raise ServeError(
                f"cannot listen on {host}:{port}: another process serves it; choose another {flag}."
            ) from None
        raise ServeError(f"cannot listen on {host}:{port} ({e.strerror}); choose another {flag} or --host.") from None
    finally:
        probe.close()


PARENT_CHECK_SECONDS = 0.25  # how often a worker looks for its main process


def watch_parent(parent_pid: int, serving: threading.Event, grace: float) -> None:
    """End this worker once `parent_pid` is no longer its parent, from a thread of its own.

    The kernel's parent-death signal can be lost while a worker starts (a server killed
    0.22 s into its start left its workers serving, owned by init), and so can a SIGTERM
    then: granian's worker takes it only once it serves, and its event loop may not run.
    So: a worker not yet serving exits at once (nothing is in flight); one that serves
    sends itself SIGTERM, so what is in flight finishes, and exits outright `grace`
    seconds later should that be lost too.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_SECONDS)
        log.warning("the server's main process (%d) is gone; this worker stops", parent_pid)
        if serving.is_set():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(grace + 1)
        logging.shutdown()
        os._exit(0)

    threading.Thread(target=watch, name="kerasreg-parent-watch", daemon=True).start()


def give_back_freed_memory() -> None:
    """Return the C allocator's free pages to the system (glibc's malloc_trim; a no-op where there is none)."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: musl, macOS, Windows
        pass


def metrics_folder() -> str:
    """A new folder for the workers' metrics files, named after this main process; stale ones removed first."""
    root = Path(tempfile.gettempdir())
    for folder in root.glob(f"{METRICS_PREFIX}*"):
        pid = folder.name.removeprefix(METRICS_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"{METRICS_PREFIX}{os.getpid()}-")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
