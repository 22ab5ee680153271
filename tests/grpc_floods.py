"""A raw HTTP/2 client (h2) that opens gRPC streams and sends part of a large message on each, then holds them:
what a stock gRPC client never does, and what the probe of issue 32 did to a worker's memory."""

from __future__ import annotations

import select
import socket
import struct
import time

import h2.config
import h2.connection
import h2.events

PATH = "/inference.GRPCInferenceService/ModelInfer"


def hold_streams(
    port: int, streams: int, part: int, declared: int, seconds: float = 10.0
) -> tuple[socket.socket, dict]:
    """Open `streams` streams on one connection, each sending `part` bytes of a message that declares `declared`;
    send for up to `seconds`. Returns the socket (still open: the streams are held) and what the server did."""
    sock = socket.create_connection(("127.0.0.1", port))
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    headers = [(":method", "POST"), (":scheme", "http"), (":path", PATH), (":authority", f"127.0.0.1:{port}"),
               ("content-type", "application/grpc"), ("te", "trailers")]  # fmt: skip
    pending: dict[int, bytes] = {}
    seen = {"opened": 0, "reset": 0}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        while seen["opened"] < streams:  # as many as the client library lets it open (it ignores the server's cap)
            stream = conn.get_next_available_stream_id()
            conn.send_headers(stream, headers)
            seen["opened"] += 1
            pending[stream] = b"\x00" + struct.pack(">I", declared) + bytes(part)
        for stream in list(pending):
            try:
                window = min(conn.local_flow_control_window(stream), conn.max_outbound_frame_size)
            except Exception:  # noqa: BLE001 - the server reset it
                pending.pop(stream)
                continue
            while window > 0 and pending[stream]:
                chunk, pending[stream] = pending[stream][:window], pending[stream][window:]
                conn.send_data(stream, chunk)
                window = min(conn.local_flow_control_window(stream), conn.max_outbound_frame_size)
            if not pending[stream]:
                pending.pop(stream)
        sock.sendall(conn.data_to_send())
        if not pending:
            break
        if select.select([sock], [], [], 0.05)[0]:
            data = sock.recv(1 << 20)
            if not data:
                break
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.StreamReset | h2.events.StreamEnded):
                    pending.pop(event.stream_id, None)
                    seen["reset"] += 1
            sock.sendall(conn.data_to_send())
    return sock, seen


def rss_mb(pid: int) -> float:
    """A process's resident memory now, in MB."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(pid)
