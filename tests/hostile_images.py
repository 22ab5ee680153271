"""Image files whose structure asks a decoder for unbounded work, as the probe of issue 32 sent them.

Each is a valid small image with padding its format allows: empty JPEG comments or
PNG chunks or GIF comment blocks before the pixels, or empty progressive refinement
scans that make libjpeg pass over every pixel again. make soak's upload phase sends them too.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def jpeg(width: int = 8, height: int = 8, progressive: bool = False, noise: bool = True) -> bytes:
    """A real RGB JPEG (random pixels, or flat grey)."""
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), np.uint8) if noise else None
    image = Image.fromarray(pixels) if noise else Image.new("RGB", (width, height), (90, 120, 200))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", progressive=progressive, quality=80)
    return buffer.getvalue()


def jpeg_comments(count: int) -> bytes:
    """An 8x8 JPEG after `count` empty comment markers (4 bytes each)."""
    base = jpeg()
    return base[:2] + b"\xff\xfe\x00\x02" * count + base[2:]


def jpeg_scans(count: int, width: int = 8, height: int = 8) -> bytes:
    """A progressive JPEG with `count` empty AC refinement scans of its first component before its end."""
    base = jpeg(width, height, progressive=True, noise=False)
    refine = b"\xff\xda\x00\x08\x01\x01\x00\x01\x3f\x10"  # 1 component, Ss=1 Se=63, Ah=1 Al=0
    return base[:-2] + refine * count + base[-2:]


def png_chunks(count: int) -> bytes:
    """A 28x28 palette PNG after `count` empty ancillary chunks (12 bytes each)."""
    image = Image.fromarray((np.arange(28 * 28) % 4).astype(np.uint8).reshape(28, 28), "P")
    image.putpalette([0, 0, 0, 255, 255, 255, 128, 128, 128, 50, 50, 50])
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    data = buffer.getvalue()
    chunk = struct.pack(">I", 0) + b"abCd" + struct.pack(">I", zlib.crc32(b"abCd"))
    at = data.find(b"IDAT") - 4
    return data[:at] + chunk * count + data[at:]


def gif_comments(count: int) -> bytes:
    """An 8x8 GIF after `count` empty comment extensions (3 bytes each)."""
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8), "L").save(buffer, "GIF")
    data = buffer.getvalue()
    flags = data[10]
    at = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)  # after the screen descriptor and global palette
    return data[:at] + b"!\xfe\x00" * count + data[at:]
