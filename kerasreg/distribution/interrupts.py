"""Ctrl-C on a cluster worker, honoured at once: exit 130 with the line that says how to resume.

TensorFlow holds the GIL while the cluster forms (TF 2.21: `ensure_initialized`
blocks in C++ until every worker joins or --peer-timeout passes), so no Python
handler can run there, and a worker ignored Ctrl-C for as long. So a cluster worker
trains in a forked child, and the parent (which never loads TensorFlow) watches:

- Ctrl-C (SIGINT) reaches the child, whose own watcher thread prints the line and
  exits 130 wherever Python can run; where it cannot, the parent ends the child
  after `GRACE` seconds, prints the same line and exits 130.
- A child ended by SIGTERM or SIGKILL (a stop, or a kill, of the worker) ends the
  parent the same way. A child ended by any other signal crashed (SIGABRT from a C++
  exception, SIGSEGV, ...): the parent says so, naming the signal, and exits 1.
- Any other end of the child is the parent's own: its exit code.
- The child dies with the parent (Linux's PR_SET_PDEATHSIG): a SIGKILL of the
  worker's process is the whole worker's end, as a lost machine would be.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from shared.processes import die_with_parent

GRACE = 1.0  # seconds the child has to end itself after Ctrl-C


def supervise(line: str, crashed: str) -> int | None:
    """Fork: None in the child, which goes on to train; in the parent, the child's exit code once it ends.

    `line` is printed (once, by whichever process can) when Ctrl-C ends the run; `crashed`, with "{signal}" filled
    in, when the child dies of a signal that is neither an interruption nor a stop.
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
    return _wait(child, line, crashed)


def _wait(child: int, line: str, crashed: str) -> int:
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
    if code >= 0:
        return code
    if -code == signal.SIGINT:  # SIGINT's default: the child died of it before its watcher could speak
        print(line, file=sys.stderr, flush=True)
        return 130
    if -code in (signal.SIGTERM, signal.SIGKILL):  # the child's end is the worker's: a SIGKILL shows as one
        if -code == signal.SIGTERM:  # SIGKILL has no handler to reset
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        time.sleep(1)  # the signal ends this process; should it not (held), it is reported below
    print(crashed.format(signal=signal.Signals(-code).name), file=sys.stderr, flush=True)
    return 1


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
