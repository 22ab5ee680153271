"""The v2 protocol's classification extension (Triton's): top classes instead of probabilities, for stock clients.

    tritonclient.http.InferRequestedOutput("probabilities", class_count=3)

An output requested with `parameters.classification` = K (HTTP: an integer; gRPC: its
`int64_param`) answers a BYTES tensor [N, K]: each image's K likeliest classes, likeliest
first, as "probability:index:label" (Triton's form; the probability with six decimals,
as C++'s to_string writes it). K above the number of classes is cut to it, as Triton does.
In raw form (HTTP's binary extension, gRPC's raw contents) each string is its length in
4 little-endian bytes, then its bytes.
"""

from __future__ import annotations

import struct

import numpy as np

from serve.errors import BadInput
from serve.limits import MAX_COUNT
from shared.ranking import top_classes

PARAMETER = "classification"
EXTENSION = "classification"  # as `GET /v2` and ServerMetadata list it


def class_count(value, label: str) -> int:
    """The K a client asked for, or BadInput: a positive integer."""
    if type(value) is not int or not 1 <= value <= MAX_COUNT:
        raise BadInput(f"{label} {str(value)[:40]!r} is not a positive integer: the number of classes to answer.")
    return value


def labelled(probabilities: np.ndarray, k: int, classes: tuple[str, ...]) -> list[str]:
    """The answer's strings, row after row: "probability:index:label" for each image's top `k` classes."""
    return [
        f"{probabilities[row, j]:f}:{j}:{classes[j]}" for row, picked in enumerate(top_classes(probabilities, k))
        for j in picked
    ]  # fmt: skip


def raw(strings: list[str]) -> bytes:
    """The strings as a raw BYTES tensor: each its length in 4 little-endian bytes, then its UTF-8 bytes."""
    encoded = [s.encode() for s in strings]
    return b"".join(struct.pack("<I", len(e)) + e for e in encoded)
