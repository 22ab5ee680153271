"""A child process that ends with its parent: serve's workers, and the child a cluster worker trains in.

Standard library only: serve and kerasreg both import it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int, signum: int = signal.SIGTERM, exit_code: int = 0) -> None:
    """Ask the kernel for `signum` when the parent dies (Linux; a no-op elsewhere); exit with `exit_code` now
    if it is already gone."""
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
    if os.getppid() != parent_pid:  # it died before the request took effect
        os._exit(exit_code)
