"""The Open Inference Protocol (v2, KServe/Triton/MLServer): health, model metadata, infer.

GET  /v2/health/live, /v2/health/ready, /v2
GET  /v2/models/NAME, /v2/models/NAME/ready
POST /v2/models/NAME/infer   {"inputs": [{"name": "images", "shape": [N,H,W,C],
                                          "datatype": "UINT8", "data": [...]}]}
"""

from __future__ import annotations

import math
from collections.abc import Awaitable

from serve.dataplane import DataPlane
from serve.errors import BadInput, NotReady
from serve.http_common import (
    MODEL_VERSION,
    Request,
    Response,
    as_array,
    holds_booleans,
    infer,
    json_response,
    model_name,
)
from serve.limits import Limits
from serve.model import Model

_NUMERIC = {"UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"}


def _model_metadata(name: str, model: Model) -> dict:
    info = model.info
    return {
        "name": name,
        "versions": [MODEL_VERSION],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": info.input_name, "datatype": "UINT8", "shape": [-1, *info.input_shape]}],
        "outputs": [{"name": info.output_name, "datatype": "FP32", "shape": [-1, len(info.classes)]}],
        "parameters": {
            "classes": list(info.classes),
            "task": info.task,
            "dataset": info.dataset,
            # The model card, from the file's kerasreg metadata: what the page shows beside its predictions.
            **{key: info.properties.get(f"kerasreg.{key}") for key in ("metrics", "parity", "input", "templates")},
        },
    }


def _input_tensor(body: dict, input_name: str, check_booleans: bool = True):
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise BadInput(f'"inputs" must be a list with one tensor named "{input_name}".')
    tensor = inputs[0]
    if tensor.get("name") != input_name:
        raise BadInput(f'input tensor is named {tensor.get("name")!r}; expected "{input_name}".')
    datatype = tensor.get("datatype")
    if not isinstance(datatype, str) or datatype not in _NUMERIC:
        raise BadInput(f'"datatype" {datatype!r} is not supported; send UINT8 pixel values.')
    shape = tensor.get("shape")
    # type() rather than isinstance: JSON's true is a bool, and a bool is an int to Python.
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise BadInput('"shape" must be a list of non-negative integers, e.g. [N, H, W, C].')
    data = as_array(tensor.get("data"), '"data"', check_booleans)
    if data.size != math.prod(shape):
        raise BadInput(f'"data" holds {data.size} values but shape {shape} needs {math.prod(shape)}.')
    return data.reshape(shape)


def register(router, plane: DataPlane, limits: Limits) -> None:
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

    def model_metadata(request: Request) -> Response:
        name = model_name(request)
        return json_response(_model_metadata(name, plane.model(name)))

    def model_ready(request: Request) -> Response:
        name = model_name(request)
        plane.model(name)
        return json_response({"name": name, "ready": plane.ready()})

    def infer_endpoint(request: Request) -> Response | Awaitable[Response]:
        name = model_name(request)
        model = plane.model(name)
        body = request.json()
        images = plane.batch(model, _input_tensor(body, model.info.input_name, holds_booleans(request.body)))

        def respond(probabilities) -> Response:
            output = {
                "name": model.info.output_name,
                "datatype": "FP32",
                "shape": list(probabilities.shape),
                "data": probabilities.reshape(-1),
            }
            response = {"model_name": name, "model_version": MODEL_VERSION, "outputs": [output]}
            if "id" in body:
                response["id"] = body["id"]
            return json_response(response)

        return infer(model, images, limits, respond)

    router.add("/v2/health/live", {"GET": live})
    router.add("/v2/health/ready", {"GET": ready})
    router.add("/v2", {"GET": server_metadata})
    for base in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        router.add(base, {"GET": model_metadata})
        router.add(base + "/ready", {"GET": model_ready})
        router.add(base + "/infer", {"POST": infer_endpoint})
