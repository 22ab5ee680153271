"""Image files -> uint8 arrays of the model's size and channels, with Pillow.

Resizing uses Lanczos (antialiased), so a photo shrunk to 28x28 keeps its strokes
instead of aliasing into noise. MNIST-style models expect a light digit on a dark
background: `invert=True` turns a dark-on-light scan around.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from serve.errors import BadInput

MAX_PIXELS = 50_000_000  # refuse decompression bombs well before memory runs out


def _from_array(array: np.ndarray, label: str) -> np.ndarray:
    if array.dtype != np.uint8:
        raise BadInput(f"{label}: .npy holds {array.dtype}; expected uint8 pixels.")
    if array.ndim == 2:
        array = array[..., np.newaxis]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise BadInput(f"{label}: .npy shape {list(array.shape)}; expected [H,W] or [H,W,1|3|4].")
    return array


def to_model_input(image, size: tuple[int, int], channels: int, invert: bool = False) -> np.ndarray:
    """Convert a PIL image or uint8 array to [H,W,C] of the model's (height, width) and channels."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image[..., 0] if image.shape[2] == 1 else image)
    image = image.convert("L" if channels == 1 else "RGB")
    height, width = size
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    array = np.asarray(image, dtype=np.uint8)
    if channels == 1:
        array = array[..., np.newaxis]
    return 255 - array if invert else array


def decode_image(data: bytes, label: str, size: tuple[int, int], channels: int, invert: bool = False) -> np.ndarray:
    """Decode PNG/JPEG/BMP (or .npy) bytes into the model's input [H,W,C].

    Raises:
        BadInput: the bytes are not a supported image.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if data[:6] == b"\x93NUMPY":
        try:
            array = np.load(io.BytesIO(data), allow_pickle=False)
        except ValueError as e:
            raise BadInput(f"{label}: unreadable .npy ({e}).") from None
        return to_model_input(_from_array(array, label), size, channels, invert)
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(io.BytesIO(data)) as image:
            image = ImageOps.exif_transpose(image)
            image.load()
            return to_model_input(image, size, channels, invert)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise BadInput(f"{label}: not a readable PNG, JPEG, BMP or .npy image ({type(e).__name__}).") from None


def load_image_file(path: Path | str, size: tuple[int, int], channels: int, invert: bool = False) -> np.ndarray:
    """Read an image file from disk into the model's input [H,W,C]."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise BadInput(f"{path}: cannot read ({e.strerror}).") from None
    return decode_image(data, str(path), size, channels, invert)
