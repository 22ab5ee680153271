"""A request's encoded images, their headers read and the pixel limits checked before any pixel is decoded.

decoding = plan_decoding(encoded, model, limits)   # BadInput: over a limit, or a file that asks too much
batch = decoding.run()                             # the data plane runs it: on the loop when small, else in a
                                                   # thread, stopped (`cancel`) when the request times out
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from serve.errors import BadInput, NotReady
from serve.limits import INLINE_DECODE_PIXELS, REQUEST_PIXELS_FACTOR, SCANS_PER_DECODE, Limits
from serve.runtime.image_input import decode_image, read_header
from serve.runtime.model import Model


@dataclass
class Decoding:
    """A request's encoded images, their headers read and the pixel limits checked: `run` decodes them, and
    `cancel` stops it before the next image (a request that timed out decodes nothing more)."""

    encoded: dict[int, bytes]
    label: Callable[[int], str]
    size: tuple[int, int]
    channels: int
    per_image: int
    pixels: int  # what decoding them costs, in pixels (a progressive JPEG's once per SCANS_PER_DECODE scans)
    assemble: Callable[[dict[int, np.ndarray]], np.ndarray] = lambda images: np.stack([*images.values()])
    cancelled: threading.Event = field(default_factory=threading.Event)

    @property
    def small(self) -> bool:
        """Cheap enough to decode on the event loop (under a millisecond)."""
        return self.pixels <= INLINE_DECODE_PIXELS

    def run(self) -> np.ndarray:
        """The request's batch: the images decoded (by index, then `assemble`d); NotReady once cancelled."""
        decoded = {}
        for i, data in self.encoded.items():
            if self.cancelled.is_set():
                raise NotReady("decoding the images was stopped: the request timed out.")
            decoded[i] = decode_image(data, self.label(i), self.size, self.channels, max_pixels=self.per_image)
        return self.assemble(decoded)

    def cancel(self) -> None:
        """Decode no further image."""
        self.cancelled.set()


def plan_decoding(
    encoded: dict[int, bytes],
    model: Model,
    limits: Limits,
    label: Callable[[int], str] = "instances[{}]".format,
    assemble: Callable[[dict[int, np.ndarray]], np.ndarray] | None = None,
) -> Decoding:
    """A request's images, to decode within the pixel limits; nothing decoded yet.

    Every header is read first: an image over the per-image limit, or images that cost
    more than the request's total, are refused before any pixel is decoded. `label(i)`
    names image i in an error; `assemble` makes the batch of the decoded images (by
    default: stacked in order).
    """
    per_image = limits.image_pixel_limit(model.info.input_shape)
    cost = 0
    for i, data in encoded.items():
        pixels, passes = read_header(data, label(i))
        if pixels > per_image:
            raise BadInput(f"{label(i)}: {pixels:,} pixels exceeds the limit of {per_image:,}; send it smaller.")
        cost += pixels * -(-passes // SCANS_PER_DECODE)
    budget = REQUEST_PIXELS_FACTOR * per_image
    if cost > budget:
        raise BadInput(
            f"the images of this request declare {cost:,} pixels (a progressive JPEG's once per "
            f"{SCANS_PER_DECODE} scans); the limit is {budget:,}; split it."
        )
    size, channels = model.info.input_shape[:2], model.info.channels
    decoding = Decoding(encoded, label, size, channels, per_image, cost)
    return decoding if assemble is None else replace(decoding, assemble=assemble)
