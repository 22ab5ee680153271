"""`python -m serve http`: the app served by granian, a maintained HTTP server (Rust, hyper), through RSGI.

    python -m serve http exports/mnist/model.onnx [--workers 2]
    python -m serve http models/ --ssl-certificate cert.pem --ssl-keyfile key.pem

granian brings what an HTTP server has learned over years: HTTP/1.1 framing,
keep-alive and pipelining with write backpressure, header size limits (431) and a
header read timeout, TLS with HTTP/2 (ALPN), worker processes on one port, a
respawn of a worker that dies. serve/server/rsgi_adapter.py joins it to the app. This module
configures it, and adds to its process manager (one subclass, `_Server`):

- SIGTERM, SIGINT and the drain signal are held from the start of the command until
  each process's handlers are in place (serve/server/stop_signals.py), so a stop during
  start-up is never lost or fatal;
- SIGTERM drains first: for --drain-seconds every worker answers not ready and says
  `Connection: close` on every answer, then granian stops accepting, finishes what
  is in flight and exits 0 (SIGINT, or a second SIGTERM, skips the drain);
- a port that cannot be bound is one line, not a Rust backtrace.

With TLS the server offers HTTP/2 and HTTP/1.1; without, HTTP/1.1 only: granian's
protocol detection for cleartext HTTP/2 has no timer, so a client that connects and
sends nothing would hold its connection forever (measured), while HTTP/1.1's header
read timeout closes it.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

from serve.errors import ServeError
from serve.limits import HTTP_PORT, ServerLimits
from serve.server.processes import metrics_folder
from serve.server.prometheus import MULTIPROCESS_ENV
from serve.server.rsgi_adapter import AdapterOptions, build_rsgi_app
from serve.server.stop_signals import DRAIN_SIGNAL, holding_stop_signals

log = logging.getLogger("serve.http")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass(frozen=True)
class ServerOptions:
    """Where and how to serve: address, processes, TLS, the engine's limits."""

    host: str = "127.0.0.1"
    port: int = HTTP_PORT
    workers: int = 1
    ssl_certificate: Path | None = None
    ssl_keyfile: Path | None = None
    limits: ServerLimits = ServerLimits()


def logging_config() -> dict:
    """One format, on stderr, for granian's logs, the access log and serve's own (every process applies it)."""
    handler = {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}
    logger = {"handlers": ["stderr"], "level": "INFO", "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": LOG_FORMAT}},
        "handlers": {"stderr": handler},
        "loggers": {"_granian": logger, "granian.access": logger, "serve": logger},
    }


def run(adapter: AdapterOptions, options: ServerOptions) -> int:
    """Serve until SIGTERM or Ctrl-C; the exit code (0 after a graceful stop).

    Call with SIGTERM and SIGINT held (serve/server/stop_signals.py); every process lets them through once it handles
    them.
    """
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.http import HTTP1Settings, HTTP2Settings

    limits = options.limits
    tls = options.ssl_certificate is not None
    header_timeout = int(limits.request_timeout * 1000)
    buffer = HTTP1Settings().max_buffer_size  # granian's default: URL and headers over 408 KiB get 431
    # Several workers share their metrics through files (prometheus-client's multiprocess mode, ~5 us a
    # request); one worker keeps them in memory (~2 us).
    metrics_dir = metrics_folder() if options.workers > 1 else None
    if metrics_dir is not None:
        os.environ[MULTIPROCESS_ENV] = metrics_dir  # before any worker imports prometheus_client
    try:
        server = _Server(
            target="kerasreg",
            address=options.host,
            port=options.port,
            interface=Interfaces.RSGI,
            workers=options.workers,
            loop=Loops.auto,  # uvloop where it is installed
            http=HTTPModes.auto if tls else HTTPModes.http1,
            websockets=False,
            backpressure=limits.max_connections,
            http1_settings=HTTP1Settings(header_read_timeout=header_timeout, max_buffer_size=buffer),
            http2_settings=HTTP2Settings(max_headers_size=buffer),
            log_dictconfig=logging_config(),
            ssl_cert=options.ssl_certificate,
            ssl_key=options.ssl_keyfile,
            ssl_protocol_min="tls1.2",  # TLS 1.3 only would turn away older clients for no gain here
            respawn_failed_workers=True,
            workers_kill_timeout=max(1, round(limits.shutdown_grace)),
            drain_seconds=limits.drain_seconds,
        )
        server.serve(target_loader=functools.partial(build_rsgi_app, adapter), wrap_loader=False)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
            os.environ.pop(MULTIPROCESS_ENV, None)
    return 0


def _mp_server():
    from granian.server.mp import MPServer

    return MPServer


class _Server(_mp_server()):
    """granian's process manager with kerasreg's start-up and stop; see the module docstring."""

    def __init__(self, *args, drain_seconds: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.drain_seconds = drain_seconds
        self._draining = False

    def _init_shared_socket(self):
        try:
            super()._init_shared_socket()
        except RuntimeError as e:  # the bind failed: granian's message, then a Rust backtrace
            reason = str(e).splitlines()[0].split(" (os error")[0]
            raise ServeError(
                f"cannot listen on {self.bind_addr}:{self.bind_port} ({reason}); choose another --port or --host."
            ) from None

    def _spawn_workers(self, spawn_target, target_loader):
        # Each worker starts with the stop signals held; it lets them through once its handlers are in place.
        with holding_stop_signals():
            super()._spawn_workers(spawn_target, target_loader)

    def _respawn_workers(self, workers, spawn_target, target_loader, delay: float = 0):
        from serve.server.prometheus import process_ended

        for index in workers:
            process_ended(self.wrks[index]._id())
        with holding_stop_signals():
            super()._respawn_workers(workers, spawn_target, target_loader, delay)

    def signal_handler_interrupt(self, signum=None, frame=None):
        """SIGTERM: drain for drain_seconds, then stop; SIGINT or a second SIGTERM: stop now."""
        if signum == signal.SIGTERM and self.drain_seconds > 0 and not self._draining:
            self._draining = True
            log.info("SIGTERM: draining for %g s, then stopping", self.drain_seconds)
            for worker in self.wrks if DRAIN_SIGNAL is not None else ():
                try:
                    os.kill(worker._id(), DRAIN_SIGNAL)
                except ProcessLookupError:
                    pass
            timer = threading.Timer(self.drain_seconds, super().signal_handler_interrupt)
            timer.daemon = True
            timer.start()
            return
        super().signal_handler_interrupt()
