"""The Open Inference Protocol (v2, KServe/Triton/MLServer): health, model metadata, infer.

GET  /v2/health/live, /v2/health/ready, /v2
GET  /v2/models/NAME[/versions/N], /v2/models/NAME[/versions/N]/ready
POST /v2/models/NAME[/versions/N]/infer   {"inputs": [{"name": "images", "shape": [N,H,W,C],
                                                      "datatype": "UINT8", "data": [...]}]}
Without a version the newest answers, and the response names it (`model_version`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Awaitable

import numpy as np

from serve.dataplane import DataPlane
from serve.errors import BadInput, NotReady
from serve.http_common import Request, Response, as_array, holds_booleans, json_response, resolve
from serve.model import Model

# Integer datatypes and the values each can hold; the float ones take any number.
_INTEGER_RANGES = {
    **{f"UINT{bits}": (0, 2**bits - 1) for bits in (8, 16, 32, 64)},
    **{f"INT{bits}": (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) for bits in (8, 16, 32, 64)},
}
_FLOATS = {"FP16", "FP32", "FP64"}
# The model card, from the file's kerasreg metadata: what the page shows beside its predictions.
CARD_PARAMETERS = ("metrics", "parity", "input", "templates")


def model_metadata(plane: DataPlane, name: str, version: str | None = None) -> dict:
    """The v2 model metadata of `name` (its newest version, or `version`), with every version's state."""
    served = plane.resolve(name, version)
    try:
        model = served.model
        info = model.info
        states = plane.repository.states(name)
        return {
            "name": name,
            "versions": [str(s["version"]) for s in states if s["state"] == "AVAILABLE"],
            "platform": model.session.platform,
            "inputs": [{"name": info.input_name, "datatype": "UINT8", "shape": [-1, *info.input_shape]}],
            "outputs": [{"name": info.output_name, "datatype": "FP32", "shape": [-1, len(info.classes)]}],
            "parameters": {
                "version": str(served.version),
                "version_states": [{**s, "version": str(s["version"])} for s in states],
                "classes": list(info.classes),
                "task": info.task,
                "dataset": info.dataset,
                **{key: info.meta(key) for key in CARD_PARAMETERS},
            },
        }
    finally:
        plane.finish(served)


def _check_datatype(data: np.ndarray, datatype: str) -> None:
    """The values must be what `datatype` holds: integers within its range for the integer types."""
    if datatype in _FLOATS:
        return
    if data.dtype.kind not in "iu":
        raise BadInput(f'"data" holds non-integer values but "datatype" {datatype} takes integers.')
    if _may_overflow(data.dtype, datatype) and data.size:
        low, high = _INTEGER_RANGES[datatype]
        if data.min() < low or data.max() > high:
            raise BadInput(f'"data" holds {data.min()}..{data.max()}, outside {datatype}\'s range {low}..{high}.')


@functools.lru_cache(maxsize=64)
def _may_overflow(dtype: np.dtype, datatype: str) -> bool:
    """Whether values of `dtype` can fall outside `datatype`'s range (uint8 data sent as UINT8 cannot)."""
    low, high = _INTEGER_RANGES[datatype]
    bounds = np.iinfo(dtype)
    return bounds.min < low or bounds.max > high


def _input_tensor(body: dict, input_name: str, check_booleans: bool = True):
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise BadInput(f'"inputs" must be a list with one tensor named "{input_name}".')
    tensor = inputs[0]
    if tensor.get("name") != input_name:
        raise BadInput(f'input tensor is named {tensor.get("name")!r}; expected "{input_name}".')
    datatype = tensor.get("datatype")
    if not isinstance(datatype, str) or (datatype not in _INTEGER_RANGES and datatype not in _FLOATS):
        raise BadInput(f'"datatype" {datatype!r} is not supported; send UINT8 pixel values.')
    shape = tensor.get("shape")
    # type() rather than isinstance: JSON's true is a bool, and a bool is an int to Python.
    if not isinstance(shape, list) or not shape or not all(type(d) is int and d >= 0 for d in shape):
        raise BadInput('"shape" must be a list of non-negative integers, e.g. [N, H, W, C].')
    data = as_array(tensor.get("data"), '"data"', check_booleans)
    if data.size != math.prod(shape):
        raise BadInput(f'"data" holds {data.size} values but shape {shape} needs {math.prod(shape)}.')
    _check_datatype(data, datatype)
    return data.reshape(shape)


def register(router, plane: DataPlane) -> None:
    """Add the v2 routes over `plane` to `router`."""

    def live(request: Request) -> Response:
        return json_response({"live": plane.live()})

    def ready(request: Request) -> Response:
        if not plane.ready():
            raise NotReady("the server is not ready: no model is loaded, or it is shutting down.")
        return json_response({"ready": True})

    def server_metadata(request: Request) -> Response:
        from serve import __name__ as package
        from serve import __version__

        return json_response({"name": package, "version": __version__, "extensions": []})

    def metadata(request: Request) -> Response:
        params = request.path_params
        return json_response(model_metadata(plane, params["name"], params.get("version")))

    def model_ready(request: Request) -> Response:
        served = resolve(plane, request)
        return json_response({"name": served.name, "ready": plane.ready()})

    def infer_endpoint(request: Request) -> Response | Awaitable[Response]:
        served = resolve(plane, request)
        model: Model = served.model
        body = request.json()
        images = plane.batch(model, _input_tensor(body, model.info.input_name, holds_booleans(request.body)))

        def respond(probabilities) -> Response:
            output = {
                "name": model.info.output_name,
                "datatype": "FP32",
                "shape": list(probabilities.shape),
                "data": probabilities.reshape(-1),
            }
            response = {"model_name": served.name, "model_version": str(served.version), "outputs": [output]}
            if "id" in body:
                response["id"] = body["id"]
            return json_response(response)

        return plane.infer(served, images, respond)

    router.add("/v2/health/live", {"GET": live})
    router.add("/v2/health/ready", {"GET": ready})
    router.add("/v2", {"GET": server_metadata})
    for base in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        router.add(base, {"GET": metadata})
        router.add(base + "/ready", {"GET": model_ready})
        router.add(base + "/infer", {"POST": infer_endpoint})
