"""`inference.GRPCInferenceService` over the one data plane: the same models, versions, limits and tensor checks as
HTTP's v2 (serve/protocols/oip_v2.py, serve/protocols/v2_tensors.py), and the same metrics (protocol "grpc",
status the gRPC code).

A client's mistake is INVALID_ARGUMENT, an unknown model or version NOT_FOUND, a server
not ready (or an inference past --timeout) UNAVAILABLE, each with the reason, as HTTP
says it; INTERNAL only for a bug, logged.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from serve.errors import BadInput, ServeError, let_go
from serve.plane.dataplane import NO_LABELS, DataPlane, InferenceRequest, ModelView, Parsed
from serve.protocols import classification, v2_tensors
from serve.protocols.grpc.messages import method_types
from serve.protocols.grpc.wire import check_field_counts
from serve.protocols.v2_tensors import Raw, TensorIn, Typed

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
        """A generic handler serving every method of the service.

        Each method takes its request as a stream of bytes, which a unary call is on the
        wire: so the message is parsed here, off the event loop when large, and a call
        whose message never arrived (gRPC refused it, over the size limit) is seen and
        counted.
        """
        import grpc

        methods = {}
        for name, (request_type, response_type) in self.types.items():
            methods[name] = grpc.stream_unary_rpc_method_handler(
                self._wrapped(name, request_type, getattr(self, f"_{name}")),
                response_serializer=response_type.SerializeToString,
            )
        return grpc.method_handlers_generic_handler(SERVICE, methods)

    def _wrapped(self, name: str, request_type, method):
        import grpc

        async def call(messages, context):
            started = time.perf_counter()
            response, labels, failure = await self._answer(name, request_type, method, messages)
            if failure is None:
                self._count(labels, grpc.StatusCode.OK, started)
                return response
            code, reason = failure
            try:
                await context.abort(code, reason)
            except grpc.aio.AbortError:  # how an abort ends the handler
                self._count(labels, code, started)
                raise
            except Exception:  # noqa: BLE001 - the call had ended: gRPC refused its message (over the size limit)
                self._count(labels, grpc.StatusCode.RESOURCE_EXHAUSTED, started)
                raise

        return call

    async def _answer(self, name: str, request_type, method, messages) -> tuple:
        """(response, labels, None), or (None, labels, (status, reason)) for a call that fails.

        The error of a failure is let go of here, before the call aborts: aborting inside
        the `except` block, with the error's traceback in place, kept the error and its
        frames (which hold the request) in cycles, to the collector's next full pass.
        """
        import grpc

        request = None
        try:
            data = await _first(messages)
            if data is None:  # gRPC refused it (over the size limit), or the client sent none
                return None, NO_LABELS, (grpc.StatusCode.INVALID_ARGUMENT, "the call sent no request message.")
            request = await self.plane.off_loop(len(data), lambda: _parse(name, request_type, data), "parsing")
            response, labels = await method(request)
            return response, labels, None
        except Exception as e:  # noqa: BLE001 - every failure is a status; a bug's is INTERNAL, logged
            code = status_code(e)
            if code == grpc.StatusCode.INTERNAL:
                log.error("%s failed", name, exc_info=e)
            reason = str(e) if isinstance(e, ServeError) else "internal server error"
            let_go(e)
            return None, self._labels(request) if request is not None else NO_LABELS, (code, reason)

    def _count(self, labels: tuple[str, str], code, started: float) -> None:
        if self.metrics is not None:
            self.metrics.request(*labels, PROTOCOL, code.name, time.perf_counter() - started)

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
        found = self.plane.describe(request.name, request.version or None)
        return self._response("ModelReady", ready=self.plane.ready()), found.labels

    async def _ServerMetadata(self, request):
        return self._response("ServerMetadata", **self.plane.server_metadata()), NO_LABELS

    async def _ModelMetadata(self, request):
        metadata, labels = self.plane.model_metadata(request.name, request.version or None)
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
        def parse(found: ModelView) -> Parsed:
            info = found.info
            if len(request.inputs) != 1:
                raise BadInput(f'the request must have one input tensor, named "{info.input_name}".')
            k = None
            for output in request.outputs:
                if output.name != info.output_name:
                    raise BadInput(
                        f'outputs names {output.name[:40]!r}; this model has one output, "{info.output_name}".'
                    )
                if classification.PARAMETER in output.parameters:
                    value = output.parameters[classification.PARAMETER].int64_param
                    k = classification.class_count(value, "outputs[].parameters.classification.int64_param")
            return Parsed(input_tensor(request, info, self.plane), k)

        asked = InferenceRequest(request.model_name, request.model_version or None, parse, request.ByteSize())
        answer = await self.plane.infer(asked)
        probabilities, k = answer.probabilities, answer.context
        if k is None:
            datatype, shape = "FP32", list(probabilities.shape)
            raw = np.ascontiguousarray(probabilities, "<f4").tobytes()
        else:  # the classification extension: the top classes as strings
            datatype, shape = "BYTES", [len(probabilities), min(k, probabilities.shape[1])]
            raw = classification.raw(classification.labelled(probabilities, k, answer.info.classes))
        output = self.types["ModelInfer"][1].InferOutputTensor(
            name=answer.info.output_name, datatype=datatype, shape=shape
        )
        response = self._response(
            "ModelInfer",
            model_name=answer.name,
            model_version=str(answer.version),
            id=request.id,
            outputs=[output],
            raw_output_contents=[raw],
        )
        return response, answer.labels


async def _first(messages) -> bytes | None:
    """The call's one request message, or None when none arrived."""
    async for data in messages:
        return data
    return None


def _parse(method: str, request_type, data: bytes):
    """`data` as a `request_type` message, or BadInput; an inference's field counts checked first (wire.py)."""
    from google.protobuf.message import DecodeError

    if method == "ModelInfer":
        check_field_counts(data)
    try:
        return request_type.FromString(data)
    except DecodeError:
        raise BadInput(f"the request is not a valid {request_type.DESCRIPTOR.name} message (protobuf).") from None


def _typed(tensor) -> Typed:
    """A tensor's typed contents: the field its datatype's values go in, none other filled."""
    datatype = v2_tensors.check_datatype_name(tensor.datatype, "datatype")
    if datatype not in _CONTENTS:
        raise BadInput(f"{datatype} has no typed contents; send it in raw_input_contents.")
    field = _CONTENTS[datatype]
    for other in set(_CONTENTS.values()) - {field}:
        if getattr(tensor.contents, other):
            raise BadInput(f"a {datatype} tensor's values go in contents.{field}, not contents.{other}.")
    return Typed(getattr(tensor.contents, field), _FIELD_DTYPES[field], f"contents.{field}")


def input_tensor(request, info, plane: DataPlane) -> np.ndarray:
    """The request's one input tensor, from raw_input_contents or from its typed contents, decoded as HTTP's is
    (serve/protocols/v2_tensors.py); what is gRPC's own (how many raw tensors, which typed field) checked here."""
    tensor = request.inputs[0]
    sources = {}
    if request.raw_input_contents:
        if len(request.raw_input_contents) != 1:
            raise BadInput(f"raw_input_contents holds {len(request.raw_input_contents)} tensors; the request has 1.")
        sources["raw_input_contents"] = Raw(request.raw_input_contents[0], "raw_input_contents[0]")
    if tensor.HasField("contents") or not sources:
        sources = {"contents": _typed(tensor), **sources}  # named first, as the request sends it
    tensor_in = TensorIn(tensor.name, tensor.datatype, tensor.shape, sources, "datatype", "inputs[0].shape")
    return v2_tensors.decode_tensor(tensor_in, info, plane.check_batch_size)
