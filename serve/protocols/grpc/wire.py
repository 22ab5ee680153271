"""A ModelInferRequest's fields counted on the wire, before protobuf parses it.

    check_field_counts(data)   # BadInput: "parameters holds more than 64 entries; at most 64 are taken."

protobuf's parser holds the GIL for the whole message, and a message may repeat a
field as often as its bytes allow: 8.3 MB of 600,000 `parameters` entries took it
about half a second, time in which the event loop could not run even from another
thread. protobuf has no way to stop a parse at a count, so this walks the message's
top-level fields (and those of its input and output tensors) by their tags and
lengths, skipping every payload: a real request has fewer than twenty, and a hostile
one is refused after the first field over its limit, whatever its size.
"""

from __future__ import annotations

from serve.errors import BadInput
from serve.limits import MAX_REQUEST_PARAMETERS

_REQUEST_FIELDS = {4: "parameters", 5: "inputs", 6: "outputs", 7: "raw_input_contents"}
_TENSOR_FIELDS = {3: "shape", 4: "parameters"}  # of InferInputTensor; InferRequestedOutputTensor's 2 is parameters
_OUTPUT_FIELDS = {2: "parameters"}
MAX_FIELDS = 4 * MAX_REQUEST_PARAMETERS  # of one message, whatever they are


def check_field_counts(data: bytes) -> None:
    """Refuse a ModelInferRequest whose fields, or its tensors' fields, repeat more than any client sends."""
    view = memoryview(data)
    for number, payload in _fields(view, _REQUEST_FIELDS, "", nested=(5, 6)):
        for _ in _fields(payload, _TENSOR_FIELDS if number == 5 else _OUTPUT_FIELDS, f"{_REQUEST_FIELDS[number]}[]."):
            pass


def _fields(data: memoryview, named: dict[int, str], prefix: str, nested: tuple[int, ...] = ()):
    """Walk `data`'s fields, counting them against the limits; yield (number, payload) of those in `nested`."""
    counts: dict[int, int] = {}
    total, at, end = 0, 0, len(data)
    while at < end:
        tag, at = _varint(data, at)
        number, kind = tag >> 3, tag & 7
        total += 1
        counts[number] = counts.get(number, 0) + 1
        if number in named and counts[number] > MAX_REQUEST_PARAMETERS:
            limit = MAX_REQUEST_PARAMETERS
            raise BadInput(f"{prefix}{named[number]} holds more than {limit} entries; at most {limit} are taken.")
        if total > MAX_FIELDS:
            where = prefix.rstrip(".") or "the request"
            raise BadInput(f"{where} holds more than {MAX_FIELDS} fields; no valid request has that many.")
        if kind == 0:
            _, at = _varint(data, at)
        elif kind == 1:
            at += 8
        elif kind == 5:
            at += 4
        elif kind == 2:
            length, at = _varint(data, at)
            if number in nested:
                yield number, data[at : at + length]
            at += length
        else:
            return  # a group or no wire type at all: protobuf's parser says the message is malformed


def _varint(data: memoryview, at: int) -> tuple[int, int]:
    """The varint at `at`, and where the next field starts."""
    value, shift = 0, 0
    while at < len(data) and shift < 70:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7
    return value, len(data)  # truncated: the parser says so
