"""SIGTERM and SIGINT (and the drain signal) held back while a server starts, so a stop is never lost.

A signal mask is per thread, inherited by the threads a thread starts and by the
processes it forks. Held from the start of `serve http`, before numpy's and
onnxruntime's thread pools exist, a stop can only reach the main thread, and only
once the server's handlers are in place. The main process lets SIGTERM and SIGINT
through once its workers are forked (serve/server/engine.py); each worker lets them,
and the drain signal, through once its event loop handles them (serve/server/rsgi_adapter.py).
Left to the default action, a SIGTERM delivered to a pool thread during start-up
killed the process (exit -15). The main process never handles the drain signal, so
it stays held there: only workers receive it.
"""

from __future__ import annotations

import contextlib
import signal

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
DRAIN_SIGNAL = getattr(signal, "SIGUSR1", None)  # the main process tells its workers to drain (none on Windows)


def hold_stop_signals(hold: bool, drain: bool = False) -> None:
    """Block SIGTERM and SIGINT in this thread (they wait, pending) or let them through; no-op on Windows.

    `drain`: the drain signal too.
    """
    if not hasattr(signal, "pthread_sigmask"):
        return
    signals = STOP_SIGNALS | ({DRAIN_SIGNAL} if drain and DRAIN_SIGNAL is not None else set())
    signal.pthread_sigmask(signal.SIG_BLOCK if hold else signal.SIG_UNBLOCK, signals)


@contextlib.contextmanager
def holding_stop_signals():
    """SIGTERM and SIGINT held inside the block (processes forked in it start with them held), let through after."""
    hold_stop_signals(True)
    try:
        yield
    finally:
        hold_stop_signals(False)
