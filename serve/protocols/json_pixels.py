"""Pixel values sent as JSON numbers: the general conversion (`as_array`, for every protocol and transport), and a
fast path for the commonest requests: `{"instances": <nested pixel lists>}`.

Parsing a 28x28 image with a JSON library and then `np.asarray` over the nested
lists costs ~150 us (44 us orjson, ~110 us numpy's discovery of the nesting), more
than everything else a request does. For bodies that are exactly that shape, with
non-negative integers of at most three digits, this module reads the pixels from
the bytes with a few numpy operations (~25 us). It returns None for anything else
(floats, negatives, booleans, leading zeros, other keys, ragged lists, ...), and
the caller takes the general JSON path, so no request is judged by this code
alone: a test holds the two paths to the same arrays.

How: numpy's text reader reads the numbers; with the digits taken out, the text
must equal the skeleton of a regular array of the expected shape (cached per
shape), no slot may be empty, and the digits must be exactly those the numbers
need. Together these prove the nesting regular, the shape right and each number
well formed.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

import numpy as np

from serve.errors import BadInput

_WHITESPACE = b" \t\r\n"
# JSON allows white space between tokens only: around the braces, the key and the colon, never inside the key.
_OPENING = re.compile(rb'[ \t\r\n]*\{[ \t\r\n]*"instances"[ \t\r\n]*:[ \t\r\n]*(?=\[)')
_DIGITS = b"0123456789"
_NESTED = {b"[", *(bytes([d]) for d in _DIGITS), *(bytes([w]) for w in _WHITESPACE)}  # what may follow "["
_TO_SPACE = bytes.maketrans(b"[],", b"   ")  # separators -> spaces, for numpy's text reader


@lru_cache(maxsize=64)
def _skeleton(shape: tuple[int, ...]) -> bytes:
    """The text of a regular array of `shape` with its numbers left out: "[[,],[,]]" for (2, 2)."""
    text = b""
    for size in reversed(shape):
        text = b"[" + b",".join([text] * size) + b"]"
    return text


def parse_instances(body: bytes, image_shape: tuple[int, int, int], max_images: int) -> np.ndarray | None:
    """The images of a `{"instances": [...]}` body as [N,H,W,C] (or [N,H,W] for 1 channel), or None.

    uint8 when every value is a pixel value, int64 otherwise.

    None means "not the simple case": parse the body as JSON instead. `max_images`
    bounds the work: a longer batch is left to the general path, which refuses it.
    """
    opening = _OPENING.match(body)
    closing = body.rstrip(_WHITESPACE)
    if opening is None or not closing.endswith(b"}") or body[opening.end() + 1 : opening.end() + 2] not in _NESTED:
        return None  # not "[[" or "[0...": objects such as {"b64": ...} go to the JSON parser at once
    spaced = closing[opening.end() : -1].rstrip(_WHITESPACE)  # the array, "[" to "]", white space and all
    if not spaced.endswith(b"]"):
        return None
    array = spaced.translate(None, _WHITESPACE)
    if array.translate(None, _DIGITS + b"[],") or _has_empty_slot(array):
        return None  # floats, signs, booleans, strings, more keys, or a slot without a number
    # Read the numbers from the text with its white space, so "1 2" stays two numbers (and fails the skeleton).
    values = np.fromstring(spaced.translate(_TO_SPACE), dtype=np.int64, sep=" ")
    count, pixels = values.size, math.prod(image_shape)
    if count == 0 or count % pixels or count // pixels > max_images:
        return None
    low, high = values.min(), values.max()
    if low < 0 or high > 999:
        return None
    # As many digits as the numbers need: no leading zeros (not JSON), nothing lost.
    if len(array) - len(array.translate(None, _DIGITS)) != _digits_needed(values):
        return None
    stripped = array.translate(None, _DIGITS)
    batch = count // pixels
    shapes = [(batch, *image_shape)] + ([(batch, *image_shape[:2])] if image_shape[2] == 1 else [])
    for shape in shapes:  # grayscale may come without its channel axis
        if _skeleton(shape) == stripped:  # the nesting is regular and of this shape, one number per slot
            # Pixel values as uint8 already (the model's checks then have nothing to convert); 256..999 stay
            # integers, for those checks to refuse by their value.
            return (values.astype(np.uint8) if high <= 255 else values).reshape(shape)
    return None


def _has_empty_slot(array: bytes) -> bool:
    """Whether "[]", "[,", ",," or ",]" occurs: a slot with no number.

    In numpy: four `bytes.find`s cost 30 us on one MNIST image and 1.3 ms on 32 (every
    "[" and "," starts a candidate match); this costs 16 us and 65 us.
    """
    text = np.frombuffer(array, np.uint8)
    opens = (text[:-1] == ord("[")) | (text[:-1] == ord(","))
    closes = (text[1:] == ord(",")) | (text[1:] == ord("]"))
    return bool((opens & closes).any())


def _digits_needed(values: np.ndarray) -> int:
    """Digits to write non-negative integers below 1000 without leading zeros."""
    return values.size + int((values >= 10).sum() + (values >= 100).sum())


def holds_booleans(body: bytes) -> bool:
    """Whether a JSON body has a true or false anywhere (then its pixel data is checked for them)."""
    return b"true" in body or b"false" in body


def as_array(value, label: str, check_booleans: bool = True) -> np.ndarray:
    """Nested JSON lists -> a numeric array, or BadInput for ragged, non-numeric or boolean data.

    `check_booleans=False` when the body holds no true/false at all (see holds_booleans).
    """
    if isinstance(value, list) and not check_booleans:
        try:  # a flat list of integers 0..255, the usual v2 `data`: 6 us instead of numpy's 21
            return np.frombuffer(bytes(value), np.uint8)
        except (TypeError, ValueError):
            pass  # anything else: numpy below, and its checks
    try:
        booleans = check_booleans and _has_boolean(value)
    except RecursionError:
        raise BadInput(f"{label} nests too deeply.") from None
    if booleans:
        raise BadInput(f"{label} must hold numbers 0..255, got true or false.")
    try:
        array = np.asarray(value)
    except ValueError:
        raise BadInput(f"{label} is ragged: every image must have the same shape.") from None
    except RecursionError:
        raise BadInput(f"{label} nests too deeply.") from None
    if array.dtype == object or array.dtype.kind in "USb":
        got = {"U": "text", "S": "text", "b": "true or false"}.get(array.dtype.kind, "nulls or mixed values")
        raise BadInput(f"{label} must hold numbers 0..255, got {got}.")
    return array


def _has_boolean(value) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, list):
        return any(_has_boolean(v) for v in value) if value and isinstance(value[0], list) else bool in map(type, value)
    return False
