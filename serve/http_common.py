"""What both protocols share: requests and responses, bounded bodies, JSON, images, inference.

Endpoints take a `Request` and return a `Response`; they raise a `ServeError` for
anything the client got wrong, and http_app.py turns it into `{"error": ...}`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from dataclasses import dataclass, field

import numpy as np
import orjson

from serve.errors import BadInput, ClientDisconnected, ModelNotFound, NotReady, PayloadTooLarge
from serve.images import decode_image
from serve.model import Model

MODEL_VERSION = "1"  # one ONNX file per name: its only version
JSON = b"application/json"
# Batches of at most this many pixel values run on the event loop: ~1 ms of work at
# most, less than the ~40 us a hop to a worker thread and back costs a 20 us model
# several times over. Larger batches run in a thread, under the timeout.
INLINE_MAX_VALUES = 1 << 18


@dataclass(frozen=True)
class Limits:
    """Request limits; see `python -m serve http --help`."""

    max_body_bytes: int = 8 * 1024 * 1024  # 8 MiB: a batch of 256 CIFAR images as JSON numbers fits
    timeout_seconds: float = 10.0


@dataclass
class Response:
    """What an endpoint answers: a status and a body (JSON unless said otherwise)."""

    status: int
    body: bytes
    content_type: bytes = JSON
    headers: list = field(default_factory=list)


def json_response(value, status: int = 200) -> Response:
    """`value` as JSON (numpy arrays included) with `status`."""
    return Response(status, orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY))


class Request:
    """One HTTP request as the endpoints see it: method, path parameters, headers, body."""

    def __init__(self, scope: dict, receive, path_params: dict[str, str], limits: Limits):
        self.scope = scope
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.path_params = path_params
        self.limits = limits
        self._receive = receive

    def header(self, name: bytes) -> bytes | None:
        """The first value of header `name` (lower case), or None."""
        for key, value in self.scope["headers"]:
            if key == name:
                return value
        return None

    async def body(self) -> bytes:
        """The whole body, refusing one over the limit before reading it all."""
        limit = self.limits.max_body_bytes
        declared = self.header(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"request body of {int(declared)} bytes exceeds the limit of {limit}.")
        chunks, size = [], 0
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected("the client closed the connection before sending the whole body.")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes.")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def json(self) -> dict:
        """The body as a JSON object."""
        return parse_json(await self.body())


def parse_json(body: bytes) -> dict:
    """A request body as a JSON object, or BadInput."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        if str(e).startswith("depth limit exceeded"):
            raise BadInput("request body nests JSON too deeply.") from None
        raise BadInput(f"request body is not valid JSON ({e}).") from None
    if not isinstance(value, dict):
        raise BadInput("request body must be a JSON object.")
    return value


def model_name(request: Request) -> str:
    """The model name in the path, after checking the version the path names, if any."""
    name = request.path_params["name"]
    version = request.path_params.get("version")
    if version is not None and version != MODEL_VERSION:
        raise ModelNotFound(f"model {name!r} has no version {version!r}; this server has version {MODEL_VERSION}.")
    return name


async def infer(model: Model, batch: np.ndarray, limits: Limits) -> np.ndarray:
    """Probabilities for a validated batch: on the loop when small, else in a thread under the timeout.

    On timeout the run is told to stop (onnxruntime's RunOptions.terminate), so
    the thread does not run on after the 503.
    """
    if batch.size <= INLINE_MAX_VALUES:
        return model.run(batch)
    import onnxruntime as ort

    options = ort.RunOptions()
    future = asyncio.get_running_loop().run_in_executor(None, model.run, batch, options)
    try:
        return await asyncio.wait_for(future, limits.timeout_seconds)
    except asyncio.TimeoutError:
        options.terminate = True
        raise NotReady(f"inference timed out after {limits.timeout_seconds:g} s; retry later.") from None


def b64_image(value: dict, model: Model, label: str) -> np.ndarray:
    """Decode {"b64": "<png or jpeg bytes>"} into the model's input [H,W,C]."""
    if not isinstance(value.get("b64"), str):
        raise BadInput(f'{label}: expected {{"b64": "<base64 image bytes>"}}.')
    try:
        data = base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise BadInput(f"{label}: b64 is not valid base64.") from None
    return decode_image(data, label, model.info.input_shape[:2], model.info.channels)


def as_array(value, label: str) -> np.ndarray:
    """Nested JSON lists -> a numeric array, or BadInput for ragged or non-numeric data."""
    try:
        array = np.asarray(value)
    except ValueError:
        raise BadInput(f"{label} is ragged: every image must have the same shape.") from None
    except RecursionError:
        raise BadInput(f"{label} nests too deeply.") from None
    if array.dtype == object or array.dtype.kind in "USb":
        raise BadInput(f"{label} must hold numbers 0..255, got {array.dtype.name} values.")
    return array
