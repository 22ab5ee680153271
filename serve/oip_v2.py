"""The Open Inference Protocol (v2, KServe/Triton/MLServer): health, model metadata, infer.

GET  /v2/health/live, /v2/health/ready, /v2
GET  /v2/models/NAME[/versions/N], /v2/models/NAME[/versions/N]/ready
POST /v2/models/NAME[/versions/N]/infer   {"inputs": [{"name": "images", "shape": [N,H,W,C],
                                                      "datatype": "UINT8", "data": [...]}]}
Without a version the newest answers, and the response names it (`model_version`).
The routes are registered in serve/http_app.py's table.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from serve.dataplane import DataPlane
from serve.errors import BadInput, NotReady
from serve.http_common import (
    Request,
    Response,
    as_array,
    check_value_count,
    holds_booleans,
    json_response,
    shown,
    view,
)
from serve.model import ModelInfo

# Integer datatypes and the values each can hold; the float ones take any number.
_INTEGER_RANGES = {
    **{f"UINT{bits}": (0, 2**bits - 1) for bits in (8, 16, 32, 64)},
    **{f"INT{bits}": (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) for bits in (8, 16, 32, 64)},
}
_FLOATS = {"FP16", "FP32", "FP64"}
EXTENSIONS = ()  # the protocol's extensions served (`GET /v2`)
# The model card, from the file's kerasreg metadata: what the page shows beside its predictions.
CARD_PARAMETERS = ("metrics", "parity", "input", "templates")


def model_metadata(plane: DataPlane, name: str, version: str | None = None) -> tuple[dict, tuple[str, str]]:
    """The v2 model metadata of `name` (its newest version, or `version`), with every version's state; its labels."""
    found = plane.view(name, version)
    info = found.info
    states = plane.repository.states(name)
    metadata = {
        "name": name,
        "versions": [str(s["version"]) for s in states if s["state"] == "AVAILABLE"],
        "platform": found.model.session.platform,
        "inputs": [{"name": info.input_name, "datatype": "UINT8", "shape": [-1, *info.input_shape]}],
        "outputs": [{"name": info.output_name, "datatype": "FP32", "shape": [-1, len(info.classes)]}],
        "parameters": {
            "version": str(found.version),
            "version_states": [{**s, "version": str(s["version"])} for s in states],
            "classes": list(info.classes),
            "task": info.task,
            "dataset": info.dataset,
            **{key: info.meta(key) for key in CARD_PARAMETERS},
        },
    }
    return metadata, found.labels


def _check_datatype(data: np.ndarray, datatype: str) -> None:
    """The values must be what `datatype` holds: integers within its range for the integer types."""
    if datatype in _FLOATS:
        return
    low, high = _INTEGER_RANGES[datatype]
    if data.dtype.kind not in "iu":
        # JSON parsers read integers past 64 bits as floats: 2**70 is out of range, not "not an integer".
        whole = data.dtype.kind == "f" and data.size and np.isfinite(data).all() and (data == np.rint(data)).all()
        if whole and (data.min() < low or data.max() > high):
            shown_range = f"{data.min():.0f}..{data.max():.0f}"
            raise BadInput(f'"data" holds {shown_range}, outside {datatype}\'s range {low}..{high}.')
        raise BadInput(f'"data" holds non-integer values but "datatype" {datatype} takes integers.')
    if _may_overflow(data.dtype, datatype) and data.size:
        if data.min() < low or data.max() > high:
            raise BadInput(f'"data" holds {data.min()}..{data.max()}, outside {datatype}\'s range {low}..{high}.')


@functools.lru_cache(maxsize=64)
def _may_overflow(dtype: np.dtype, datatype: str) -> bool:
    """Whether values of `dtype` can fall outside `datatype`'s range (uint8 data sent as UINT8 cannot)."""
    low, high = _INTEGER_RANGES[datatype]
    bounds = np.iinfo(dtype)
    return bounds.min < low or bounds.max > high


def _input_tensor(body: dict, info: ModelInfo, plane: DataPlane, check_booleans: bool = True) -> np.ndarray:
    """The one input tensor of a v2 request, its shape and size checked against the model before any conversion."""
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise BadInput(f'"inputs" must be a list with one tensor named "{info.input_name}".')
    tensor = inputs[0]
    if tensor.get("name") != info.input_name:
        raise BadInput(f'input tensor is named {shown(tensor.get("name"))}; expected "{info.input_name}".')
    datatype = tensor.get("datatype")
    if not isinstance(datatype, str) or (datatype not in _INTEGER_RANGES and datatype not in _FLOATS):
        raise BadInput(f'"datatype" {shown(datatype)} is not supported; send UINT8 pixel values.')
    shape = check_shape(tensor.get("shape"), info, plane)
    data = tensor.get("data")
    if isinstance(data, list) and data and not isinstance(data[0], list) and len(data) != math.prod(shape):
        raise BadInput(f'"data" holds {len(data)} values but shape {shape} needs {math.prod(shape)}.')
    data = as_array(data, '"data"', check_booleans)
    if data.size != math.prod(shape):
        raise BadInput(f'"data" holds {data.size} values but shape {shape} needs {math.prod(shape)}.')
    _check_datatype(data, datatype)
    return data.reshape(shape)


def check_shape(shape, info: ModelInfo, plane: DataPlane) -> list[int]:
    """A tensor's declared shape, checked before its data is read: non-negative integers holding images of the
    model, [N,H,W,C] or one image [H,W,C] (without the channel axis too, for one channel), N within the limit."""
    # type() rather than isinstance: JSON's true is a bool, and a bool is an int to Python.
    if not isinstance(shape, list) or not shape or not all(type(d) is int and d >= 0 for d in shape):
        raise BadInput('"shape" must be a list of non-negative integers, e.g. [N, H, W, C].')
    h, w, c = info.input_shape
    image_shapes = ([h, w, c], [h, w]) if c == 1 else ([h, w, c],)
    if shape in image_shapes:
        return shape  # one image, without the batch axis
    if shape[1:] not in image_shapes:
        expected = f"[N,{h},{w},{c}] or [{h},{w},{c}]"
        raise BadInput(f'"shape" {shape[:8]} does not hold images of this model; expected {expected}.')
    plane.check_batch_size(shape[0])
    return shape


async def live(plane: DataPlane, request: Request) -> Response:
    """The process is up."""
    return json_response({"live": plane.live()})


async def ready(plane: DataPlane, request: Request) -> Response:
    """A model is served and the server is not stopping; 503 otherwise."""
    if not plane.ready():
        raise NotReady("the server is not ready: no model is loaded, or it is shutting down.")
    return json_response({"ready": True})


async def server_metadata(plane: DataPlane, request: Request) -> Response:
    """The server's name, version and the protocol extensions it speaks."""
    from serve import __name__ as package
    from serve import __version__

    return json_response({"name": package, "version": __version__, "extensions": list(EXTENSIONS)})


async def metadata(plane: DataPlane, request: Request) -> Response:
    """The model's metadata, for the version the path names."""
    params = request.path_params
    found, labels = model_metadata(plane, params["name"], params.get("version"))
    return json_response(found, labels=labels)


async def model_ready(plane: DataPlane, request: Request) -> Response:
    """Whether the version the path names answers."""
    found = view(plane, request)
    return json_response({"name": found.name, "ready": plane.ready()}, labels=found.labels)


async def infer(plane: DataPlane, request: Request) -> Response:
    """A v2 inference over JSON: one UINT8 input tensor in, the probabilities out."""
    found = view(plane, request)
    check_value_count(request.body, found.info.input_shape, plane.max_batch)

    def parse() -> tuple[dict, np.ndarray]:
        body = request.json()
        return body, _input_tensor(body, found.info, plane, holds_booleans(request.body))

    body, images = await plane.off_loop(len(request.body), parse, "parsing")
    answer = await plane.infer(found.name, found.version, images)
    probabilities = answer.probabilities
    output = {
        "name": found.info.output_name,
        "datatype": "FP32",
        "shape": list(probabilities.shape),
        "data": probabilities.reshape(-1),
    }
    response = {"model_name": answer.name, "model_version": str(answer.version), "outputs": [output]}
    if "id" in body:
        response["id"] = body["id"]
    return json_response(response, labels=answer.labels)
