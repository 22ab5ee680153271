"""TensorFlow Serving's REST API (v1): status, metadata and predict, as TF Serving answers them.

    GET  /v1/models/NAME             model status      (each also under /v1/models/NAME/versions/1)
    GET  /v1/models/NAME/metadata    signature
    POST /v1/models/NAME:predict     {"instances": [...]} -> {"predictions": [...]}
                                     {"inputs": ...}      -> {"outputs": [...]}
An instance is an image as nested lists [H][W][C], {"images": ...}, or {"b64": "..."}.
"""

from __future__ import annotations

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from serve.dataplane import DataPlane
from serve.errors import BadInput
from serve.http_common import MODEL_VERSION, Limits, as_array, b64_image, infer, model_name, read_json


def _signature(plane: DataPlane, name: str) -> dict:
    info = plane.model(name).info
    h, w, c = info.input_shape

    def tensor(tensor_name, dtype, dims):
        return {
            "dtype": dtype,
            "tensor_shape": {"dim": [{"size": str(d), "name": ""} for d in dims], "unknown_rank": False},
            "name": tensor_name,
        }

    return {
        "inputs": {info.input_name: tensor(info.input_name, "DT_UINT8", [-1, h, w, c])},
        "outputs": {info.output_name: tensor(info.output_name, "DT_FLOAT", [-1, len(info.classes)])},
        "method_name": "tensorflow/serving/predict",
    }


def _instance(value, index: int, plane: DataPlane, name: str, input_name: str):
    label = f"instances[{index}]"
    if isinstance(value, dict):
        if "b64" in value:
            return b64_image(value, plane, name, label)
        if input_name in value:
            value = value[input_name]
        else:
            raise BadInput(f'{label}: expected an image array, {{"{input_name}": ...}} or {{"b64": ...}}.')
    return value


def _images(body: dict, plane: DataPlane, name: str) -> tuple[np.ndarray, str]:
    input_name = plane.model(name).info.input_name
    if ("instances" in body) == ("inputs" in body):
        raise BadInput('request must have exactly one of "instances" (row format) or "inputs" (columnar format).')
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise BadInput('"instances" must be a list of images.')
        rows = [_instance(v, i, plane, name, input_name) for i, v in enumerate(instances)]
        arrays = [as_array(r, f"instances[{i}]") for i, r in enumerate(rows)]
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise BadInput(f"instances have different shapes: {sorted(shapes)}.")
        return (np.stack(arrays) if arrays else np.zeros((0,), np.uint8)), "predictions"
    inputs = body["inputs"]
    if isinstance(inputs, dict):
        if set(inputs) != {input_name}:
            raise BadInput(f'"inputs" must name exactly the input "{input_name}", got {sorted(inputs)}.')
        inputs = inputs[input_name]
    return as_array(inputs, '"inputs"'), "outputs"


def register(plane: DataPlane, limits: Limits) -> list[Route]:
    """The v1 routes over `plane`."""

    async def status(request: Request) -> JSONResponse:
        plane.model(model_name(request))
        return JSONResponse(
            {
                "model_version_status": [
                    {
                        "version": MODEL_VERSION,
                        "state": "AVAILABLE",
                        "status": {"error_code": "OK", "error_message": ""},
                    }
                ]
            }
        )

    async def metadata(request: Request) -> JSONResponse:
        name = model_name(request)
        return JSONResponse(
            {
                "model_spec": {"name": name, "signature_name": "", "version": MODEL_VERSION},
                "metadata": {"signature_def": {"signature_def": {"serving_default": _signature(plane, name)}}},
            }
        )

    async def predict(request: Request) -> JSONResponse:
        name = model_name(request)
        plane.model(name)
        body = await read_json(request, limits)
        images, key = _images(body, plane, name)
        probabilities = await infer(plane, name, images, limits)
        return JSONResponse({key: probabilities.tolist()})

    routes = []
    for base in ("/v1/models/{name}", "/v1/models/{name}/versions/{version}"):
        routes += [
            Route(base + ":predict", predict, methods=["POST"]),
            Route(base + "/metadata", metadata, methods=["GET"]),
            Route(base, status, methods=["GET"]),
        ]
    return routes
