"""The gRPC service in process: its messages from the committed descriptor (which must be the .proto compiled), its
methods over the data plane, and its statuses."""

from __future__ import annotations

import asyncio
import base64

import numpy as np
import pytest

from serve.protocols.grpc.descriptor import COMPILED, compile_proto
from serve.protocols.grpc.messages import message, method_types


def test_the_committed_descriptor_is_the_proto_compiled():
    pytest.importorskip("grpc_tools", reason="grpcio-tools compiles the .proto (the dev extra)")
    assert base64.b64decode("".join(COMPILED)) == compile_proto(), "inference.proto changed: run `make grpc`"


def test_the_service_has_the_specifications_methods_and_wire_format():
    assert set(method_types()) == {"ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata",
                                   "ModelInfer"}  # fmt: skip
    request = message("ModelInferRequest")(model_name="m", model_version="2", raw_input_contents=[b"\x01"])
    # Field numbers as the specification gives them: model_name 1, model_version 2, raw_input_contents 7.
    assert request.SerializeToString() == b"\n\x01m\x12\x012:\x01\x01"


class _Context:
    """What a handler sees of grpc's context: abort, which records the status and raises as grpc's does."""

    def __init__(self):
        self.code = self.details = None

    async def abort(self, code, details):
        import grpc

        self.code, self.details = code, details
        raise grpc.aio.AbortError()


async def _messages(*messages: bytes):
    """A call's request messages, as the wire brings them."""
    for data in messages:
        yield data


@pytest.fixture(scope="module")
def service(digits_export):
    from http_servers import app_for

    from serve.protocols.grpc.service import InferenceService

    app = app_for(digits_export)
    return InferenceService(app.plane), app


def _call(service, method: str, request, raw: bytes | None = None):
    """The handler's response and context for `request` (or for the bytes `raw`, sent as the message)."""
    import grpc

    handler = service._wrapped(method, service.types[method][0], getattr(service, f"_{method}"))
    context = _Context()
    data = request.SerializeToString() if raw is None else raw
    try:
        return asyncio.run(handler(_messages(data), context)), context
    except grpc.aio.AbortError:
        return None, context


def test_model_infer_raw_and_typed_answer_as_http_json_does(service):
    from http_servers import respond

    grpc_service, app = service
    images = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 1), dtype=np.uint8)
    request = message("ModelInferRequest")
    tensor = request.InferInputTensor(name="images", datatype="UINT8", shape=[3, 8, 8, 1])
    raw, _ = _call(grpc_service, "ModelInfer", request(model_name="digits", id="a", inputs=[tensor],
                                                      raw_input_contents=[images.tobytes()]))  # fmt: skip
    typed_tensor = request.InferInputTensor(name="images", datatype="INT32", shape=[3, 8, 8, 1])
    typed_tensor.contents.int_contents.extend(images.reshape(-1).tolist())
    typed, _ = _call(grpc_service, "ModelInfer", request(model_name="digits", inputs=[typed_tensor]))
    tensor_json = {"name": "images", "shape": [3, 8, 8, 1], "datatype": "UINT8", "data": images.reshape(-1).tolist()}
    body = {"inputs": [tensor_json]}
    import json

    expected = np.asarray(json.loads(respond(app, "POST", "/v2/models/digits/infer", json.dumps(body).encode()).body)
                          ["outputs"][0]["data"], np.float32).reshape(3, 10)  # fmt: skip
    for answer in (raw, typed):
        assert (answer.model_name, answer.model_version, answer.outputs[0].name) == ("digits", "1", "probabilities")
        assert list(answer.outputs[0].shape) == [3, 10] and answer.outputs[0].datatype == "FP32"
        np.testing.assert_array_equal(np.frombuffer(answer.raw_output_contents[0], "<f4").reshape(3, 10), expected)
    assert raw.id == "a"


def test_metadata_readiness_and_the_statuses(service):
    import grpc

    grpc_service, _ = service
    metadata, _ = _call(grpc_service, "ModelMetadata", message("ModelMetadataRequest")(name="digits"))
    assert (metadata.name, list(metadata.versions), metadata.platform) == ("digits", ["1"], "onnxruntime_onnx")
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.inputs] == [("images", "UINT8", [-1, 8, 8, 1])]
    server, _ = _call(grpc_service, "ServerMetadata", message("ServerMetadataRequest")())
    assert server.name == "serve" and list(server.extensions) == ["binary_tensor_data", "classification"]
    ready, _ = _call(grpc_service, "ModelReady", message("ModelReadyRequest")(name="digits", version="1"))
    assert ready.ready
    _, context = _call(grpc_service, "ModelReady", message("ModelReadyRequest")(name="digits", version="7"))
    assert (context.code, context.details) == (grpc.StatusCode.NOT_FOUND, "model 'digits' has no version 7; it has: 1.")
    _, context = _call(grpc_service, "ModelInfer", message("ModelInferRequest")(model_name="digits"))
    assert context.code == grpc.StatusCode.INVALID_ARGUMENT
