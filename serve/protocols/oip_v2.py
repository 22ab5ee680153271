"""The Open Inference Protocol (v2, KServe/Triton/MLServer): health, model metadata, infer.

GET  /v2/health/live, /v2/health/ready, /v2
GET  /v2/models/NAME[/versions/N], /v2/models/NAME[/versions/N]/ready
POST /v2/models/NAME[/versions/N]/infer   {"inputs": [{"name": "images", "shape": [N,H,W,C],
                                                      "datatype": "UINT8", "data": [...]}]}
An infer request may carry its tensor as raw bytes after a JSON header, and ask for
its answer that way (the binary tensor data extension: serve/protocols/v2_binary.py).
Without a version the newest answers, and the response names it (`model_version`).
The routes are registered in serve/protocols/routes.py's table. The tensor is decoded
by serve/protocols/v2_tensors.py, as gRPC's (serve/protocols/grpc/) is; the metadata
and extensions are the data plane's, which both answer.
"""

from __future__ import annotations

import numpy as np

from serve.errors import BadInput, NotReady, shown
from serve.plane.dataplane import DataPlane, InferenceRequest, ModelView, Parsed
from serve.protocols import classification, v2_binary
from serve.protocols.http_messages import Request, Response, check_value_count, json_response, parse_json, view
from serve.protocols.json_pixels import holds_booleans
from serve.protocols.v2_tensors import Json, Raw, TensorIn, decode_tensor


def _input_tensor(body: dict, view: ModelView, plane: DataPlane, check_booleans: bool, binary) -> np.ndarray:
    """The one input tensor of a v2 request, its shape and size checked against the model before any conversion.

    `binary`: the bytes after a binary request's JSON header (None without), which the tensor's
    `binary_data_size` takes.
    """
    info = view.info
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise BadInput(f'"inputs" must be a list with one tensor named "{info.input_name}".')
    _check_request_fields(body)
    tensor = inputs[0]
    if "parameters" in tensor and not isinstance(tensor["parameters"], dict):
        raise BadInput('the input tensor\'s "parameters" must be an object.')
    sizes = v2_binary.binary_sizes(inputs, binary) if binary is not None else [None]
    sources = {}
    if "data" in tensor or sizes[0] is None:
        sources['"data"'] = Json(tensor.get("data"), check_booleans)
    if sizes[0] is not None:
        sources[f"parameters.{v2_binary.BINARY_SIZE}"] = Raw(binary, "the input tensor's binary data")
    tensor_in = TensorIn(tensor.get("name"), tensor.get("datatype"), tensor.get("shape"), sources)
    return decode_tensor(tensor_in, info, plane.check_batch_size)


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
    return json_response(plane.server_metadata())


async def metadata(plane: DataPlane, request: Request) -> Response:
    """The model's metadata, for the version the path names."""
    params = request.path_params
    found, labels = plane.model_metadata(params["name"], params.get("version"))
    return json_response(found, labels=labels)


async def model_ready(plane: DataPlane, request: Request) -> Response:
    """Whether the version the path names answers."""
    found = view(plane, request)
    return json_response({"name": found.name, "ready": plane.ready()}, labels=found.labels)


async def infer(plane: DataPlane, request: Request) -> Response:
    """A v2 inference: one input tensor in (JSON numbers, or raw bytes after a JSON header), the probabilities out
    (as JSON, or as raw float32 bytes when the request asks for binary outputs), or the top classes (the
    classification extension)."""

    def parse(found: ModelView) -> Parsed:
        declared = request.headers.get(v2_binary.HEADER)
        if declared is None:
            header, binary = request.body, None
        else:
            header, binary = v2_binary.split_body(request.body, declared)
        check_value_count(header, found.info.input_shape, plane.max_batch)
        body = parse_json(header)
        images = _input_tensor(body, found, plane, holds_booleans(header), binary)
        return Parsed(images, (body, v2_binary.wants_binary_output(body, found.info.output_name), _class_count(body)))

    params = request.path_params
    answer = await plane.infer(InferenceRequest(params["name"], params.get("version"), parse, len(request.body)))
    body, binary_output, k = answer.context
    probabilities = answer.probabilities
    output = {"name": answer.info.output_name, "datatype": "FP32", "shape": list(probabilities.shape)}
    response = {"model_name": answer.name, "model_version": str(answer.version), "outputs": [output]}
    if "id" in body:
        response["id"] = body["id"]
    if k is not None:  # the classification extension: the top classes as strings
        strings = classification.labelled(probabilities, k, answer.info.classes)
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
