"""The message classes of inference.proto, built from its compiled descriptor in a pool of their own.

    from serve.protocols.grpc.messages import message
    request = message("ModelInferRequest").FromString(data)

Why a pool of their own, and not protoc's `_pb2` modules: descriptor.py says.
"""

from __future__ import annotations

import base64
import functools

from serve.protocols.grpc.descriptor import COMPILED

PACKAGE = "inference"


@functools.cache
def _pool():
    from google.protobuf import descriptor_pb2, descriptor_pool

    pool = descriptor_pool.DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode("".join(COMPILED))))
    return pool


@functools.cache
def message(name: str):
    """The class of message `name` of the package (e.g. "ModelInferRequest")."""
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(_pool().FindMessageTypeByName(f"{PACKAGE}.{name}"))


def method_types() -> dict[str, tuple]:
    """Each method of the service: (its request class, its response class)."""
    service = _pool().FindServiceByName(f"{PACKAGE}.GRPCInferenceService")
    return {
        method.name: (message(method.input_type.name), message(method.output_type.name)) for method in service.methods
    }
