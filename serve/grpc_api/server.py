"""gRPC beside HTTP: a grpc.aio server in each worker of `serve http`, on the worker's own event loop.

So it shares everything with the worker's HTTP app: the data plane (models, versions,
the repository's reloads), the limits (the largest message is --max-body-bytes), the
metrics (protocol "grpc"), readiness and the drain after SIGTERM. Every worker binds
the one port with SO_REUSEPORT, as granian's HTTP workers do, and the kernel spreads
connections over them; the main process claims the port first (serve/process_ties.py),
so a second server cannot share it. TLS uses the HTTP server's certificate and key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("serve.grpc")
DEFAULT_PORT = 8001  # Triton's


@dataclass(frozen=True)
class GrpcOptions:
    """Where gRPC listens, and with which TLS files (none: plaintext)."""

    host: str
    port: int
    ssl_certificate: Path | None = None
    ssl_keyfile: Path | None = None


def address(host: str, port: int) -> str:
    """host:port as gRPC takes it ([v6]:port for an IPv6 address)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class GrpcServer:
    """One worker's gRPC server over `plane`."""

    def __init__(self, options: GrpcOptions, plane, metrics, max_message_bytes: int):
        self.options = options
        self.plane = plane
        self.metrics = metrics
        self.max_message_bytes = max_message_bytes
        self.server = None

    async def start(self) -> None:
        """Listen and serve (on the running event loop)."""
        from grpc import aio, ssl_server_credentials

        from serve.grpc_api.service import InferenceService

        options = [
            ("grpc.so_reuseport", 1),
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes),
        ]
        self.server = aio.server(options=options)
        self.server.add_generic_rpc_handlers((InferenceService(self.plane, self.metrics).handler(),))
        where = address(self.options.host, self.options.port)
        if self.options.ssl_certificate is not None:
            pair = (self.options.ssl_keyfile.read_bytes(), self.options.ssl_certificate.read_bytes())
            self.server.add_secure_port(where, ssl_server_credentials([pair]))
        else:
            self.server.add_insecure_port(where)
        await self.server.start()

    async def stop(self, grace: float) -> None:
        """Refuse new calls and finish those in flight, for up to `grace` seconds."""
        if self.server is not None:
            await self.server.stop(grace)
