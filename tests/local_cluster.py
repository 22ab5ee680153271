"""A cluster on 127.0.0.1 for the multi-worker tests: free ports, and each worker's TF_CONFIG."""

from __future__ import annotations

import json
import socket


def free_ports(n: int) -> list[int]:
    """`n` distinct ports free now (all held at once while they are found, so none repeats)."""
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def tf_config(ports: list[int], index: int) -> str:
    """TF_CONFIG for worker `index` of a cluster of workers on `ports` (worker 0 the chief)."""
    workers = [f"127.0.0.1:{p}" for p in ports]
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
