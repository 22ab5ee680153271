"""What the HTTP protocols share: requests and responses, JSON bodies, pixel values in JSON.

An endpoint is `async def endpoint(plane, request) -> Response`: it takes a
`Request` (its body already read, within the limits, by the engine's adapter,
serve/server/rsgi_adapter.py), parses it, asks the data plane, and formats the answer. It
raises a `ServeError` for anything the client got wrong, and serve/protocols/routes.py turns
that into `{"error": ...}`.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson

from serve.errors import BadInput
from serve.plane.dataplane import DataPlane, ModelView

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
    """The model version the request's path names (`{name}`, and `{version}` when given), to describe; nothing
    held (an inference takes its version in the data plane's `infer`)."""
    return plane.describe(request.path_params["name"], request.path_params.get("version"))


def b64_bytes(value: dict, label: str) -> bytes:
    """The image bytes of {"b64": "<png or jpeg bytes>"}."""
    if not isinstance(value.get("b64"), str):
        raise BadInput(f'{label}: expected {{"b64": "<base64 image bytes>"}}.')
    try:
        return base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise BadInput(f"{label}: b64 is not valid base64.") from None
