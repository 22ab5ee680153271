"""Serving for tests: the app in process (`app_for`, `answer`), or `python -m serve http` as a real process."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path


def free_port() -> int:
    """A port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, env: dict, *args: str, tls: Path | None = None) -> tuple[subprocess.Popen, int]:
    """`python -m serve http MODEL --port P ARGS`, once it answers /v2/health/live (over TLS, trusting `tls`)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "serve", "http", str(model), "--port", str(port), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if tls is not None:
                    s = ssl.create_default_context(cafile=str(tls)).wrap_socket(s, server_hostname="127.0.0.1")
                s.sendall(b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\n\r\n")
                if s.recv(100).startswith(b"HTTP/1.1 200"):
                    return process, port
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"server did not start: {process.communicate()[1][-2000:]}")
        time.sleep(0.1)


class StderrLines:
    """A server's stderr, read line by line in a thread as it comes: wait for a line instead of sleeping."""

    def __init__(self, process: subprocess.Popen):
        self.lines: list[str] = []
        self._arrived = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(process.stderr,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            with self._arrived:
                self.lines.append(line.rstrip("\n"))
                self._arrived.notify_all()

    def wait_for(self, text: str, timeout: float = 20) -> str:
        """The first line holding `text`, once it has been written; AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                found = next((line for line in self.lines if text in line), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                assert left > 0, f"no line with {text!r} in {timeout} s: {self.lines[-20:]}"
                self._arrived.wait(left)

    def text(self) -> str:
        """Everything written, once the process has ended (its stream closed)."""
        self._thread.join(timeout=30)
        return "\n".join(self.lines)


def worker_pids(port: int) -> list[int]:
    """The worker processes of the `serve http` listening on `port` (children of its main process)."""
    processes = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            processes[int(entry.name)] = (int(fields[1]), command)
    main = [
        pid
        for pid, (_, command) in processes.items()
        if b"serve" in command and b"http" in command and str(port).encode() in command
    ]
    return sorted(pid for pid, (parent, _) in processes.items() if parent in main)


class Responses:
    """Reads HTTP/1.1 responses (with content-length) off a socket, one after another."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed; unread: {self.buffer[:200]!r}")
        self.buffer += chunk

    def next(self) -> tuple[int, dict[str, str], bytes]:
        """The next response: status, headers (lower-case names), body."""
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines[1:])}
        length = int(headers.get("content-length", 0))  # none on a 204
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(lines[0].split()[1]), headers, body

    def closed(self, timeout: float = 5) -> bool:
        """Whether the server closes the connection (and sends nothing more) within `timeout`."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except OSError:
            return False


def app_for(model: Path, name: str = "digits", cors_origins: tuple[str, ...] = (), **plane_options):
    """The app serving one model file as `name`, in this process (no engine): what a worker builds."""
    from serve.plane.dataplane import DataPlane
    from serve.plane.repository import ModelRepository
    from serve.protocols.routes import build_app

    repository = ModelRepository(Path(model), name)
    repository.apply(repository.prepare(initial=True))
    return build_app(DataPlane(repository, **plane_options), cors_origins)


def respond(app, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    """The app's `Response` to one request, as the adapter gets it (the query string apart from the path)."""
    import asyncio

    from serve.protocols.http_messages import Request

    path, _, query = path.partition("?")
    return asyncio.run(app.handle(Request(method, path, headers or {}, body, query=query))).response


def answer(app, method: str, path: str, body: bytes = b"") -> tuple[int, dict]:
    """Status and JSON of the app's answer to one request."""
    import json

    response = respond(app, method, path, body)
    return response.status, json.loads(response.body)
