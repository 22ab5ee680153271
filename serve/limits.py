"""What the HTTP server allows, and its defaults: one place for the flags, the server and the docs.

Standard library only, so `python -m serve --help` works before the http extra is known to be installed.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_BATCH = 256  # images per request
# Batches of at most this many pixel values run on the event loop: ~1 ms of work at
# most, less than the ~40 us a hop to a worker thread and back costs a 20 us model
# several times over. Larger batches run in a thread, under the timeout.
INLINE_MAX_VALUES = 1 << 18
# Images declaring at most this many pixels in all are decoded on the event loop
# (a few ms at most); more are decoded in a thread, under the timeout.
INLINE_DECODE_PIXELS = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Request limits; see `python -m serve http --help`."""

    max_body_bytes: int = 8 * 1024 * 1024  # 8 MiB: a batch of 256 CIFAR images as JSON numbers fits
    timeout_seconds: float = 10.0
    max_image_pixels: int | None = None  # None: sized to the model (serve.images.max_pixels_for)

    def image_pixel_limit(self, input_shape: tuple[int, int, int]) -> int:
        """The most pixels one image may declare, for a model taking `input_shape`."""
        from serve.images import max_pixels_for

        return self.max_image_pixels or max_pixels_for(input_shape)


@dataclass(frozen=True)
class ConnectionLimits:
    """How long and how many: see `python -m serve http --help`."""

    request_timeout: float = 10.0  # from a request's first byte to its last
    keep_alive_timeout: float = 5.0  # an idle connection between requests
    max_connections: int = 512  # open at once; well under the usual 1024 file descriptors
    shutdown_grace: float = 10.0  # for requests in flight after SIGTERM
