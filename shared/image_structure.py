"""How much work an image file's structure asks of its decoder, bounded before Pillow reads it.

    structure = check_structure(data, "cat.jpg")   # NotAnImage when a header asks for unbounded work
    structure.passes                                # scans of a progressive JPEG (1 for anything else)

Pillow reads the part of a JPEG before its first scan, a PNG's chunks and a GIF's
blocks in Python, one marker, chunk or block at a time, and nothing bounds how many
a file may hold: an 8 MB JPEG of 2 million empty comments took 2.3 s to open here,
a PNG of 600,000 empty chunks 2.2 s, while its pixels were 8x8. And libjpeg decodes
every scan of a progressive JPEG over the whole image: 20,000 empty scans in a
3000x3000 file cost 84 s of CPU on one machine. No library bounds these for Pillow
(its decoders have no such option, and libjpeg-turbo's scan limit is TurboJPEG's,
not libjpeg's API that Pillow uses), so this module walks the same structure first
at C speed (bytes.find, struct) and refuses a file that asks for more than:

- MAX_STRUCTURE_STEPS steps of Pillow's Python loops (markers, chunks, blocks and
  sub-blocks, plus any junk bytes between them), with room for 1 per KiB of file:
  a camera JPEG takes ~20, a PNG's chunks of 8 KiB ~130 per MB;
- MAX_JPEG_SCANS scans (nvImageCodec's default limit, set after the cure53 audit of
  libjpeg-turbo; an encoder's progressive file has about 10).

Only the bytes are walked; nothing is decoded. Formats that need no walk (BMP, WebP:
their headers are fixed or parsed in C) pass with one pass.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

MAX_STRUCTURE_STEPS = 4096  # per file, plus 1 per KiB of it
MAX_JPEG_SCANS = 256

_JPEG_NO_LENGTH = frozenset((0xD8, 0xD9, *range(0xD0, 0xD8), *range(0xC8, 0xC9), *range(0xF0, 0xFE)))
_JPEG_SOS = 0xDA
# Segments whose Pillow handler loops over their contents in Python: the step they cost per byte of it.
_JPEG_PER_BYTE = {
    0xDB: 65,
    **dict.fromkeys((*range(0xC0, 0xC4), *range(0xC5, 0xC8), *range(0xC9, 0xD0), 0xDE), 3),
    0xED: 12,
}  # fmt: skip  DQT: a table per 65 bytes; SOF: a component per 3; APP13: a resource per 12
_NOT_FILL = re.compile(rb"[^\xff]")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class StructureError(ValueError):
    """A file whose structure asks for more work than allowed, said in one line."""


@dataclass(frozen=True)
class Structure:
    """What the walk found: the passes a decoder makes over the pixels (a progressive JPEG's scans, else 1)."""

    passes: int = 1


def check_structure(data: bytes | memoryview, label: str) -> Structure:
    """The work `data` asks for, or StructureError naming what is over the limit. Bytes not of a walked format pass:
    Pillow's own checks judge them."""
    data = bytes(data) if isinstance(data, memoryview) else data
    budget = MAX_STRUCTURE_STEPS + len(data) // 1024
    if data[:3] == b"\xff\xd8\xff":
        return _jpeg(data, label, budget)
    if data[:8] == PNG_SIGNATURE:
        _png(data, label, budget)
    elif data[:6] in (b"GIF87a", b"GIF89a"):
        _gif(data, label, budget)
    return Structure()


def _over(label: str, what: str) -> StructureError:
    return StructureError(f"{label}: {what}; this is not an image a camera or an encoder writes. Re-encode it.")


def _jpeg(data: bytes, label: str, budget: int) -> Structure:
    """Pillow's marker loop (JpegImagePlugin._open), counted: up to the first scan, then the scans themselves."""
    steps, at, end = 0, 2, len(data)
    while at < end:
        if data[at] != 0xFF:  # junk between segments: Pillow skips it a byte at a time
            found = data.find(b"\xff", at)
            found = end if found < 0 else found
            steps += found - at
            at = found
        elif at + 1 < end and data[at + 1] == 0xFF:  # fill bytes: one step each; the last one starts the marker
            found = _NOT_FILL.search(data, at + 1)
            last = (found.start() if found else end) - 1
            steps += last - at
            at = last
        else:
            if at + 1 >= end:
                break
            marker = data[at + 1]
            steps += 1
            if marker in _JPEG_NO_LENGTH or marker == 0x00 or at + 3 >= end:
                at += 2
            else:
                length = struct.unpack_from(">H", data, at + 2)[0]
                steps += max(0, length - 2) // _JPEG_PER_BYTE.get(marker, 1 << 30)
                if marker == _JPEG_SOS:
                    return _jpeg_scans(data, label, at)
                at += 2 + length
        if steps > budget:
            raise _over(label, f"its header holds more than {budget:,} markers, junk or table entries")
    return Structure()


def _jpeg_scans(data: bytes, label: str, first_scan: int) -> Structure:
    """Every start-of-scan marker from the first on (in entropy-coded data a 0xFF is always stuffed, so each is
    a scan, or one of an embedded thumbnail's: an upper bound)."""
    scans = data.count(b"\xff\xda", first_scan)
    if scans > MAX_JPEG_SCANS:
        raise _over(label, f"it holds {scans:,} JPEG scans, more than the {MAX_JPEG_SCANS} allowed")
    return Structure(passes=scans)


def _png(data: bytes, label: str, budget: int) -> None:
    """Every chunk: Pillow reads each in Python, before the pixels (PngImagePlugin._open), between them and after."""
    steps, at, end = 0, 8, len(data)
    while at + 8 <= end:
        length, kind = struct.unpack_from(">I4s", data, at)
        steps += 1
        if steps > budget:
            raise _over(label, f"it holds more than {budget:,} PNG chunks")
        if kind == b"IEND":
            break
        at += 12 + length


def _gif(data: bytes, label: str, budget: int) -> None:
    """Blocks before the first image, each extension's sub-blocks, and junk bytes: Pillow's GifImageFile._seek(0)."""
    end = len(data)
    if end < 13:
        return
    flags = data[10]
    at = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)  # past the screen descriptor and global palette
    steps = 0
    while at < end:
        steps += 1
        block = data[at]
        if block in (0x2C, 0x3B):  # the first image, or the trailer
            break
        if block == 0x21 and at + 1 < end:  # an extension: its label, then sub-blocks up to an empty one
            at += 2
            while at < end and data[at] and steps <= budget:
                steps += 1
                at += 1 + data[at]
            at += 1
        else:
            at += 1  # anything else is skipped a byte at a time
        if steps > budget:
            raise _over(label, f"it holds more than {budget:,} GIF blocks before its first image")
