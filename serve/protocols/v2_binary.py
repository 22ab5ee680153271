"""The v2 protocol's binary tensor data extension over HTTP (Triton's and KServe's `binary_tensor_data`).

A request's body is a JSON header of `Inference-Header-Content-Length` bytes, then
each input's raw little-endian bytes, as many as its `parameters.binary_data_size`
says, in the order of "inputs". An answer whose request asked for binary outputs
(`parameters.binary_data_output`, or an output's `parameters.binary_data`) is laid
out the same way, with its own `Inference-Header-Content-Length`.

Every size a client states is checked against the bytes that came before any of
them is used: a header that lies is a 400 naming the part that lies.
"""

from __future__ import annotations

import orjson

from serve.errors import BadInput
from serve.limits import read_count
from serve.protocols.http_messages import Response

HEADER = "inference-header-content-length"  # as the request's headers hold it: lower case
SHOWN = "Inference-Header-Content-Length"
BINARY_SIZE = "binary_data_size"
OCTET_STREAM = "application/octet-stream"


def split_body(body: bytes, declared: str) -> tuple[bytes, memoryview]:
    """(the JSON header, the binary data after it) of a body whose header is `declared` bytes long."""
    length = read_count(declared)
    if length is None:
        raise BadInput(f"{SHOWN} {declared[:40]!r} is not a byte count; send the JSON header's length in bytes.")
    if length > len(body):
        raise BadInput(f"{SHOWN} says the JSON header has {length:,} bytes, but the body has only {len(body):,}.")
    if length == 0:
        raise BadInput(f"{SHOWN} is 0: the body must start with a JSON header.")
    return body[:length], memoryview(body)[length:]  # the header copied (it is small), the tensors not


def binary_sizes(inputs: list, binary: memoryview) -> list[int | None]:
    """Each input's `binary_data_size` (None for one sent as JSON), checked to add up to the binary data."""
    sizes: list[int | None] = []
    for i, tensor in enumerate(inputs):
        parameters = tensor.get("parameters") if isinstance(tensor, dict) else None
        size = parameters.get(BINARY_SIZE) if isinstance(parameters, dict) else None
        if size is not None and (type(size) is not int or size < 0):
            raise BadInput(f"inputs[{i}].parameters.{BINARY_SIZE} {str(size)[:40]!r} is not a byte count.")
        if size is not None and size > len(binary):
            raise BadInput(
                f"inputs[{i}].parameters.{BINARY_SIZE} is {size:,} bytes, more than the {len(binary):,} bytes of "
                "binary data after the JSON header."
            )
        sizes.append(size)
    stated = sum(s for s in sizes if s is not None)
    if stated != len(binary):
        raise BadInput(
            f"the inputs' {BINARY_SIZE} add up to {stated:,} bytes, but {len(binary):,} bytes follow the JSON "
            f"header ({SHOWN})."
        )
    return sizes


def wants_binary_output(body: dict, output_name: str) -> bool:
    """Whether the request asks for its output as binary data; BadInput for an output this model does not have."""
    parameters = body.get("parameters")
    everything = isinstance(parameters, dict) and parameters.get("binary_data_output") is True
    requested = body.get("outputs")
    if requested is None:
        return everything
    if not isinstance(requested, list) or not all(isinstance(o, dict) for o in requested):
        raise BadInput('"outputs" must be a list of objects, e.g. [{"name": "probabilities"}].')
    for output in requested:
        if output.get("name") != output_name:
            shown = str(output.get("name"))[:40]
            raise BadInput(f'"outputs" names {shown!r}; this model has one output, "{output_name}".')
    chosen = [o.get("parameters", {}).get("binary_data") for o in requested if isinstance(o.get("parameters"), dict)]
    return any(flag is True for flag in chosen) or (everything and not any(flag is False for flag in chosen))


def binary_response(header: dict, data: bytes, labels: tuple[str, str]) -> Response:
    """An answer of a JSON header (its length in the Inference-Header-Content-Length header), then `data`."""
    encoded = orjson.dumps(header)
    return Response(200, encoded + data, OCTET_STREAM, headers=[(HEADER, str(len(encoded)))], labels=labels)
