"""Running the HTTP app: uvicorn on uvloop and httptools, one process per worker on one socket.

    python -m serve http exports/mnist/model.onnx --workers 2

With N workers the parent binds the socket, forks N children that each load the
model and serve on that socket (the kernel spreads connections over them), and
passes SIGTERM/SIGINT on. Each worker is single-threaded for small requests, so
N workers use N cores.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from pathlib import Path

from serve.http_common import Limits

log = logging.getLogger("serve.http")


def _fast_loop_options() -> dict:
    """uvloop and httptools where installed (the `http` extra installs both), else asyncio and h11."""
    import importlib.util

    options = {}
    if importlib.util.find_spec("uvloop") is not None:
        options["loop"] = "uvloop"
    if importlib.util.find_spec("httptools") is not None:
        options["http"] = "httptools"
    return options


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (IPv6 when host has a colon)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _serve(sock: socket.socket, model_path: Path, name: str, limits: Limits, max_batch: int) -> None:
    import uvicorn

    from serve.dataplane import DataPlane
    from serve.http_app import build_app
    from serve.model import Model

    app = build_app(DataPlane({name: Model.load(model_path)}, max_batch), limits)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", **_fast_loop_options())
    uvicorn.Server(config).run(sockets=[sock])


def run(model_path: Path, name: str, host: str, port: int, limits: Limits, max_batch: int, workers: int = 1) -> int:
    """Serve until SIGTERM or Ctrl-C; the exit code."""
    try:
        sock = bind(host, port)
    except OSError as e:
        from serve.errors import ServeError

        raise ServeError(f"cannot listen on {host}:{port} ({e.strerror}); choose another --port.") from None
    if workers == 1:
        _serve(sock, model_path, name, limits, max_batch)
        return 0
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # a worker: load the model after the fork, never share a session across processes
            code = 0
            try:
                _serve(sock, model_path, name, limits, max_batch)
            except BaseException:  # noqa: BLE001 - a worker must never return into the parent's code
                log.exception("worker %d failed", os.getpid())
                code = 1
            finally:
                sys.stdout.flush()
                os._exit(code)
        children.append(pid)
    sock.close()

    def forward(signum, frame):
        for pid in children:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    failed = 0
    for pid in children:
        _, status = os.waitpid(pid, 0)
        failed += os.waitstatus_to_exitcode(status) not in (0, -signal.SIGINT, -signal.SIGTERM)
    return 1 if failed else 0
