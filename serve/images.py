"""Image files -> uint8 arrays of the model's size and channels, with Pillow.

Resizing uses Lanczos (antialiased), so a photo shrunk to 28x28 keeps its strokes
instead of aliasing into noise. MNIST-style models expect a light digit on a dark
background: `invert=True` turns a dark-on-light scan around.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np

from serve.errors import BadInput

MAX_PIXELS = 50_000_000  # refuse decompression bombs well before memory runs out
IMAGE_FORMATS = ("PNG", "JPEG", "BMP")  # the documented ones; Pillow would open 40 more
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NPY_MAGIC = b"\x93NUMPY"


def _from_array(array: np.ndarray, label: str) -> np.ndarray:
    if array.dtype != np.uint8:
        raise BadInput(f"{label}: .npy holds {array.dtype}; expected uint8 pixels.")
    if array.ndim == 2:
        array = array[..., np.newaxis]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise BadInput(f"{label}: .npy shape {list(array.shape)}; expected [H,W] or [H,W,1|3|4].")
    return array


def max_pixels_for(input_shape: tuple[int, int, int]) -> int:
    """The default size limit of one image for a model: 4,096 times its input, within 4 and 50 Mpx.

    Nobody sends a 50 Mpx picture to a 28x28 classifier: its limit is 4 Mpx
    (2000x2000), a 64x64 model's 16.8 Mpx. `--max-image-pixels` overrides it.
    """
    height, width = input_shape[:2]
    return int(min(MAX_PIXELS, max(4_000_000, 4096 * height * width)))


def declared_pixels(data: bytes, label: str) -> int:
    """Width x height as the image's header declares it, without decoding a pixel (0 for .npy)."""
    from PIL import Image, UnidentifiedImageError

    if data[:6] == NPY_MAGIC:
        return 0  # raw array bytes: already bounded by the body size
    if data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width * height
    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise BadInput(f"{label}: not a readable PNG, JPEG, BMP or .npy image ({type(e).__name__}).") from None
    return width * height


def _plain_png(data: bytes, label: str, max_pixels: int) -> np.ndarray | None:
    """An 8-bit grayscale or RGB PNG decoded by libspng (pyspng), or None for Pillow to decode.

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
    if bit_depth != 8 or color_type not in (0, 2):
        return None
    try:
        import pyspng
    except ImportError:
        return None
    try:
        array = pyspng.load(data)
    except RuntimeError:
        raise BadInput(f"{label}: not a readable PNG, JPEG, BMP or .npy image (corrupt PNG).") from None
    return array[..., np.newaxis] if array.ndim == 2 else array


def to_model_input(image, size: tuple[int, int], channels: int, invert: bool = False) -> np.ndarray:
    """Convert a PIL image or uint8 array to [H,W,C] of the model's (height, width) and channels."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        if image.shape == (*size, channels):  # already the model's input: no round trip through Pillow
            return 255 - image if invert else image
        image = Image.fromarray(image[..., 0] if image.shape[2] == 1 else image)
    mode = "L" if channels == 1 else "RGB"
    if image.mode != mode:
        image = image.convert(mode)
    height, width = size
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    array = np.asarray(image, dtype=np.uint8)
    if channels == 1:
        array = array[..., np.newaxis]
    return 255 - array if invert else array


def decode_image(
    data: bytes, label: str, size: tuple[int, int], channels: int, invert: bool = False, max_pixels: int = MAX_PIXELS
) -> np.ndarray:
    """Decode PNG/JPEG/BMP (or .npy) bytes into the model's input [H,W,C].

    Only those formats' decoders are opened (each decoder is attack surface), and
    the size the header declares is checked against `max_pixels` before any
    pixel is decoded.

    Raises:
        BadInput: the bytes are not a supported image, or it is too large.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if data[:6] == NPY_MAGIC:
        try:
            array = np.load(io.BytesIO(data), allow_pickle=False)
        except ValueError as e:
            raise BadInput(f"{label}: unreadable .npy ({e}).") from None
        return to_model_input(_from_array(array, label), size, channels, invert)
    png = _plain_png(data, label, max_pixels)
    if png is not None:
        return to_model_input(png, size, channels, invert)
    try:
        image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
        width, height = image.size
        if width * height > max_pixels:
            raise BadInput(f"{label}: {width}x{height} pixels exceeds the limit of {max_pixels:,}; send it smaller.")
        if image.format == "JPEG":
            image = ImageOps.exif_transpose(image)  # cameras store rotation there; PNG and BMP carry none
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        if isinstance(e, BadInput):
            raise
        raise BadInput(f"{label}: not a readable PNG, JPEG, BMP or .npy image ({type(e).__name__}).") from None
    return to_model_input(image, size, channels, invert)


def load_image_file(
    path: Path | str, size: tuple[int, int], channels: int, invert: bool = False, max_pixels: int = MAX_PIXELS
) -> np.ndarray:
    """Read an image file from disk into the model's input [H,W,C], refusing one over `max_pixels`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise BadInput(f"{path}: cannot read ({e.strerror}).") from None
    return decode_image(data, str(path), size, channels, invert, max_pixels)
