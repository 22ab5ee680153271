"""TensorFlow Serving's REST API (v1): status, metadata and predict, as TF Serving answers them.

    GET  /v1/models/NAME             every version's state   (each also under /v1/models/NAME/versions/N)
    GET  /v1/models/NAME/metadata    signature
    POST /v1/models/NAME:predict     {"instances": [...]} -> {"predictions": [...], "model_version": "N"}
                                     {"inputs": ...}      -> {"outputs": [...], "model_version": "N"}
An instance is an image as nested lists [H][W][C], {"images": ...}, or {"b64": "..."}.
Without a version the newest answers; `model_version` names the one that did.
"""

from __future__ import annotations

from collections.abc import Awaitable

import numpy as np

from serve.dataplane import DataPlane
from serve.errors import BadInput
from serve.http_common import (
    Request,
    Response,
    as_array,
    b64_bytes,
    decode_images,
    holds_booleans,
    json_response,
    parse_json,
    resolve,
)
from serve.json_pixels import parse_instances
from serve.limits import Limits
from serve.model import Model
from serve.repository import Served


def _version_status(state: dict) -> dict:
    """One version's entry in TF Serving's model status: AVAILABLE, UNLOADING, or END with the error."""
    failed = state["state"] == "FAILED"
    return {
        "version": str(state["version"]),
        "state": "END" if failed else state["state"],
        "status": {"error_code": "UNKNOWN" if failed else "OK", "error_message": state["reason"]},
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


def register(router, plane: DataPlane) -> None:
    """Add the v1 routes over `plane` to `router`."""
    limits = plane.limits

    def status(request: Request) -> Response:
        params = request.path_params
        states = plane.repository.states(params["name"])
        if "version" in params:
            states = [s for s in states if str(s["version"]) == params["version"]]
            if not states:
                resolve(plane, request)  # raises ModelNotFound, naming the versions there are
        return json_response({"model_version_status": [_version_status(s) for s in states]})

    def metadata(request: Request) -> Response:
        served = resolve(plane, request)
        return json_response(
            {
                "model_spec": {"name": served.name, "signature_name": "", "version": str(served.version)},
                "metadata": {"signature_def": {"signature_def": {"serving_default": _signature(served.model)}}},
            }
        )

    def predict(request: Request) -> Response | Awaitable[Response]:
        served = resolve(plane, request)
        model = served.model
        images = parse_instances(request.body, model.info.input_shape, plane.max_batch)
        key = "predictions"
        if images is None:  # anything but plain nested pixel lists: the general JSON path
            body = parse_json(request.body)
            images, key = _images(body, model, holds_booleans(request.body), plane.max_batch, limits)
        if callable(images):  # large images: decode them off the event loop, then infer
            return _decode_then_infer(served, images, key)
        return plane.infer(served, plane.batch(model, images), _responder(served, key))

    async def _decode_then_infer(served: Served, decode, key: str) -> Response:
        images = await plane.in_thread(decode, "decoding the images")
        result = plane.infer(served, plane.batch(served.model, images), _responder(served, key))
        return result if isinstance(result, Response) else await result

    def _responder(served: Served, key: str):
        version = str(served.version)
        return lambda probabilities: json_response({key: probabilities, "model_version": version})

    for base in ("/v1/models/{name}", "/v1/models/{name}/versions/{version}"):
        router.add(base + ":predict", {"POST": predict})
        router.add(base + "/metadata", {"GET": metadata})
        router.add(base, {"GET": status})
