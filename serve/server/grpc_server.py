"""gRPC beside HTTP: a grpc.aio server in each worker of `serve http`, on the worker's own event loop.

So it shares everything with the worker's HTTP app: the data plane (models, versions,
the repository's reloads), the limits (the largest message is --max-body-bytes), the
metrics (protocol "grpc"), readiness and the drain after SIGTERM. Every worker binds
the one port with SO_REUSEPORT, as granian's HTTP workers do, and the kernel spreads
connections over them; the main process claims the port first (serve/server/processes.py),
so a second server cannot share it. TLS uses the HTTP server's certificate and key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("serve.grpc")


@dataclass(frozen=True)
class GrpcOptions:
    """Where gRPC listens, with which TLS files (none: plaintext), and how many connections it takes (as HTTP)."""

    host: str
    port: int
    ssl_certificate: Path | None = None
    ssl_keyfile: Path | None = None
    max_connections: int = 512


def address(host: str, port: int) -> str:
    """host:port as gRPC takes it ([v6]:port for an IPv6 address)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class GrpcServer:
    """One worker's gRPC server over `plane`: messages of at most `max_message_bytes`, the options' connections,
    and the calls in flight bounded (serve/limits.py, GRPC_*)."""

    def __init__(self, options: GrpcOptions, plane, metrics, max_message_bytes: int):
        self.options = options
        self.plane = plane
        self.metrics = metrics
        self.max_message_bytes = max_message_bytes
        self.server = None

    async def start(self) -> None:
        """Listen and serve (on the running event loop)."""
        from grpc import aio, ssl_server_credentials

        from serve.limits import GRPC_CALLS_IN_FLIGHT, GRPC_STREAMS_PER_CONNECTION
        from serve.protocols.grpc.service import InferenceService

        options = [
            ("grpc.so_reuseport", 1),
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.max_concurrent_streams", GRPC_STREAMS_PER_CONNECTION),
            ("grpc.max_allowed_incoming_connections", self.options.max_connections),
        ]
        self.server = aio.server(options=options, maximum_concurrent_rpcs=GRPC_CALLS_IN_FLIGHT)
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
