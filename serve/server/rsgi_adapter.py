"""The one module that joins the engine (granian, through RSGI) to the transport-free app. One per worker.

granian does the HTTP: framing, keep-alive, pipelining, TLS, HTTP/2, header limits
and timeouts, write backpressure. This adapter only:

- reads the body within --max-body-bytes (a declared length over the limit is
  refused before a byte of it is read; a body without one is read in chunks and
  cut off at the limit) and within --request-timeout of its headers (408 otherwise);
- hands the app a `Request` and writes the app's `Response`;
- counts each request and its latency, and writes the access log line (--access-log);
- once the server drains (SIGUSR1 from the main process, after SIGTERM): readiness
  false and `Connection: close` on every answer, so clients reconnect elsewhere;
- at the worker's start loads the models, and reads the repository again every
  --poll-seconds (serve/plane/repository.py), off the event loop;
- ends the worker once its main process is gone: the kernel's parent-death signal,
  and a thread that looks for the main process (serve/server/processes.py), since that
  signal can be lost while the worker starts;
- with --grpc-port, runs the worker's gRPC server on the same loop and data plane
  (serve/server/grpc_server.py), and stops it, letting its calls finish, when the worker stops.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from serve.errors import BadInput, ClientDisconnected, PayloadTooLarge, ServeError
from serve.limits import DEFAULT_MAX_BATCH, DEFAULT_MAX_MODEL_BYTES, MAX_COUNT, Limits, ServerLimits, read_count
from serve.plane.dataplane import NO_LABELS
from serve.protocols.http_messages import Request
from serve.protocols.routes import Answer
from serve.server.grpc_server import GrpcOptions
from serve.server.stop_signals import DRAIN_SIGNAL, hold_stop_signals
from shared.escaping import one_line

log = logging.getLogger("serve.http")
access = logging.getLogger("serve.access")
_BODILESS = frozenset(("GET", "HEAD", "OPTIONS", "DELETE"))


class IncompleteBody(BadInput):
    """A request body that did not arrive whole: it is never handed to the app."""


class RequestTimeout(ServeError):
    """The body did not arrive within --request-timeout of the headers."""

    status_code = 408


@dataclass(frozen=True)
class AdapterOptions:
    """What a worker needs to build its app (picklable: granian may start workers by spawning)."""

    source: Path  # a model file or a repository folder
    name: str | None  # the model's name when `source` is one file
    limits: Limits = Limits()
    max_batch: int = DEFAULT_MAX_BATCH
    cors_origins: tuple[str, ...] = ()
    request_timeout: float = ServerLimits.request_timeout
    poll_seconds: float = ServerLimits.poll_seconds
    access_log: bool = False
    max_model_bytes: int = DEFAULT_MAX_MODEL_BYTES
    main_pid: int | None = None  # the server's main process: its workers die with it
    grpc: GrpcOptions | None = None  # gRPC beside HTTP (--grpc-port); None: HTTP only
    shutdown_grace: float = ServerLimits.shutdown_grace  # for the worker's in-flight calls once it stops


SWEEP_SECONDS = 0.25  # how often body deadlines are checked: a 408 comes up to this late
TRIM_SECONDS = 1.0  # after a large body was parsed, freed memory goes back to the system this soon


class RsgiApp:
    """The RSGI application granian calls; see the module docstring."""

    def __init__(self, options: AdapterOptions):
        self._serving = threading.Event()  # set once the worker serves
        if options.main_pid is not None:
            from serve.server.processes import watch_parent
            from shared.processes import die_with_parent

            die_with_parent(options.main_pid)  # first thing in the worker: a kill -9 of the main process ends it too
            watch_parent(options.main_pid, self._serving, options.shutdown_grace)  # should that signal be lost
        self.options = options
        self.app = None
        self.plane = None
        self.metrics = None
        self._watcher: asyncio.Task | None = None
        self._sweeper: asyncio.Task | None = None
        self._trimmer: asyncio.Task | None = None
        self._grpc = None
        # Request tasks reading a body, and when their time is up. One sweeper for all: a timer per
        # request (asyncio.timeout) cost 7 us of a ~70 us request.
        self._reading: dict[asyncio.Task, float] = {}
        self._timed_out: set[asyncio.Task] = set()
        self._known_models: set[str] = set()  # every model served so far: one gone is reported as 0 versions

    def __rsgi_init__(self, loop) -> None:
        """In the worker, before it serves: load the models, start the repository watcher, let stops through."""
        from serve.plane.dataplane import DataPlane
        from serve.plane.repository import ModelRepository
        from serve.protocols.routes import build_app
        from serve.server.prometheus import Metrics

        options = self.options
        self.metrics = Metrics()
        repository = ModelRepository(
            options.source, options.name, on_change=self._count_versions, max_model_bytes=options.max_model_bytes
        )
        self.plane = DataPlane(repository, options.max_batch, options.limits, self.metrics)
        self.app = build_app(self.plane, options.cors_origins)
        repository.apply(repository.prepare(initial=True))
        if options.poll_seconds > 0:
            self._watcher = loop.create_task(self._watch())
        self._sweeper = loop.create_task(self._sweep())
        self._trimmer = loop.create_task(self._give_back_memory())
        if options.grpc is not None:
            from serve.server.grpc_server import GrpcServer

            self._grpc = GrpcServer(options.grpc, self.plane, self.metrics, options.limits.max_body_bytes)
            loop.create_task(self._start_grpc())
        if DRAIN_SIGNAL is not None:
            loop.add_signal_handler(DRAIN_SIGNAL, self._drain)
        # Everything loaded so far lives as long as the server: keep it out of the cyclic
        # collector's full passes, which otherwise walk all of it now and then (tail latency).
        gc.freeze()
        hold_stop_signals(False, drain=True)  # granian's handlers and ours are in place: a held stop comes now
        self._serving.set()

    def __rsgi_del__(self, loop) -> None:
        """The worker stops: stop watching, and drop this process's live gauges."""
        from serve.server.prometheus import process_ended

        for task in (self._watcher, self._sweeper, self._trimmer):
            if task is not None:
                task.cancel()
        if self._grpc is not None:  # the loop has stopped serving HTTP: run it on for gRPC's goodbye
            loop.run_until_complete(self._grpc.stop(max(0.0, self.options.shutdown_grace - 1)))
        process_ended(os.getpid())

    async def _start_grpc(self) -> None:
        try:
            await self._grpc.start()
        except Exception:  # noqa: BLE001 - the port was checked before the workers started; say so if it changed
            log.exception("gRPC could not start on port %s; serving HTTP only", self.options.grpc.port)

    def _drain(self) -> None:
        if not self.plane.draining:
            log.info("draining: not ready, and every answer says Connection: close")
        self.plane.draining = True

    def _count_versions(self) -> None:
        repository = self.plane.repository
        counts = {name: len(versions) for name, versions in repository.served.items()}
        self.metrics.versions_loaded({**dict.fromkeys(self._known_models, 0), **counts})
        self._known_models |= set(counts)

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        repository = self.plane.repository
        while True:
            await asyncio.sleep(self.options.poll_seconds)
            try:
                repository.apply(await loop.run_in_executor(None, repository.prepare))
            except Exception:  # noqa: BLE001 - the watcher must outlive a bad read (a folder gone, a full disk)
                log.exception("reading the model repository %s failed; serving on what is loaded", repository.source)

    async def _give_back_memory(self) -> None:
        """Once a second after a large body or message was parsed, hand the allocator's freed pages back (in a
        thread: malloc_trim lets go of the GIL). Parsing a large body allocates and frees tens of MB from several
        threads' heaps, which glibc keeps and fragments: a worker that had refused 1,800 gRPC calls of 1 MB held
        181 MB and crept up, 130 MB when trimmed (96 MB at the start)."""
        from serve.server.processes import give_back_freed_memory

        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(TRIM_SECONDS)
            if self.plane.parsed_large:
                self.plane.parsed_large = False
                await loop.run_in_executor(None, give_back_freed_memory)

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            now = loop.time()
            for task, deadline in list(self._reading.items()):
                if now >= deadline:
                    self._timed_out.add(task)
                    task.cancel()

    async def __rsgi__(self, scope, proto) -> None:
        """One HTTP request (HTTP/1.1 or HTTP/2): read it, answer it, count it."""
        started = time.perf_counter()
        request = Request(scope.method, scope.path, scope.headers, query=scope.query_string)
        try:
            await self._read_body(request, proto)
            answer = await self.app.handle(request)
        except ClientDisconnected:
            # Said once, and answered: a client that only half-closed its side can still read a 400.
            log.info("client %s closed the connection before its request was read", one_line(str(scope.client)))
            error = IncompleteBody("request body ended before its declared length; send it whole.")
            answer = Answer(self.app.error_response(request, error), self.app.router.protocol(request.path), NO_LABELS)
            answer.response.headers.append(("connection", "close"))
        except (RequestTimeout, PayloadTooLarge, IncompleteBody) as e:
            answer = Answer(self.app.error_response(request, e), self.app.router.protocol(request.path), NO_LABELS)
            answer.response.headers.append(("connection", "close"))  # the rest of the body is not read
        response = answer.response
        headers = (
            response.headers
            if response.content_type is None
            else [
                ("content-type", response.content_type),
                *response.headers,
            ]
        )
        if self.plane.draining:
            headers.append(("connection", "close"))
        try:
            proto.response_bytes(response.status, headers, response.body)
        except RuntimeError:  # granian's RSGIProtocolClosed: nobody is left to read it; it is counted all the same
            pass
        seconds = time.perf_counter() - started
        self.metrics.request(*answer.labels, answer.protocol, response.status, seconds)
        if self.options.access_log:
            target = scope.path + (f"?{scope.query_string}" if scope.query_string else "")
            access.info(
                '%s "%s %s HTTP/%s" %d %d %.3fms',
                scope.client,
                one_line(scope.method),
                one_line(target),
                scope.http_version,
                response.status,
                len(response.body),
                seconds * 1e3,
            )

    async def _read_body(self, request: Request, proto) -> None:
        """Fill `request.body` within the size limit and the timeout, or raise what to answer."""
        limit = self.options.limits.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isascii() and declared.isdigit():
            length = read_count(declared)
            if length is None or length > limit:  # None: more than 63 bits of digits (not read as a number)
                length = length if length is not None else f"more than {MAX_COUNT:,}"
                raise PayloadTooLarge(f"request body of {length} bytes exceeds the limit of {limit}.")
            if length == 0:
                return
            reader = proto()
        elif request.method in _BODILESS and "transfer-encoding" not in request.headers:
            return
        else:
            reader = self._read_chunks(proto, limit)
        task = asyncio.current_task()
        self._reading[task] = asyncio.get_running_loop().time() + self.options.request_timeout
        try:
            request.body = await reader
        except asyncio.CancelledError:
            if task not in self._timed_out:
                raise
            self._timed_out.discard(task)
            task.uncancel()
            raise RequestTimeout(f"request not received within {self.options.request_timeout:g} s.") from None
        except RuntimeError as e:  # granian's RSGIProtocolClosed / RSGIProtocolError: the client went
            raise ClientDisconnected(str(e)) from None
        finally:
            del self._reading[task]

    @staticmethod
    async def _read_chunks(proto, limit: int) -> bytes:
        """A body without a declared length, within `limit`; IncompleteBody when it did not end as it must.

        granian (2.8) ends the stream of a whole chunked body with one empty chunk, and
        of one cut short (the connection half-closed before the last chunk, or a chunk
        size that does not parse) with two, the same as a whole body followed by
        trailers: no other sign reaches an RSGI app. So two mean incomplete, and a body
        with trailers is refused with them (this API reads none). docs/reliability.md
        has the upstream report.
        """
        chunks, size, empty = [], 0, 0
        async for chunk in proto:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes.")
            if chunk:
                chunks.append(chunk)
            else:
                empty += 1
        if empty > 1:
            raise IncompleteBody(
                "request body is incomplete: its chunked encoding ended before the last chunk, or was malformed "
                "(or carried trailers, which this server does not take)."
            )
        return b"".join(chunks)


def build_rsgi_app(options: AdapterOptions, *args, **kwargs) -> RsgiApp:
    """granian's target loader: the RSGI app of one worker (module level, so it pickles)."""
    return RsgiApp(options)
