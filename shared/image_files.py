"""How an image file becomes the pixels a model takes: one function, for training on a folder and for serving.

    image = open_image(data_or_path, "cat.jpg", max_pixels)     # header read, size checked: nothing decoded
    pixels = to_pixels(image, (64, 64), channels=3)              # uint8 [64, 64, 3]

`serve` may not import kerasreg, nor kerasreg serve; both import this, so a photo
given to `python -m serve predict` becomes the very pixels the model was trained
and tested on (tests/test_pixels.py holds the two callers to it byte for byte).
The steps, in order:

1. the format is read from the bytes, never the file name (a GIF named .jpg is a
   GIF); only PNG, JPEG, BMP, GIF and WebP are opened (each decoder is attack
   surface); the work the file's structure asks for (markers, chunks, blocks,
   scans: shared/image_structure.py) and the size its header declares are
   checked before any pixel;
2. a JPEG is decoded at a reduced scale (1/2, 1/4 or 1/8: Pillow's draft mode, the
   DCT's own downscaling) when it is at least twice the target's size anyway: a
   camera-sized photo decodes several times faster, to nearly the same result;
3. the EXIF orientation is applied (phones store rotation there);
4. the first frame of an animation is taken; 16-bit images are scaled to 8 bits
   (not clipped); alpha is dropped; a palette is expanded; then the image is
   converted to grayscale (ITU-R 601 luma) or RGB;
5. it is resized to the target with Lanczos (antialiased) filtering, and its aspect
   ratio is not kept (as Keras's `image_dataset_from_directory` does by default).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from shared.image_structure import StructureError, check_structure

IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")
# The file names that say "image": a training folder's files and `serve predict DIR`'s are these.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
# What Pillow raises for bytes that are not a readable image of those formats.
DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")


class NotAnImage(ValueError):
    """Bytes that are not a readable PNG, JPEG, BMP, GIF or WebP image, or one larger than allowed."""


def open_image(source: bytes | Path, label: str, max_pixels: int) -> Image.Image:
    """The image in `source` (bytes, or a file's path, read whole), its structure and size checked; nothing decoded.

    The image's `passes` attribute holds the passes its decoding makes over the pixels (a progressive JPEG's scans,
    else 1), for a caller that budgets the decoding of several images.

    Raises:
        NotAnImage: not one of IMAGE_FORMATS (whatever its name says), a structure that asks for unbounded work
            (shared/image_structure.py), or more than `max_pixels` pixels.
    """
    data = source if isinstance(source, bytes | bytearray | memoryview) else Path(source).read_bytes()
    try:
        structure = check_structure(data, label)
        image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except StructureError as e:
        raise NotAnImage(str(e)) from None
    except DECODE_ERRORS as e:
        raise NotAnImage(f"{label}: not a readable PNG, JPEG, BMP, GIF or WebP image ({type(e).__name__}).") from None
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise NotAnImage(f"{label}: {width}x{height} pixels exceeds the limit of {max_pixels:,}; send it smaller.")
    image.passes = structure.passes
    return image


def to_pixels(image: Image.Image, size: tuple[int, int], channels: int) -> np.ndarray:
    """The model's input, uint8 [height, width, channels], from an opened image (see the module docstring).

    Raises:
        NotAnImage: the pixel data does not decode (a truncated or garbled file).
    """
    height, width = size
    try:
        if image.format == "JPEG" and not getattr(image, "is_animated", False):
            # Reduced only while it stays at least twice the target on both sides: the Lanczos step below then
            # still has the detail a full decode would give it.
            image.draft(None, (2 * max(width, height), 2 * max(width, height)))
        image = ImageOps.exif_transpose(image)
        image.load()
    except DECODE_ERRORS as e:
        raise NotAnImage(f"the pixel data does not decode ({type(e).__name__}: {str(e)[:80]})") from None
    image = _eight_bit(image, "L" if channels == 1 else "RGB")
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    array = np.asarray(image, dtype=np.uint8)
    return array[..., np.newaxis] if channels == 1 else array


def _eight_bit(image: Image.Image, mode: str) -> Image.Image:
    """`image` in `mode` ("L" or "RGB"): 16-bit scaled down, a palette expanded, alpha dropped."""
    if image.mode in _SIXTEEN_BIT:
        # Pillow's convert("L") clips 16-bit values at 255: scale instead (a 16-bit PNG stores 0..65535).
        image = Image.fromarray((np.asarray(image, dtype=np.uint32) >> 8).astype(np.uint8))
    if image.mode == "P":
        image = image.convert("RGBA")  # a palette with transparency: expanded first, its alpha then dropped
    if image.mode in ("RGBA", "PA"):
        image = image.convert("RGB")
    elif image.mode == "LA":
        image = image.convert("L")
    return image if image.mode == mode else image.convert(mode)


def is_grayscale(image: Image.Image) -> bool:
    """Whether an opened image holds one channel of values (its mode; nothing decoded)."""
    return image.mode in ("1", "L", "LA", "I", "F", *_SIXTEEN_BIT)
