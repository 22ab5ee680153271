"""The HTTP/1.1 server: asyncio (on uvloop where installed) with httptools' parser, no ASGI layer.

    python -m serve http exports/mnist/model.onnx [--workers 2]

Why not uvicorn: measured on one core, uvicorn with uvloop and httptools spends
~30 us on each request before the app sees it (33k requests/s for an empty ASGI
app), as long as this model's inference; this server spends ~6 us, because a
request that needs no waiting is answered inside the `data_received` call that
completed it, with no task, no ASGI messages and no scope dict. httptools (the
llhttp parser of Node.js) does the parsing; this module does the framing:

- keep-alive and pipelining: responses go out in request order, one request is
  worked on at a time per connection, and reading pauses while one is awaited;
- bodies by Content-Length or chunked; past `max_body_bytes` the answer is 413
  and the connection closes (a declared length is refused before the body comes);
  `Expect: 100-continue` gets its interim response;
- a request must arrive whole within `request_timeout` of its first byte, or it
  gets 408 and the connection closes; an idle keep-alive connection closes after
  `keep_alive_timeout`; past `max_connections` a new connection gets 503;
- SIGTERM or Ctrl-C: stop accepting, finish the requests in flight, exit 0.

With N workers the parent binds the socket and forks N children that each load
the model and serve on it (the kernel spreads connections over them).
"""

from __future__ import annotations

import asyncio
import gc
import http
import logging
import os
import signal
import socket
import sys
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import httptools

from serve.errors import ServeError
from serve.http_app import HttpApp
from serve.http_common import Request, Response, json_response
from serve.limits import ConnectionLimits, Limits
from serve.stop_signals import hold_stop_signals

log = logging.getLogger("serve.http")
_REASONS = {s.value: s.phrase.encode() for s in http.HTTPStatus}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@dataclass
class ServerState:
    """What every connection of one server process shares."""

    app: HttpApp
    limits: Limits
    connection_limits: ConnectionLimits
    connections: set = field(default_factory=set)
    tasks: set = field(default_factory=set)
    draining: bool = False


def _path(url: bytes) -> str:
    """The decoded path of a request target; the common plain "/a/b:c" skips URL parsing."""
    if url[:1] == b"/" and not any(c in url for c in (b"?", b"%", b"#")):
        return url.decode("ascii", "replace")
    parsed = (httptools.parse_url(url).path or b"/") if url else b"/"
    return unquote(parsed.decode("utf-8", "replace"))


def _head(status: int, content_type: bytes, length: int, keep_alive: bool) -> bytes:
    close = b"" if keep_alive else b"connection: close\r\n"
    reason = _REASONS.get(status, b"")
    return b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n%s\r\n" % (
        status,
        reason,
        content_type,
        length,
        close,
    )


class HttpProtocol(asyncio.Protocol):
    """One client connection; see the module docstring."""

    def __init__(self, state: ServerState):
        self.state = state
        self.loop = asyncio.get_running_loop()
        self.transport = None
        self.parser = httptools.HttpRequestParser(self)
        self.queue: deque[tuple[Request, bool]] = deque()
        self.busy = False  # an endpoint's awaitable is in flight
        self.in_message = False
        self.failure: tuple[int, str] | None = None  # an error found by a parser callback
        self.deadline: float | None = None  # when `on_deadline` runs; the server's sweeper checks it
        self.on_deadline = None
        self._url = b""
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self._size = 0

    # Connection events.
    def connection_made(self, transport) -> None:
        """Refuse past max_connections; otherwise start the idle clock."""
        self.transport = transport
        if len(self.state.connections) >= self.state.connection_limits.max_connections:
            self._send(json_response({"error": "too many connections; retry later."}, 503), keep_alive=False)
            return
        self.state.connections.add(self)
        self._set_deadline(self.state.connection_limits.keep_alive_timeout, self._idle_timeout)

    def connection_lost(self, exc) -> None:
        """Forget the connection; a client that hangs up mid-request is one info line."""
        self.state.connections.discard(self)
        self._set_deadline(None, None)
        if self.in_message or self.queue or self.busy:
            log.info("client %s closed the connection before its request was answered", self._peer())

    def data_received(self, data: bytes) -> None:
        """Parse; every request completed by `data` is answered in order."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.failure = self.failure or (400, "protocol upgrades are not supported.")
        except httptools.HttpParserError:
            self.failure = self.failure or (400, "malformed HTTP request.")
        self._send_failure()

    def _send_failure(self) -> None:
        """Once the requests before it are answered, answer a broken request and close."""
        if self.failure is None:
            return
        if not self.busy and not self.queue and not self.transport.is_closing():
            status, message = self.failure
            self._send(json_response({"error": message}, status), keep_alive=False)

    # httptools callbacks.
    def on_message_begin(self) -> None:
        """A request starts: its timeout runs from here."""
        self.in_message = True
        self._url, self._headers, self._body, self._size = b"", {}, [], 0
        self._set_deadline(self.state.connection_limits.request_timeout, self._request_timeout)

    def on_url(self, url: bytes) -> None:
        """Collect the request target."""
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        """Collect a header (names lower-cased)."""
        self._headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        """Refuse a declared body over the limit before it comes; answer Expect: 100-continue."""
        limit = self.state.limits.max_body_bytes
        declared = self._headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            self._fail(413, f"request body of {int(declared)} bytes exceeds the limit of {limit}.")
        elif self._headers.get(b"expect", b"").lower() == b"100-continue":
            self.transport.write(_CONTINUE)

    def on_body(self, chunk: bytes) -> None:
        """Collect the body within the limit."""
        self._size += len(chunk)
        if self._size > self.state.limits.max_body_bytes:
            self._fail(413, f"request body exceeds the limit of {self.state.limits.max_body_bytes} bytes.")
        else:
            self._body.append(chunk)

    def on_message_complete(self) -> None:
        """A whole request: queue it and answer what can be answered now."""
        self.in_message = False
        self._set_deadline(None, None)
        if self.failure is not None:
            return  # its body was refused: answered by _send_failure
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        request = Request(self.parser.get_method().decode("ascii"), _path(self._url), self._headers, body)
        self.queue.append((request, self.parser.should_keep_alive()))
        self._answer_queued()

    # Answering.
    def _answer_queued(self) -> None:
        while self.queue and not self.busy and not self.transport.is_closing():
            request, keep_alive = self.queue.popleft()
            result = self.state.app.handle(request)
            if isinstance(result, Response):
                self._send(result, keep_alive)
                continue
            self.busy = True
            self.transport.pause_reading()
            task = self.loop.create_task(self._answer_later(request, result, keep_alive))
            self.state.tasks.add(task)
            task.add_done_callback(self.state.tasks.discard)

    async def _answer_later(self, request: Request, awaitable, keep_alive: bool) -> None:
        try:
            response = await awaitable
        except Exception as e:  # noqa: BLE001 - the app words every failure
            response = self.state.app.error_response(request, e)
        self.busy = False
        if self.transport.is_closing():
            return
        self._send(response, keep_alive)
        if not self.transport.is_closing():
            self.transport.resume_reading()
            self._answer_queued()
            self._send_failure()

    def _send(self, response: Response, keep_alive: bool) -> None:
        keep_alive = keep_alive and not self.state.draining
        # One write, one system call: a second write for the body costs ~8 us a request.
        head = _head(response.status, response.content_type, len(response.body), keep_alive)
        self.transport.write(head + response.body)
        if not keep_alive:
            self.transport.close()
            self.state.connections.discard(self)
        elif not self.queue and not self.in_message:
            self._set_deadline(self.state.connection_limits.keep_alive_timeout, self._idle_timeout)

    def _fail(self, status: int, message: str) -> None:
        # Raising inside a parser callback would surface as a parser error; note it and answer after feed_data.
        self.failure = self.failure or (status, message)

    # Timeouts: a deadline per connection, checked by one sweeper per server (see `serve`).
    # Cheaper than a timer per request: arming and cancelling three loop timers cost ~4 us.
    def _set_deadline(self, seconds: float | None, callback) -> None:
        self.deadline = None if seconds is None else self.loop.time() + seconds
        self.on_deadline = callback

    def _request_timeout(self) -> None:
        limit = self.state.connection_limits.request_timeout
        if self.busy:  # the next request is pipelined behind one being answered: give it a fresh period
            self._set_deadline(limit, self._request_timeout)
            return
        log.info("client %s did not send its request within %g s", self._peer(), limit)
        self.queue.clear()
        self._send(json_response({"error": f"request not received within {limit:g} s."}, 408), keep_alive=False)

    def _idle_timeout(self) -> None:
        if not (self.busy or self.queue or self.in_message):
            self.transport.close()
            self.state.connections.discard(self)

    def close_if_idle(self) -> None:
        """Close now unless a request is on its way or being answered (for a graceful stop)."""
        self._idle_timeout()

    def _peer(self) -> str:
        peer = self.transport.get_extra_info("peername") if self.transport else None
        return f"{peer[0]}:{peer[1]}" if peer else "?"


async def serve(sock: socket.socket, app: HttpApp, limits: Limits, connection_limits: ConnectionLimits) -> None:
    """Serve on `sock` until SIGTERM/SIGINT, then finish what is in flight."""
    loop = asyncio.get_running_loop()
    state = ServerState(app, limits, connection_limits)
    server = await loop.create_server(lambda: HttpProtocol(state), sock=sock, backlog=2048)
    sweeper = loop.create_task(_sweep_deadlines(state))
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    hold_stop_signals(False)  # one that came while starting is delivered now
    await stop.wait()
    # Graceful stop: no new connections, readiness false, idle connections closed, in-flight answered.
    state.draining = app.plane.draining = True
    server.close()
    deadline = loop.time() + connection_limits.shutdown_grace
    while state.connections and loop.time() < deadline:
        for connection in list(state.connections):
            connection.close_if_idle()
        await asyncio.sleep(0.05)
    for connection in list(state.connections):
        connection.transport.close()
    sweeper.cancel()


SWEEP_SECONDS = 0.5  # how often deadlines are checked: timeouts fire up to this late


async def _sweep_deadlines(state: ServerState) -> None:
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        now = loop.time()
        for connection in list(state.connections):
            if connection.deadline is not None and now >= connection.deadline:
                connection.deadline = None
                connection.on_deadline()


def _event_loop_runner():
    try:
        import uvloop

        return uvloop.run
    except ImportError:  # uvloop is not built for Windows: asyncio's loop serves, slower
        return asyncio.run


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (IPv6 when host has a colon), or ServeError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port} ({e.strerror}); choose another --port or --host.") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _serve_model(sock, model_path: Path, name: str, limits: Limits, connection_limits: ConnectionLimits, max_batch):
    # Called from run(), which holds SIGTERM/SIGINT: a stop during loading waits,
    # pending, until serve() has its handlers in place (serve/stop_signals.py).
    from serve.dataplane import DataPlane
    from serve.http_app import build_app
    from serve.model import Model

    app = build_app(DataPlane({name: Model.load(model_path)}, max_batch), limits)
    # Everything loaded so far lives as long as the server: keep it out of the cyclic
    # collector's full passes, which otherwise walk all of it now and then (tail latency).
    gc.freeze()
    _event_loop_runner()(serve(sock, app, limits, connection_limits))


def run(
    model_path: Path,
    name: str,
    host: str,
    port: int,
    limits: Limits,
    max_batch: int,
    workers: int = 1,
    connection_limits: ConnectionLimits | None = None,
) -> int:
    """Serve until SIGTERM or Ctrl-C; the exit code (0 after a graceful stop)."""
    connection_limits = connection_limits or ConnectionLimits()
    # Held from before the socket listens until serve() has its handlers in place
    # (in each worker; in the parent, until the workers are forked): a stop is never lost.
    hold_stop_signals(True)
    sock = bind(host, port)
    if workers == 1:
        _serve_model(sock, model_path, name, limits, connection_limits, max_batch)
        return 0
    children: list[int] = []

    def forward(signum, frame):
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # a worker: load the model after the fork, never share a session across processes
            code = 0
            try:
                _serve_model(sock, model_path, name, limits, connection_limits, max_batch)
            except BaseException:  # noqa: BLE001 - a worker must never return into the parent's code
                log.exception("worker %d failed", os.getpid())
                code = 1
            finally:
                sys.stdout.flush()
                os._exit(code)
        children.append(pid)
    sock.close()
    hold_stop_signals(False)  # forward() now knows every worker
    failed = 0
    for pid in children:
        _, status = os.waitpid(pid, 0)
        failed += os.waitstatus_to_exitcode(status) != 0
    return 1 if failed else 0
