"""Image files and request bytes -> uint8 arrays of the model's size and channels.

The decoding itself (format by content, EXIF orientation, draft scaling, mode
conversion, Lanczos resizing) is shared/image_files.py's, the same function training on
a folder uses, so a photo becomes the pixels the model was tested on. This module
adds what serving needs around it: .npy arrays, the fast PNG decoder, the limits
checked before anything is read or allocated. MNIST-style models expect a light
digit on a dark background: `invert=True` turns a dark-on-light scan around.
"""

from __future__ import annotations

import io
import os
import stat
import struct
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format
from PIL import Image

from serve.errors import BadInput
from serve.limits import MAX_IMAGE_PIXELS as MAX_PIXELS
from shared.image_files import NotAnImage, open_image, to_pixels
from shared.image_structure import StructureError, check_structure

try:
    import pyspng
except ImportError:  # optional: Pillow decodes every PNG without it, slower
    pyspng = None

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NPY_MAGIC = b"\x93NUMPY"
NPY_MAX_HEADER = 1024  # bytes: an image's header is ~120; numpy's own default allows 10,000


def read_npy(data: bytes, label: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A .npy image as uint8 [H,W,C]: its header checked (dtype, shape, size against `max_pixels`) before any pixel.

    Raises:
        BadInput: not uint8 [H,W] or [H,W,1|3|4], empty, over `max_pixels`, or a header or body that does not parse.
    """
    shape, fortran, dtype, offset = npy_header(data, label)
    if dtype != np.uint8:
        raise BadInput(f"{label}: .npy holds {dtype}; expected uint8 pixels.")
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] not in (1, 3, 4)):
        raise BadInput(f"{label}: .npy shape {list(shape)}; expected [H,W] or [H,W,1|3|4].")
    height, width = shape[:2]
    if height == 0 or width == 0:
        raise BadInput(f"{label}: .npy image is empty ({height}x{width}).")
    if height * width > max_pixels:
        raise BadInput(f"{label}: {width}x{height} pixels exceeds the limit of {max_pixels:,}; send it smaller.")
    count = int(np.prod(shape))
    if len(data) - offset != count:
        raise BadInput(f"{label}: .npy header says {list(shape)} but it holds {len(data) - offset} bytes.")
    array = np.frombuffer(data, np.uint8, count=count, offset=offset).reshape(shape, order="F" if fortran else "C")
    return array[..., np.newaxis] if array.ndim == 2 else array


def npy_header(data: bytes, label: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran order, dtype, where the data starts) from a .npy header, reading nothing else.

    numpy's own header reader (a restricted literal parser); any failure of it on
    untrusted bytes (ValueError, SyntaxError, a tokenizer error, ...) is BadInput.
    """
    stream = io.BytesIO(data)
    try:
        version = npy_format.read_magic(stream)
        reader = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
        shape, fortran, dtype = reader(stream, max_header_size=NPY_MAX_HEADER)
    except Exception as e:  # noqa: BLE001 - a malformed header raises whatever its parser meets
        raise BadInput(f"{label}: unreadable .npy header ({type(e).__name__}).") from None
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        raise BadInput(f"{label}: unreadable .npy header (shape {shape!r}).")
    return tuple(shape), bool(fortran), dtype, stream.tell()


def read_header(data: bytes, label: str) -> tuple[int, int]:
    """(width x height, passes) as the image's header declares them, without decoding a pixel.

    Passes are the decoder's passes over the pixels: a progressive JPEG's scans, else 1.
    The file's structure is checked first (shared/image_structure.py): one that asks for
    unbounded work before its pixels is BadInput.
    """
    if data[:6] == NPY_MAGIC:
        shape = npy_header(data, label)[0]
        return (int(shape[0]) * int(shape[1]) if len(shape) >= 2 else 0), 1
    try:
        if data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) >= 24:
            check_structure(data, label)
            width, height = struct.unpack(">II", data[16:24])
            return width * height, 1
        with open_image(data, label, max_pixels=2**63) as image:
            return image.size[0] * image.size[1], image.passes
    except (NotAnImage, StructureError) as e:
        raise BadInput(str(e)) from None


def _plain_png(data: bytes, label: str, max_pixels: int) -> np.ndarray | None:
    """An 8-bit grayscale or RGB PNG decoded by libspng (pyspng), or None for Pillow to decode.

    The same pixels Pillow decodes (a PNG is lossless), then the same conversion.

    libspng decodes a 28x28 PNG in 4 us, Pillow in 30 us (its chunk reader is
    Python): the larger part of a b64 request. Other PNG kinds (palette, alpha,
    16-bit) and a missing pyspng go to Pillow, which handles every case.
    """
    if data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR" or len(data) < 33:
        return None
    width, height = struct.unpack(">II", data[16:24])
    if width * height > max_pixels:
        raise BadInput(f"{label}: {width}x{height} pixels exceeds the limit of {max_pixels:,}; send it smaller.")
    bit_depth, color_type = data[24], data[25]
    if bit_depth != 8 or color_type not in (0, 2) or pyspng is None:
        return None
    if data.find(b"eXIf", 0, data.find(b"IDAT")) > 0:
        return None  # an orientation to apply: Pillow's path (shared.image_files) reads it
    try:
        array = pyspng.load(data)
    except RuntimeError:
        raise BadInput(f"{label}: not a readable PNG, JPEG, BMP, GIF or WebP image (corrupt PNG).") from None
    return array[..., np.newaxis] if array.ndim == 2 else array


def to_model_input(image: np.ndarray, size: tuple[int, int], channels: int, invert: bool = False) -> np.ndarray:
    """A decoded uint8 array [H,W,C] as the model's input: shared.image_files' conversion, unless it already is."""
    if image.shape != (*size, channels):
        image = to_pixels(Image.fromarray(image[..., 0] if image.shape[2] == 1 else image), size, channels)
    return 255 - image if invert else image


def decode_image(
    data: bytes, label: str, size: tuple[int, int], channels: int, invert: bool = False, max_pixels: int = MAX_PIXELS
) -> np.ndarray:
    """Decode image (PNG, JPEG, BMP, GIF, WebP) or .npy bytes into the model's input [H,W,C].

    The size the header declares is checked against `max_pixels` before any pixel is decoded.

    Raises:
        BadInput: the bytes are not a supported image, or it is too large.
    """
    if data[:6] == NPY_MAGIC:
        return to_model_input(read_npy(data, label, max_pixels), size, channels, invert)
    png = _plain_png(data, label, max_pixels)
    if png is not None:
        return to_model_input(png, size, channels, invert)
    try:
        with open_image(data, label, max_pixels) as image:
            pixels = to_pixels(image, size, channels)
    except NotAnImage as e:
        raise BadInput(str(e) if str(e).startswith(label) else f"{label}: {e}") from None
    return 255 - pixels if invert else pixels


def load_image_file(
    path: Path | str, size: tuple[int, int], channels: int, invert: bool = False, max_pixels: int = MAX_PIXELS
) -> np.ndarray:
    """Read an image file from disk into the model's input [H,W,C], refusing one over `max_pixels`.

    Only a regular file is read, and only one no larger than an image of
    `max_pixels` could be (4 bytes a pixel, plus 1 MiB): a FIFO, a device such as
    /dev/zero or a huge file is refused before a byte is read.
    """
    path = Path(path)
    try:
        info = path.stat()
    except OSError as e:
        raise BadInput(f"{path}: cannot read ({e.strerror}).") from None
    if not stat.S_ISREG(info.st_mode):
        raise BadInput(f"{path}: not a regular file; pass an image file.")
    limit = 4 * max_pixels + (1 << 20)
    if info.st_size > limit:
        raise BadInput(f"{path}: {info.st_size:,} bytes is larger than an image of {max_pixels:,} pixels can be.")
    try:
        with open(path, "rb", opener=lambda p, flags: os.open(p, flags | getattr(os, "O_NONBLOCK", 0))) as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise BadInput(f"{path}: cannot read ({e.strerror}).") from None
    return decode_image(data, str(path), size, channels, invert, max_pixels)
