"""TensorFlow Serving's REST API (v1): status, metadata and predict, as TF Serving answers them.

    GET  /v1/models/NAME             every version's state   (each also under /v1/models/NAME/versions/N)
    GET  /v1/models/NAME/metadata    signature
    POST /v1/models/NAME:predict     {"instances": [...]} -> {"predictions": [...], "model_version": "N"}
                                     {"inputs": ...}      -> {"outputs": [...], "model_version": "N"}
An instance is an image as nested lists [H][W][C], {"images": ...}, or {"b64": "..."}.
Without a version the newest answers; `model_version` names the one that did.
The routes are registered in serve/protocols/routes.py's table.
"""

from __future__ import annotations

import numpy as np

from serve.errors import BadInput
from serve.plane.dataplane import DataPlane, InferenceRequest, Parsed, version_number
from serve.plane.image_budget import plan_decoding
from serve.protocols.http_messages import (
    Request,
    Response,
    b64_bytes,
    check_value_count,
    json_response,
    parse_json,
    view,
)
from serve.protocols.json_pixels import as_array, holds_booleans, parse_instances
from serve.runtime.model import Model


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


def _images(body: dict, model: Model, check_booleans: bool, plane: DataPlane) -> Parsed:
    """The request's images (or its b64 images still to decode, and how to make the batch with them), and its
    answer's key."""
    input_name = model.info.input_name
    if ("instances" in body) == ("inputs" in body):
        raise BadInput('request must have exactly one of "instances" (row format) or "inputs" (columnar format).')
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise BadInput('"instances" must be a list of images.')
        plane.check_batch_size(len(instances))  # before decoding anything
        encoded: dict[int, bytes] = {}
        rows = [_instance(v, i, model, encoded) for i, v in enumerate(instances)]

        def assemble(images: dict[int, np.ndarray]) -> np.ndarray:
            return _stack([images.get(i, row) for i, row in enumerate(rows)], check_booleans)

        if not encoded:
            return Parsed(assemble({}), "predictions")
        return Parsed(plan_decoding(encoded, model, plane.limits, assemble=assemble), "predictions")
    inputs = body["inputs"]
    if isinstance(inputs, dict):
        if set(inputs) != {input_name}:
            raise BadInput(f'"inputs" must name exactly the input "{input_name}", got {sorted(inputs)}.')
        inputs = inputs[input_name]
    return Parsed(as_array(inputs, '"inputs"', check_booleans), "outputs")


def _parse(body: bytes, model: Model, plane: DataPlane) -> Parsed:
    """A predict body's images (or the b64 ones still to decode) and its answer's key."""
    check_value_count(body, model.info.input_shape, plane.max_batch)
    images = parse_instances(body, model.info.input_shape, plane.max_batch)
    if images is not None:
        return Parsed(images, "predictions")
    # Anything but plain nested pixel lists: the general JSON path.
    return _images(parse_json(body), model, holds_booleans(body), plane)


async def status(plane: DataPlane, request: Request) -> Response:
    """Every version's state (or the one the path names), as TF Serving's model status."""
    params = request.path_params
    states = plane.repository.states(params["name"])
    if "version" in params:
        number = version_number(params["name"], params["version"])  # ModelNotFound for text that is no version
        states = [s for s in states if s["version"] == number]
        if not states:
            view(plane, request)  # raises ModelNotFound, naming the versions there are
    return json_response({"model_version_status": [_version_status(s) for s in states]})


async def metadata(plane: DataPlane, request: Request) -> Response:
    """The signature of the version the path names."""
    found = view(plane, request)
    return json_response(
        {
            "model_spec": {"name": found.name, "signature_name": "", "version": str(found.version)},
            "metadata": {"signature_def": {"signature_def": {"serving_default": _signature(found.model)}}},
        },
        labels=found.labels,
    )


async def predict(plane: DataPlane, request: Request) -> Response:
    """`instances` or `inputs` -> `predictions` or `outputs`, with the version that answered."""
    name, version = request.path_params["name"], request.path_params.get("version")
    asked = InferenceRequest(name, version, lambda found: _parse(request.body, found.model, plane), len(request.body))
    answer = await plane.infer(asked)
    return json_response({answer.context: answer.probabilities, "model_version": str(answer.version)},
                         labels=answer.labels)  # fmt: skip
