"""`inference.GRPCInferenceService` over the one data plane: the same models, versions, limits and tensor checks as
HTTP's v2 (serve/oip_v2.py, serve/tensors.py), and the same metrics (protocol "grpc", status the gRPC code).

A client's mistake is INVALID_ARGUMENT, an unknown model or version NOT_FOUND, a server
not ready (or an inference past --timeout) UNAVAILABLE, each with the reason, as HTTP
says it; INTERNAL only for a bug, logged.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np

from serve import tensors
from serve.dataplane import NO_LABELS, DataPlane
from serve.errors import BadInput, ServeError
from serve.grpc_api.messages import method_types
from serve.oip_v2 import EXTENSIONS, model_metadata

log = logging.getLogger("serve.grpc")
SERVICE = "inference.GRPCInferenceService"
PROTOCOL = "grpc"  # the metrics' label
# The typed field of InferTensorContents that carries each datatype (FP16 has none: raw only).
_CONTENTS = {
    **dict.fromkeys(("UINT8", "UINT16", "UINT32"), "uint_contents"),
    "UINT64": "uint64_contents",
    **dict.fromkeys(("INT8", "INT16", "INT32"), "int_contents"),
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
}
# Each typed field's own numpy type: a value is read as the field holds it, then checked against the datatype.
_FIELD_DTYPES = {
    "uint_contents": np.uint32,
    "uint64_contents": np.uint64,
    "int_contents": np.int32,
    "int64_contents": np.int64,
    "fp32_contents": np.float32,
    "fp64_contents": np.float64,
}


def status_code(error: BaseException):
    """The gRPC status of a failure: by the HTTP status its ServeError carries; INTERNAL for anything else."""
    import grpc

    if not isinstance(error, ServeError):
        return grpc.StatusCode.INTERNAL
    return {
        400: grpc.StatusCode.INVALID_ARGUMENT,
        404: grpc.StatusCode.NOT_FOUND,
        413: grpc.StatusCode.RESOURCE_EXHAUSTED,
        415: grpc.StatusCode.INVALID_ARGUMENT,
        503: grpc.StatusCode.UNAVAILABLE,
    }.get(error.status_code, grpc.StatusCode.INTERNAL)


class InferenceService:
    """The service's methods; `handler()` gives them to a grpc server."""

    def __init__(self, plane: DataPlane, metrics=None):
        self.plane = plane
        self.metrics = metrics
        self.types = method_types()

    def handler(self):
        """A generic handler serving every method of the service."""
        import grpc

        methods = {}
        for name, (request_type, response_type) in self.types.items():
            methods[name] = grpc.unary_unary_rpc_method_handler(
                self._wrapped(name, getattr(self, f"_{name}")),
                request_deserializer=request_type.FromString,
                response_serializer=response_type.SerializeToString,
            )
        return grpc.method_handlers_generic_handler(SERVICE, methods)

    def _wrapped(self, name: str, method):
        import grpc

        async def call(request, context):
            started = time.perf_counter()
            labels, code = NO_LABELS, grpc.StatusCode.OK
            try:
                response, labels = await method(request)
                return response
            except Exception as e:  # noqa: BLE001 - every failure is a status; a bug's is INTERNAL, logged
                code = status_code(e)
                labels = self._labels(request)
                if code == grpc.StatusCode.INTERNAL:
                    log.error("%s failed", name, exc_info=e)
                await context.abort(code, str(e) if isinstance(e, ServeError) else "internal server error")
            finally:
                if self.metrics is not None:
                    self.metrics.request(*labels, PROTOCOL, code.name, time.perf_counter() - started)

        return call

    def _labels(self, request) -> tuple[str, str]:
        """The metrics' labels of a failed call: the served model and version it named, else empty."""
        name = getattr(request, "model_name", None) or getattr(request, "name", None)
        version = getattr(request, "model_version", None) or getattr(request, "version", None)
        return self.plane.labels(name, version or None) if name else NO_LABELS

    def _response(self, method: str, **fields):
        return self.types[method][1](**fields)

    async def _ServerLive(self, request):
        return self._response("ServerLive", live=self.plane.live()), NO_LABELS

    async def _ServerReady(self, request):
        return self._response("ServerReady", ready=self.plane.ready()), NO_LABELS

    async def _ModelReady(self, request):
        found = self.plane.view(request.name, request.version or None)
        return self._response("ModelReady", ready=self.plane.ready()), found.labels

    async def _ServerMetadata(self, request):
        from serve import __name__ as package
        from serve import __version__

        response = self._response("ServerMetadata", name=package, version=__version__, extensions=EXTENSIONS)
        return response, NO_LABELS

    async def _ModelMetadata(self, request):
        metadata, labels = model_metadata(self.plane, request.name, request.version or None)
        tensor = self.types["ModelMetadata"][1].TensorMetadata
        response = self._response(
            "ModelMetadata",
            name=metadata["name"],
            versions=metadata["versions"],
            platform=metadata["platform"],
            inputs=[tensor(**t) for t in metadata["inputs"]],
            outputs=[tensor(**t) for t in metadata["outputs"]],
        )
        return response, labels

    async def _ModelInfer(self, request):
        plane = self.plane
        found = plane.view(request.model_name, request.model_version or None)
        info = found.info
        if len(request.inputs) != 1:
            raise BadInput(f'the request must have one input tensor, named "{info.input_name}".')
        for output in request.outputs:
            if output.name != info.output_name:
                raise BadInput(f'outputs names {output.name[:40]!r}; this model has one output, "{info.output_name}".')
        images = await plane.off_loop(request.ByteSize(), lambda: input_tensor(request, info, plane), "parsing")
        answer = await plane.infer(found.name, found.version, images)
        probabilities = answer.probabilities
        output = self.types["ModelInfer"][1].InferOutputTensor(
            name=info.output_name, datatype="FP32", shape=list(probabilities.shape)
        )
        response = self._response(
            "ModelInfer",
            model_name=answer.name,
            model_version=str(answer.version),
            id=request.id,
            outputs=[output],
            raw_output_contents=[np.ascontiguousarray(probabilities, "<f4").tobytes()],
        )
        return response, answer.labels


def input_tensor(request, info, plane: DataPlane) -> np.ndarray:
    """The request's one input tensor: from raw_input_contents or from its typed contents, checked as HTTP's are
    (datatype, shape and batch first, then the byte or value count, then the values)."""
    tensor = request.inputs[0]
    if tensor.name != info.input_name:
        raise BadInput(f'input tensor is named {tensor.name[:40]!r}; expected "{info.input_name}".')
    datatype = tensors.check_datatype_name(tensor.datatype, "datatype")
    shape = tensors.check_shape(list(tensor.shape), info, plane.check_batch_size)
    typed = tensor.HasField("contents")
    if request.raw_input_contents:
        if len(request.raw_input_contents) != 1:
            raise BadInput(f"raw_input_contents holds {len(request.raw_input_contents)} tensors; the request has 1.")
        if typed:
            raise BadInput("the input has both contents and raw_input_contents; send one.")
        return tensors.from_raw(request.raw_input_contents[0], datatype, shape, "raw_input_contents[0]")
    if datatype not in _CONTENTS:
        raise BadInput(f"{datatype} has no typed contents; send it in raw_input_contents.")
    field = _CONTENTS[datatype]
    values = getattr(tensor.contents, field)
    for other in set(_CONTENTS.values()) - {field}:
        if getattr(tensor.contents, other):
            raise BadInput(f"a {datatype} tensor's values go in contents.{field}, not contents.{other}.")
    if len(values) != math.prod(shape):
        raise BadInput(f"contents.{field} holds {len(values):,} values but shape {shape} needs {math.prod(shape):,}.")
    data = np.asarray(values, dtype=_FIELD_DTYPES[field])
    tensors.check_values(data, datatype, f"contents.{field}")
    return data.reshape(shape)
