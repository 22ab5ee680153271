"""Starting `python -m serve http` for tests: a real process on 127.0.0.1, TensorFlow blocked."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    """A port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, env: dict, *args: str) -> tuple[subprocess.Popen, int]:
    """`python -m serve http MODEL --port P ARGS`, once it answers /v2/health/live."""
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
                s.sendall(b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\n\r\n")
                if s.recv(100).startswith(b"HTTP/1.1 200"):
                    return process, port
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"server did not start: {process.communicate()[1][-2000:]}")
        time.sleep(0.1)


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
        headers = dict(line.lower().split(": ", 1) for line in lines[1:])
        length = int(headers["content-length"])
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


def answer(app, method: str, path: str, body: bytes = b"") -> tuple[int, dict]:
    """Status and JSON of the app's answer to one request, awaiting it as the server does when it must wait."""
    import asyncio
    import json

    from serve.http_common import Request, Response

    async def run():
        request = Request(method, path, {}, body)
        result = app.handle(request)
        if not isinstance(result, Response):
            try:
                result = await result
            except Exception as e:  # noqa: BLE001 - as the server does
                result = app.error_response(request, e)
        return result

    response = asyncio.run(run())
    return response.status, json.loads(response.body)
