"""TensorFlow Serving's REST API (v1): status, metadata and predict, as TF Serving answers them.

    GET  /v1/models/NAME             model status      (each also under /v1/models/NAME/versions/1)
    GET  /v1/models/NAME/metadata    signature
    POST /v1/models/NAME:predict     {"instances": [...]} -> {"predictions": [...]}
                                     {"inputs": ...}      -> {"outputs": [...]}
An instance is an image as nested lists [H][W][C], {"images": ...}, or {"b64": "..."}.
"""

from __future__ import annotations

from collections.abc import Awaitable

import numpy as np

from serve.dataplane import DataPlane
from serve.errors import BadInput
from serve.http_common import (
    MODEL_VERSION,
    Request,
    Response,
    as_array,
    b64_bytes,
    decode_images,
    holds_booleans,
    in_thread,
    infer,
    json_response,
    model_name,
    parse_json,
)
from serve.json_pixels import parse_instances
from serve.limits import Limits
from serve.model import Model

_STATUS = {
    "model_version_status": [
        {"version": MODEL_VERSION, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    ]
}


def _signature(model: Model) -> dict:
    info = model.info
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


def _instance(value, index: int, model: Model, encoded: dict[int, bytes]):
    label = f"instances[{index}]"
    if isinstance(value, dict):
        if "b64" in value:
            encoded[index] = b64_bytes(value, label)
            return None  # decoded below, once every image's size is known
        if model.info.input_name in value:
            return value[model.info.input_name]
        raise BadInput(f'{label}: expected an image array, {{"{model.info.input_name}": ...}} or {{"b64": ...}}.')
    return value


def _stack(rows: list, check_booleans: bool) -> np.ndarray:
    arrays = [as_array(r, f"instances[{i}]", check_booleans) for i, r in enumerate(rows)]
    if len(arrays) == 1:
        return arrays[0][np.newaxis]
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise BadInput(f"instances have different shapes: {sorted(shapes)}.")
    return np.stack(arrays) if arrays else np.zeros((0,), np.uint8)


def _images(body: dict, model: Model, check_booleans: bool, max_batch: int, limits: Limits):
    """The request's images and its answer's key; or, for images to decode in a thread, a job giving them."""
    input_name = model.info.input_name
    if ("instances" in body) == ("inputs" in body):
        raise BadInput('request must have exactly one of "instances" (row format) or "inputs" (columnar format).')
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise BadInput('"instances" must be a list of images.')
        if len(instances) > max_batch:  # before decoding anything
            raise BadInput(f"batch of {len(instances)} images exceeds this server's limit of {max_batch}; split it.")
        encoded: dict[int, bytes] = {}
        rows = [_instance(v, i, model, encoded) for i, v in enumerate(instances)]
        decoded = decode_images(encoded, model, limits) if encoded else {}

        def assemble(images: dict[int, np.ndarray]) -> np.ndarray:
            return _stack([images.get(i, row) for i, row in enumerate(rows)], check_booleans)

        if callable(decoded):
            return (lambda: assemble(decoded())), "predictions"
        return assemble(decoded), "predictions"
    inputs = body["inputs"]
    if isinstance(inputs, dict):
        if set(inputs) != {input_name}:
            raise BadInput(f'"inputs" must name exactly the input "{input_name}", got {sorted(inputs)}.')
        inputs = inputs[input_name]
    return as_array(inputs, '"inputs"', check_booleans), "outputs"


def register(router, plane: DataPlane, limits: Limits) -> None:
    """Add the v1 routes over `plane` to `router`."""

    def status(request: Request) -> Response:
        plane.model(model_name(request))
        return json_response(_STATUS)

    def metadata(request: Request) -> Response:
        name = model_name(request)
        return json_response(
            {
                "model_spec": {"name": name, "signature_name": "", "version": MODEL_VERSION},
                "metadata": {"signature_def": {"signature_def": {"serving_default": _signature(plane.model(name))}}},
            }
        )

    def predict(request: Request) -> Response | Awaitable[Response]:
        model = plane.model(model_name(request))
        images = parse_instances(request.body, model.info.input_shape, plane.max_batch)
        key = "predictions"
        if images is None:  # anything but plain nested pixel lists: the general JSON path
            body = parse_json(request.body)
            images, key = _images(body, model, holds_booleans(request.body), plane.max_batch, limits)
        if callable(images):  # large images: decode them off the event loop, then infer
            return _decode_then_infer(model, images, key)
        return infer(model, plane.batch(model, images), limits, lambda p: json_response({key: p}))

    async def _decode_then_infer(model: Model, decode, key: str) -> Response:
        images = await in_thread(decode, limits, "decoding the images")
        result = infer(model, plane.batch(model, images), limits, lambda p: json_response({key: p}))
        return result if isinstance(result, Response) else await result

    for base in ("/v1/models/{name}", "/v1/models/{name}/versions/{version}"):
        router.add(base + ":predict", {"POST": predict})
        router.add(base + "/metadata", {"GET": metadata})
        router.add(base, {"GET": status})
