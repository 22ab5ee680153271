"""What both protocols share: bounded JSON bodies, inference off the event loop, timeouts."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from dataclasses import dataclass

import numpy as np

from serve.dataplane import DataPlane
from serve.errors import BadInput, ModelNotFound, NotReady, PayloadTooLarge
from serve.images import decode_image


@dataclass(frozen=True)
class Limits:
    """Request limits; see `python -m serve http --help`."""

    max_body_bytes: int = 8 * 1024 * 1024  # 8 MiB: a batch of 256 CIFAR images as JSON numbers fits
    timeout_seconds: float = 10.0


MODEL_VERSION = "1"  # one ONNX file per name: its only version


def model_name(request) -> str:
    """The model name in the path, after checking the version the path names, if any."""
    name = request.path_params["name"]
    version = request.path_params.get("version")
    if version is not None and version != MODEL_VERSION:
        raise ModelNotFound(f"model {name!r} has no version {version!r}; this server has version {MODEL_VERSION}.")
    return name


async def read_json(request, limits: Limits) -> dict:
    """The request body as a JSON object, refusing bodies over the limit before reading them whole."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise PayloadTooLarge(f"request body of {declared} bytes exceeds the limit of {limits.max_body_bytes}.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise PayloadTooLarge(f"request body exceeds the limit of {limits.max_body_bytes} bytes.")
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError) as e:
        raise BadInput(f"request body is not valid JSON ({e}).") from None
    except RecursionError:
        raise BadInput("request body nests JSON too deeply.") from None
    if not isinstance(body, dict):
        raise BadInput("request body must be a JSON object.")
    return body


async def infer(plane: DataPlane, name: str, images, limits: Limits) -> np.ndarray:
    """Run inference in a worker thread (the event loop keeps serving), bounded by the timeout."""
    from starlette.concurrency import run_in_threadpool

    try:
        return await asyncio.wait_for(run_in_threadpool(plane.infer, name, images), limits.timeout_seconds)
    except asyncio.TimeoutError:
        raise NotReady(f"inference timed out after {limits.timeout_seconds:g} s; retry later.") from None


def b64_image(value: dict, plane: DataPlane, name: str, label: str) -> np.ndarray:
    """Decode {"b64": "<png or jpeg bytes>"} into the model's input [H,W,C]."""
    info = plane.model(name).info
    if not isinstance(value.get("b64"), str):
        raise BadInput(f'{label}: expected {{"b64": "<base64 image bytes>"}}.')
    try:
        data = base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise BadInput(f"{label}: b64 is not valid base64.") from None
    return decode_image(data, label, info.input_shape[:2], info.channels)


def as_array(value, label: str) -> np.ndarray:
    """Nested JSON lists -> a numeric array, or BadInput for ragged or non-numeric data."""
    try:
        array = np.asarray(value)
    except ValueError:
        raise BadInput(f"{label} is ragged: every image must have the same shape.") from None
    except RecursionError:
        raise BadInput(f"{label} nests too deeply.") from None
    if array.dtype == object or array.dtype.kind in "USb":
        raise BadInput(f"{label} must hold numbers 0..255, got {array.dtype.name} values.")
    return array
