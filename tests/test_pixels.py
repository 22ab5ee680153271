"""One decoding for training and serving: a file given to `serve` becomes the very pixels the model trained on.

Each awkward kind of image file is decoded by a folder's loader (kerasreg) and by
serve's `decode_image`, and the two arrays must be equal byte for byte; each is also
checked for what it should hold (the rotation applied, 16 bits scaled, the first
frame of an animation taken).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from kerasreg.datasets.folder_decoding import decode_files
from serve.runtime.image_input import decode_image

SIZE = (24, 32)  # height, width: not square, so a rotation shows


def _gradient(height: int = 60, width: int = 80) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // (width - 1), y * 255 // (height - 1), (x + y) % 256], axis=-1).astype(np.uint8)


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _phone_photo() -> bytes:
    """A JPEG stored sideways with EXIF orientation 6 (rotate 90 degrees clockwise to view), as phones write."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return _save(Image.fromarray(_gradient(80, 60)), "JPEG", quality=90, exif=exif)


def _palette_with_transparency() -> bytes:
    image = Image.fromarray(_gradient()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return _save(image, "PNG", transparency=0)


def _animated_gif() -> bytes:
    frames = [Image.fromarray(np.full((60, 80, 3), value, np.uint8)) for value in (30, 200, 120)]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


KINDS = {
    "JPEG": lambda: _save(Image.fromarray(_gradient()), "JPEG", quality=90),
    "camera-sized JPEG (draft)": lambda: _save(
        Image.fromarray(np.kron(_gradient(), np.ones((20, 20, 1), np.uint8))), "JPEG"
    ),
    "PNG": lambda: _save(Image.fromarray(_gradient()), "PNG"),
    "phone photo, EXIF rotation": _phone_photo,
    "CMYK JPEG": lambda: _save(Image.fromarray(_gradient()).convert("CMYK"), "JPEG"),
    "palette PNG with transparency": _palette_with_transparency,
    "16-bit PNG": lambda: _save(Image.fromarray(_gradient()[..., 0].astype(np.uint16) * 257), "PNG"),
    "grayscale PNG": lambda: _save(Image.fromarray(_gradient()[..., 1]), "PNG"),
    "animated GIF": _animated_gif,
}


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("channels", [1, 3])
def test_training_and_serving_decode_every_kind_to_the_same_bytes(tmp_path, kind, channels):
    data = KINDS[kind]()
    path = tmp_path / "image"  # no extension: both read the format from the bytes
    path.write_bytes(data)
    decoded = decode_files([(path, 0)], SIZE, channels, "test")
    assert decoded.bad == [] and decoded.not_images == []
    trained_on = decoded.images[0]
    served = decode_image(data, "upload", SIZE, channels)
    assert trained_on.shape == served.shape == (*SIZE, channels)
    assert trained_on.tobytes() == served.tobytes()


def test_the_exif_rotation_is_applied():
    upright = decode_image(_phone_photo(), "x", (80, 60), 3)  # stored 60 high and 80 wide, shown 80 high, 60 wide
    # Rotated 90 degrees clockwise: what was the stored image's left column is now its top row.
    stored = _gradient(80, 60)
    assert abs(int(upright[0, :, 0].mean()) - int(np.rot90(stored, k=-1)[0, :, 0].mean())) <= 8


def test_sixteen_bits_are_scaled_not_clipped():
    values = _gradient()[..., 0]
    decoded = decode_image(KINDS["16-bit PNG"](), "x", values.shape, 1)[..., 0]
    assert np.abs(decoded.astype(int) - values).max() <= 1  # 255 * 257 >> 8: the 8-bit values come back


def test_an_animation_gives_its_first_frame():
    decoded = decode_image(_animated_gif(), "x", (10, 10), 1)
    assert abs(int(decoded.mean()) - 30) <= 2
