"""The Open Inference Protocol (v2, KServe/Triton/MLServer): health, model metadata, infer.

GET  /v2/health/live, /v2/health/ready, /v2
GET  /v2/models/NAME, /v2/models/NAME/ready
POST /v2/models/NAME/infer   {"inputs": [{"name": "images", "shape": [N,H,W,C],
                                          "datatype": "UINT8", "data": [...]}]}
"""

from __future__ import annotations

import math

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from serve.dataplane import DataPlane
from serve.errors import BadInput, NotReady
from serve.http_common import MODEL_VERSION, Limits, as_array, infer, model_name, read_json

_NUMERIC = {"UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"}


def _model_metadata(plane: DataPlane, name: str) -> dict:
    info = plane.model(name).info
    return {
        "name": name,
        "versions": [MODEL_VERSION],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": info.input_name, "datatype": "UINT8", "shape": [-1, *info.input_shape]}],
        "outputs": [{"name": info.output_name, "datatype": "FP32", "shape": [-1, len(info.classes)]}],
        "parameters": {"classes": list(info.classes), "task": info.task, "dataset": info.dataset},
    }


def _input_tensor(body: dict, input_name: str):
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise BadInput(f'"inputs" must be a list with one tensor named "{input_name}".')
    tensor = inputs[0]
    if tensor.get("name") != input_name:
        raise BadInput(f'input tensor is named {tensor.get("name")!r}; expected "{input_name}".')
    if tensor.get("datatype") not in _NUMERIC:
        raise BadInput(f"datatype {tensor.get('datatype')!r} is not supported; send UINT8 pixel values.")
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise BadInput('"shape" must be a list of non-negative integers, e.g. [N, H, W, C].')
    data = as_array(tensor.get("data"), '"data"')
    if data.size != math.prod(shape):
        raise BadInput(f'"data" holds {data.size} values but shape {shape} needs {math.prod(shape)}.')
    return data.reshape(shape)


def register(plane: DataPlane, limits: Limits) -> list[Route]:
    """The v2 routes over `plane`."""

    async def live(request: Request) -> JSONResponse:
        return JSONResponse({"live": plane.live()})

    async def ready(request: Request) -> JSONResponse:
        if not plane.ready():
            raise NotReady("no model is loaded yet.")
        return JSONResponse({"ready": True})

    async def server_metadata(request: Request) -> JSONResponse:
        from serve import __name__ as package
        from serve import __version__

        return JSONResponse({"name": package, "version": __version__, "extensions": []})

    async def model_metadata(request: Request) -> JSONResponse:
        return JSONResponse(_model_metadata(plane, model_name(request)))

    async def model_ready(request: Request) -> JSONResponse:
        name = model_name(request)
        plane.model(name)
        return JSONResponse({"name": name, "ready": True})

    async def infer_endpoint(request: Request) -> JSONResponse:
        name = model_name(request)
        info = plane.model(name).info
        body = await read_json(request, limits)
        images = _input_tensor(body, info.input_name)
        probabilities = await infer(plane, name, images, limits)
        response = {
            "model_name": name,
            "model_version": MODEL_VERSION,
            "outputs": [
                {
                    "name": info.output_name,
                    "datatype": "FP32",
                    "shape": list(probabilities.shape),
                    "data": probabilities.reshape(-1).tolist(),
                }
            ],
        }
        if "id" in body:
            response["id"] = body["id"]
        return JSONResponse(response)

    routes = [
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route("/v2", server_metadata, methods=["GET"]),
    ]
    for base in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        routes += [
            Route(base, model_metadata, methods=["GET"]),
            Route(base + "/ready", model_ready, methods=["GET"]),
            Route(base + "/infer", infer_endpoint, methods=["POST"]),
        ]
    return routes
