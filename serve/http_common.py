"""What the HTTP protocols share: requests and responses, JSON, images.

An endpoint is `async def endpoint(plane, request) -> Response`: it takes a
`Request` (its body already read, within the limits, by the engine's adapter,
serve/rsgi_app.py), parses it, asks the data plane, and formats the answer. It
raises a `ServeError` for anything the client got wrong, and http_app.py turns that
into `{"error": ...}`.
"""

from __future__ import annotations

import base64
import binascii
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import orjson

from serve.dataplane import DataPlane, ModelView
from serve.errors import BadInput, NotReady
from serve.images import decode_image, read_header
from serve.limits import INLINE_DECODE_PIXELS, REQUEST_PIXELS_FACTOR, SCANS_PER_DECODE, Limits
from serve.model import Model

JSON = "application/json"


@dataclass(slots=True)
class Response:
    """What an endpoint answers: a status, a body (JSON unless said otherwise), further headers, and the model
    version the answer is about (the metrics' labels; None when no served version gave it)."""

    status: int
    body: bytes
    content_type: str | None = JSON  # None: no Content-Type (a 204)
    headers: list[tuple[str, str]] = field(default_factory=list)
    labels: tuple[str, str] | None = None


def json_response(value, status: int = 200, labels: tuple[str, str] | None = None) -> Response:
    """`value` as JSON (numpy arrays included) with `status`."""
    return Response(status, orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY), labels=labels)


@dataclass(slots=True)
class Request:
    """One HTTP request as the endpoints see it: method, path, its parameters, headers, whole body, query string."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    path_params: dict[str, str] = field(default_factory=dict)
    query: str = ""

    def json(self) -> dict:
        """The body as a JSON object, or BadInput."""
        return parse_json(self.body)


def check_value_count(body: bytes, input_shape: tuple[int, int, int], max_batch: int) -> None:
    """Refuse, before it is parsed, a JSON body with more numbers than the largest request of this model holds.

    Counting its commas takes ~2 ms for 8 MB; parsing it, ~150 ms with the GIL held (a
    stall of the event loop for every other request): a flood of such bodies could
    keep health probes waiting. A valid body separates its numbers (and its rows) by
    commas, so it has at most about twice as many commas as values.
    """
    most = max_batch * math.prod(input_shape)
    commas = body.count(b",")
    if commas > 2 * most + 4096:
        raise BadInput(
            f"request body holds some {commas:,} values; {max_batch} images of this model (the most a request "
            f"may send) hold {most:,}: split it."
        )


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


def view(plane: DataPlane, request: Request) -> ModelView:
    """The model version the request's path names (`{name}`, and `{version}` when given); nothing held."""
    return plane.view(request.path_params["name"], request.path_params.get("version"))


def b64_bytes(value: dict, label: str) -> bytes:
    """The image bytes of {"b64": "<png or jpeg bytes>"}."""
    if not isinstance(value.get("b64"), str):
        raise BadInput(f'{label}: expected {{"b64": "<base64 image bytes>"}}.')
    try:
        return base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise BadInput(f"{label}: b64 is not valid base64.") from None


@dataclass
class Decoding:
    """A request's encoded images, their headers read and the pixel limits checked: `run` decodes them, and
    `cancel` stops it before the next image (a request that timed out decodes nothing more)."""

    encoded: dict[int, bytes]
    label: Callable[[int], str]
    size: tuple[int, int]
    channels: int
    per_image: int
    pixels: int  # what decoding them costs, in pixels (a progressive JPEG's once per SCANS_PER_DECODE scans)
    cancelled: threading.Event = field(default_factory=threading.Event)

    @property
    def small(self) -> bool:
        """Cheap enough to decode on the event loop (under a millisecond)."""
        return self.pixels <= INLINE_DECODE_PIXELS

    def run(self) -> dict[int, np.ndarray]:
        """The decoded images by index; NotReady once cancelled."""
        decoded = {}
        for i, data in self.encoded.items():
            if self.cancelled.is_set():
                raise NotReady("decoding the images was stopped: the request timed out.")
            decoded[i] = decode_image(data, self.label(i), self.size, self.channels, max_pixels=self.per_image)
        return decoded

    def cancel(self) -> None:
        """Decode no further image."""
        self.cancelled.set()


def plan_decoding(
    encoded: dict[int, bytes], model: Model, limits: Limits, label: Callable[[int], str] = "instances[{}]".format
) -> Decoding:
    """A request's images, to decode within the pixel limits; nothing decoded yet.

    Every header is read first: an image over the per-image limit, or images that cost
    more than the request's total, are refused before any pixel is decoded. `label(i)`
    names image i in an error.
    """
    per_image = limits.image_pixel_limit(model.info.input_shape)
    cost = 0
    for i, data in encoded.items():
        pixels, passes = read_header(data, label(i))
        if pixels > per_image:
            raise BadInput(f"{label(i)}: {pixels:,} pixels exceeds the limit of {per_image:,}; send it smaller.")
        cost += pixels * -(-passes // SCANS_PER_DECODE)
    budget = REQUEST_PIXELS_FACTOR * per_image
    if cost > budget:
        raise BadInput(
            f"the images of this request declare {cost:,} pixels (a progressive JPEG's once per "
            f"{SCANS_PER_DECODE} scans); the limit is {budget:,}; split it."
        )
    size, channels = model.info.input_shape[:2], model.info.channels
    return Decoding(encoded, label, size, channels, per_image, cost)


async def decode(plane: DataPlane, decoding: Decoding) -> dict[int, np.ndarray]:
    """`decoding`'s images: on the event loop when small, else in a thread under the timeout, stopped by it."""
    if decoding.small:
        return decoding.run()
    return await plane.in_thread(decoding.run, "decoding the images", on_timeout=decoding.cancel)


def holds_booleans(body: bytes) -> bool:
    """Whether a JSON body has a true or false anywhere (then its pixel data is checked for them)."""
    return b"true" in body or b"false" in body


def as_array(value, label: str, check_booleans: bool = True) -> np.ndarray:
    """Nested JSON lists -> a numeric array, or BadInput for ragged, non-numeric or boolean data.

    `check_booleans=False` when the body holds no true/false at all (see holds_booleans).
    """
    if isinstance(value, list) and not check_booleans:
        try:  # a flat list of integers 0..255, the usual v2 `data`: 6 us instead of numpy's 21
            return np.frombuffer(bytes(value), np.uint8)
        except (TypeError, ValueError):
            pass  # anything else: numpy below, and its checks
    try:
        booleans = check_booleans and _has_boolean(value)
    except RecursionError:
        raise BadInput(f"{label} nests too deeply.") from None
    if booleans:
        raise BadInput(f"{label} must hold numbers 0..255, got true or false.")
    try:
        array = np.asarray(value)
    except ValueError:
        raise BadInput(f"{label} is ragged: every image must have the same shape.") from None
    except RecursionError:
        raise BadInput(f"{label} nests too deeply.") from None
    if array.dtype == object or array.dtype.kind in "USb":
        got = {"U": "text", "S": "text", "b": "true or false"}.get(array.dtype.kind, "nulls or mixed values")
        raise BadInput(f"{label} must hold numbers 0..255, got {got}.")
    return array


def _has_boolean(value) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, list):
        return any(_has_boolean(v) for v in value) if value and isinstance(value[0], list) else bool in map(type, value)
    return False
