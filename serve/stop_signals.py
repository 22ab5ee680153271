"""SIGTERM and SIGINT held back while a server starts, so a stop during start-up is never lost.

A signal mask is per thread and inherited by the threads a thread starts: held from
the start of `serve http`, before numpy's and onnxruntime's thread pools exist, a
stop can only reach the main thread, and only once the server's handlers are in
place (serve/http_server.py lets them through then). Left to the default action, a
SIGTERM delivered to a pool thread during start-up killed the process (exit -15).
"""

from __future__ import annotations

import signal

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def hold_stop_signals(hold: bool) -> None:
    """Block SIGTERM and SIGINT in this thread (they wait, pending) or let them through; no-op on Windows."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK if hold else signal.SIG_UNBLOCK, STOP_SIGNALS)
