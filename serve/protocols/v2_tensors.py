"""The v2 protocol's input tensor, decoded once for every transport: JSON numbers, raw bytes (HTTP's binary
extension and gRPC's raw contents) and gRPC's typed contents.

    tensor = TensorIn(name, datatype, shape, {'"data"': Json(values)})        # what the transport carried
    images = decode_tensor(tensor, model_info, plane.check_batch_size)       # checked, in this order:

the name, the datatype, the shape (and the batch it declares), one source of values, their count against the
shape, and the values against the datatype: all before anything is converted or copied.

The model takes pixel values 0..255 of [N,H,W,C] (or one [H,W,C]) images; a client may send them in any integer or
float datatype, whose values must fit it. Over gRPC, FP16 travels as raw bytes only (its typed contents have no
16-bit float).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from serve.errors import BadInput, shown
from serve.protocols.json_pixels import as_array
from serve.runtime.model import ModelInfo

# Integer datatypes and the values each can hold; the float ones take any number.
INTEGER_RANGES = {
    **{f"UINT{bits}": (0, 2**bits - 1) for bits in (8, 16, 32, 64)},
    **{f"INT{bits}": (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) for bits in (8, 16, 32, 64)},
}
FLOATS = ("FP16", "FP32", "FP64")
# What raw bytes hold: the datatype's little-endian numpy type (the protocol's byte order).
RAW_DTYPES = {
    **{f"UINT{bits}": np.dtype(f"<u{bits // 8}") for bits in (8, 16, 32, 64)},
    **{f"INT{bits}": np.dtype(f"<i{bits // 8}") for bits in (8, 16, 32, 64)},
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
SUPPORTED = tuple(RAW_DTYPES)
MAX_DIMENSIONS = 8  # a tensor's shape: [N, H, W, C] needs 4; a longer one is refused before it is read


def check_datatype_name(datatype, label: str = '"datatype"') -> str:
    """A datatype this server takes pixel values in, or BadInput."""
    if not isinstance(datatype, str) or datatype not in RAW_DTYPES:
        shown = repr(datatype) if len(repr(datatype)) <= 40 else repr(datatype)[:40] + "..."
        raise BadInput(f"{label} {shown} is not supported; send UINT8 pixel values (or {', '.join(SUPPORTED[1:])}).")
    return datatype


def check_values(data: np.ndarray, datatype: str, label: str = '"data"') -> None:
    """The values must be what `datatype` holds: integers within its range for the integer types (`label` names
    where they came from in an error)."""
    if datatype in FLOATS:
        return
    low, high = INTEGER_RANGES[datatype]
    if data.dtype.kind not in "iu":
        # JSON parsers read integers past 64 bits as floats: 2**70 is out of range, not "not an integer".
        whole = data.dtype.kind == "f" and data.size and np.isfinite(data).all() and (data == np.rint(data)).all()
        if whole and (data.min() < low or data.max() > high):
            shown_range = f"{data.min():.0f}..{data.max():.0f}"
            raise BadInput(f"{label} holds {shown_range}, outside {datatype}'s range {low}..{high}.")
        raise BadInput(f"{label} holds non-integer values but datatype {datatype} takes integers.")
    if _may_overflow(data.dtype, datatype) and data.size:
        if data.min() < low or data.max() > high:
            raise BadInput(f"{label} holds {data.min()}..{data.max()}, outside {datatype}'s range {low}..{high}.")


@functools.lru_cache(maxsize=64)
def _may_overflow(dtype: np.dtype, datatype: str) -> bool:
    """Whether values of `dtype` can fall outside `datatype`'s range (uint8 data sent as UINT8 cannot)."""
    low, high = INTEGER_RANGES[datatype]
    bounds = np.iinfo(dtype)
    return bounds.min < low or bounds.max > high


@dataclass(frozen=True)
class Json:
    """Values as JSON numbers (nested or flat lists); `check_booleans` False when the body holds no true/false."""

    values: object
    check_booleans: bool = True


@dataclass(frozen=True)
class Raw:
    """Values as raw little-endian bytes of the datatype; `called`: what errors about their bytes call them."""

    data: bytes | memoryview
    called: str | None = None


@dataclass(frozen=True)
class Typed:
    """Values as a gRPC typed contents field holds them, read as that field's own numpy type; `called`: what errors
    about them call them."""

    values: Sequence
    dtype: type
    called: str | None = None


@dataclass(frozen=True)
class TensorIn:
    """One input tensor as a transport carried it, before any check: its name, datatype and shape as sent, and its
    values from each source present (label -> Json, Raw or Typed), of which there must be exactly one. The labels
    name the fields in errors, as the transport spells them."""

    name: object
    datatype: object
    shape: object
    sources: dict
    datatype_label: str = '"datatype"'
    shape_label: str = '"shape"'


def decode_tensor(tensor: TensorIn, info: ModelInfo, check_batch: Callable[[int], None]) -> np.ndarray:
    """The tensor's images, [N,H,W,C] or [H,W,C] (or without C for one channel), checked against the model in the
    module docstring's order; BadInput saying what is wrong."""
    if tensor.name != info.input_name:
        raise BadInput(f'input tensor is named {shown(tensor.name)}; expected "{info.input_name}".')
    datatype = check_datatype_name(tensor.datatype, tensor.datatype_label)
    shape = check_shape(tensor.shape, info, check_batch, tensor.shape_label)
    if len(tensor.sources) != 1:
        first, second = [*tensor.sources, "values", "values"][:2]
        raise BadInput(f"the input tensor has both {first} and {second}; send one." if tensor.sources else
                       "the input tensor has no values; send them.")  # fmt: skip
    (label, source), count = next(iter(tensor.sources.items())), math.prod(shape)
    if isinstance(source, Raw):
        return from_raw(source.data, datatype, shape, source.called or label)
    if isinstance(source, Typed):
        label = source.called or label
        if len(source.values) != count:
            raise BadInput(f"{label} holds {len(source.values):,} values but shape {shape} needs {count:,}.")
        data = np.asarray(source.values, dtype=source.dtype)
    else:
        values = source.values
        if isinstance(values, list) and values and not isinstance(values[0], list) and len(values) != count:
            raise BadInput(f"{label} holds {len(values)} values but shape {shape} needs {count}.")
        data = as_array(values, label, source.check_booleans)
        if data.size != count:
            raise BadInput(f"{label} holds {data.size} values but shape {shape} needs {count}.")
    check_values(data, datatype, label)
    return data.reshape(shape)


def check_shape(shape, info: ModelInfo, check_batch, label: str = '"shape"') -> list[int]:
    """A tensor's declared shape, checked before its data is read: at most MAX_DIMENSIONS non-negative integers
    holding images of the model, [N,H,W,C] or one image [H,W,C] (without the channel axis too, for one channel), N
    within the limit (`check_batch(N)` raises)."""
    if hasattr(shape, "__len__") and not isinstance(shape, str) and len(shape) > MAX_DIMENSIONS:
        raise BadInput(f"{label} holds {len(shape):,} entries; at most {MAX_DIMENSIONS} are taken.")
    shape = list(shape) if not isinstance(shape, list | tuple | str | dict) and hasattr(shape, "__len__") else shape
    # type() rather than isinstance: JSON's true is a bool, and a bool is an int to Python.
    if not isinstance(shape, list | tuple) or not shape or not all(type(d) is int and d >= 0 for d in shape):
        raise BadInput('"shape" must be a list of non-negative integers, e.g. [N, H, W, C].')
    shape = list(shape)
    h, w, c = info.input_shape
    image_shapes = ([h, w, c], [h, w]) if c == 1 else ([h, w, c],)
    if shape in image_shapes:
        return shape  # one image, without the batch axis
    if shape[1:] not in image_shapes:
        expected = f"[N,{h},{w},{c}] or [{h},{w},{c}]"
        raise BadInput(f'"shape" {shape[:8]} does not hold images of this model; expected {expected}.')
    check_batch(shape[0])
    return shape


def from_raw(raw: bytes | memoryview, datatype: str, shape: list[int], label: str) -> np.ndarray:
    """A tensor over raw little-endian bytes (no copy), its byte count checked against its datatype and shape."""
    dtype = RAW_DTYPES[datatype]
    needed = math.prod(shape) * dtype.itemsize
    if len(raw) != needed:
        raise BadInput(
            f"{label} holds {len(raw):,} bytes but {datatype} {shape} needs {needed:,} "
            f"({math.prod(shape):,} values of {dtype.itemsize} bytes)."
        )
    data = np.frombuffer(raw, dtype).reshape(shape)
    check_values(data, datatype, label)
    return data
