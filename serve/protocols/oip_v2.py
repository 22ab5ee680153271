"""The Open Inference Protocol (v2, KServe/Triton/MLServer): health, model metadata, infer.

GET  /v2/health/live, /v2/health/ready, /v2
GET  /v2/models/NAME[/versions/N], /v2/models/NAME[/versions/N]/ready
POST /v2/models/NAME[/versions/N]/infer   {"inputs": [{"name": "images", "shape": [N,H,W,C],
                                                      "datatype": "UINT8", "data": [...]}]}
An infer request may carry its tensor as raw bytes after a JSON header, and ask for
its answer that way (the binary tensor data extension: serve/protocols/v2_binary.py).
Without a version the newest answers, and the response names it (`model_version`).
The routes are registered in serve/protocols/routes.py's table; gRPC's ModelInfer
(serve/protocols/grpc/) shares the tensor checks (serve/protocols/v2_tensors.py).
"""

from __future__ import annotations

import math

import numpy as np

from serve.errors import BadInput, NotReady, shown
from serve.plane.dataplane import DataPlane
from serve.protocols import classification, v2_binary, v2_tensors
from serve.protocols.http_messages import (
    Request,
    Response,
    as_array,
    check_value_count,
    holds_booleans,
    json_response,
    parse_json,
    view,
)
from serve.runtime.model import ModelInfo

EXTENSIONS = ("binary_tensor_data", classification.EXTENSION)  # the protocol's extensions served (`GET /v2`)
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


def _input_tensor(
    body: dict, info: ModelInfo, plane: DataPlane, check_booleans: bool = True, binary: memoryview | None = None
) -> np.ndarray:
    """The one input tensor of a v2 request, its shape and size checked against the model before any conversion.

    `binary`: the bytes after a binary request's JSON header, which the tensor's `binary_data_size` takes.
    """
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise BadInput(f'"inputs" must be a list with one tensor named "{info.input_name}".')
    _check_request_fields(body)
    tensor = inputs[0]
    if "parameters" in tensor and not isinstance(tensor["parameters"], dict):
        raise BadInput('the input tensor\'s "parameters" must be an object.')
    sizes = v2_binary.binary_sizes(inputs, binary) if binary is not None else [None]
    if tensor.get("name") != info.input_name:
        raise BadInput(f'input tensor is named {shown(tensor.get("name"))}; expected "{info.input_name}".')
    datatype = v2_tensors.check_datatype_name(tensor.get("datatype"))
    shape = v2_tensors.check_shape(tensor.get("shape"), info, plane.check_batch_size)
    if sizes[0] is not None:
        if "data" in tensor:
            raise BadInput(f'the input tensor has both "data" and parameters.{v2_binary.BINARY_SIZE}; send one.')
        return v2_tensors.from_raw(binary, datatype, shape, "the input tensor's binary data")
    data = tensor.get("data")
    if isinstance(data, list) and data and not isinstance(data[0], list) and len(data) != math.prod(shape):
        raise BadInput(f'"data" holds {len(data)} values but shape {shape} needs {math.prod(shape)}.')
    data = as_array(data, '"data"', check_booleans)
    if data.size != math.prod(shape):
        raise BadInput(f'"data" holds {data.size} values but shape {shape} needs {math.prod(shape)}.')
    v2_tensors.check_values(data, datatype)
    return data.reshape(shape)


def _check_request_fields(body: dict) -> None:
    """The request's optional fields, of the protocol's types: "id" a string, "parameters" an object."""
    if "id" in body and not isinstance(body["id"], str):
        raise BadInput(f'"id" must be a string, got {shown(body["id"])}.')
    if "parameters" in body and not isinstance(body["parameters"], dict):
        raise BadInput('"parameters" must be an object, e.g. {"binary_data_output": true}.')


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
    """A v2 inference: one input tensor in (JSON numbers, or raw bytes after a JSON header), the probabilities out
    (as JSON, or as raw float32 bytes when the request asks for binary outputs)."""
    found = view(plane, request)
    declared = request.headers.get(v2_binary.HEADER)
    if declared is None:
        header, binary = request.body, None
    else:
        header, binary = v2_binary.split_body(request.body, declared)
    check_value_count(header, found.info.input_shape, plane.max_batch)

    def parse() -> tuple[dict, np.ndarray]:
        body = parse_json(header)
        return body, _input_tensor(body, found.info, plane, holds_booleans(header), binary)

    body, images = await plane.off_loop(len(header), parse, "parsing")
    binary_output = v2_binary.wants_binary_output(body, found.info.output_name)
    k = _class_count(body)
    answer = await plane.infer(found.name, found.version, images)
    probabilities = answer.probabilities
    output = {"name": found.info.output_name, "datatype": "FP32", "shape": list(probabilities.shape)}
    response = {"model_name": answer.name, "model_version": str(answer.version), "outputs": [output]}
    if "id" in body:
        response["id"] = body["id"]
    if k is not None:  # the classification extension: the top classes as strings
        strings = classification.labelled(probabilities, k, found.info.classes)
        output.update(datatype="BYTES", shape=[len(probabilities), min(k, probabilities.shape[1])])
        data = classification.raw(strings) if binary_output else strings
    else:
        data = np.ascontiguousarray(probabilities, "<f4").tobytes() if binary_output else probabilities.reshape(-1)
    if binary_output:
        output["parameters"] = {v2_binary.BINARY_SIZE: len(data)}
        return v2_binary.binary_response(response, data, answer.labels)
    output["data"] = data
    return json_response(response, labels=answer.labels)


def _class_count(body: dict) -> int | None:
    """The classes an output asks for through the classification extension (its outputs checked already)."""
    for i, output in enumerate(body.get("outputs") or []):
        parameters = output.get("parameters")
        if isinstance(parameters, dict) and classification.PARAMETER in parameters:
            label = f"outputs[{i}].parameters.{classification.PARAMETER}"
            return classification.class_count(parameters[classification.PARAMETER], label)
    return None
