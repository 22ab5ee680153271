"""Ctrl-C on a cluster worker, honoured at once: exit 130 with the line that says how to resume.

TensorFlow holds the GIL while the cluster forms (TF 2.21: `ensure_initialized`
blocks in C++ until every worker joins or --peer-timeout passes), so no Python
handler can run there, and a worker ignored Ctrl-C for as long. So a cluster worker
trains in a forked child, and the parent (which never loads TensorFlow) watches:

- Ctrl-C (SIGINT) reaches the child, whose own watcher thread prints the line and
  exits 130 wherever Python can run; where it cannot, the parent ends the child
  after `GRACE` seconds, prints the same line and exits 130.
- Any other end of the child is the parent's own: its exit code, or its signal.
- The child dies with the parent (Linux's PR_SET_PDEATHSIG): a SIGKILL of the
  worker's process is the whole worker's end, as a lost machine would be.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from contract.processes import die_with_parent

GRACE = 1.0  # seconds the child has to end itself after Ctrl-C


def supervise(line: str) -> int | None:
    """Fork: None in the child, which goes on to train; in the parent, the child's exit code once it ends.

    `line` is printed (once, by whichever process can) when Ctrl-C ends the run.
    Where there is no fork (Windows), None: this process trains, as before.
    """
    if not hasattr(os, "fork"):
        return None
    parent = os.getpid()
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:
        die_with_parent(parent, signal.SIGKILL, exit_code=1)
        _exit_on_interrupt(line)
        return None
    return _wait(child, line)


def _wait(child: int, line: str) -> int:
    interrupted: list[float] = []

    def forward(signum, frame):
        if signum == signal.SIGINT:
            interrupted.append(time.monotonic())
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    while True:
        pid, status = os.waitpid(child, os.WNOHANG)
        if pid:
            break
        if interrupted and time.monotonic() - interrupted[0] > GRACE:
            # Held in C++ where no handler runs. Its backups are safe: every commit is an atomic rename.
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)
            print(line, file=sys.stderr, flush=True)
            return 130
        time.sleep(0.05)
    code = os.waitstatus_to_exitcode(status)
    if code < 0 and -code != signal.SIGINT:
        if -code != signal.SIGKILL:  # SIGKILL has no handler to reset
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)  # the child's end is the worker's: a SIGKILL shows as one
    if code < 0:  # SIGINT's default: the child died of it before its watcher could speak
        print(line, file=sys.stderr, flush=True)
        return 130
    return code


def _exit_on_interrupt(line: str) -> None:
    """On SIGINT, print `line` and exit 130 from a thread: at once, without unwinding the training."""
    read, write = os.pipe()
    os.set_blocking(write, False)
    signal.set_wakeup_fd(write)
    signal.signal(signal.SIGINT, lambda signum, frame: None)  # the thread acts; the main thread goes on

    def watch() -> None:
        while True:
            if signal.SIGINT in os.read(read, 64):
                print(line, file=sys.stderr, flush=True)
                os._exit(130)

    threading.Thread(target=watch, name="kerasreg-interrupt", daemon=True).start()
