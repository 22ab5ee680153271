"""What the server allows, and its defaults: one place for the flags, the server and the docs.

Standard library only (and the shared `contract`, which is too), so `python -m serve --help` works before the
http extra is known to be installed.
The README's and docs/reliability.md's tables of these values are generated from this module (docs/tables.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.contract import MAX_IMAGE_PIXELS, MIN_IMAGE_PIXELS, PIXELS_PER_INPUT, image_pixel_limit

# The ports a server listens on unless told: TF Serving's REST port and Triton's gRPC port, which stock
# clients and the deploy/ manifests expect (gRPC is off unless --grpc-port is given).
HTTP_PORT = 8501
GRPC_PORT = 8001
DEFAULT_MAX_BATCH = 256  # images per request
# A model file larger than this is not read. A kerasreg export is one affine map: 4 bytes per
# pixel value and class (MNIST 31 KiB, the course's 64x64x3 cats 96 KiB, 256x256x3 with 100
# classes 75 MiB): 256 MiB leaves room for any of them and stops a stray multi-GB file.
DEFAULT_MAX_MODEL_BYTES = 256 * 2**20
# Batches of at most this many pixel values run on the event loop: ~1 ms of work at
# most, less than the ~40 us a hop to a worker thread and back costs a 20 us model
# several times over. Larger batches run in a thread, under the timeout.
INLINE_MAX_VALUES = 1 << 18
# Request bodies of at most this many bytes are parsed on the event loop (~1 ms of JSON at
# most); larger ones in a thread of their own, so a flood of 8 MB bodies cannot stall health.
INLINE_PARSE_BYTES = 1 << 18
# Images declaring at most this many pixels in all are decoded on the event loop
# (under a millisecond); more are decoded in a thread, under the timeout. An upload is
# always read and decoded off the loop.
INLINE_DECODE_PIXELS = 1 << 16
# A progressive JPEG is decoded once per scan: an encoder's has about 10, which cost about
# as much as one baseline decode. So its pixels count once per this many scans against
# the request's pixel limit (a file of 256 scans, 16 times).
SCANS_PER_DECODE = 16
# The largest image one request may send: the same rule as a training folder's (contract), so
# what trained is what serves; --max-image-pixels overrides it.
PIXEL_LIMIT_SHOWN = (  # how --help states the default
    f"sized to the model: {PIXELS_PER_INPUT:,} times its input, within "
    f"{MIN_IMAGE_PIXELS / 1e6:g}-{MAX_IMAGE_PIXELS / 1e6:g} Mpx"
)
# gRPC: what one worker's calls may hold at once. A call holds its message (at most
# --max-body-bytes) while it arrives; gRPC itself bounds only one message. So at most
# GRPC_STREAMS_PER_CONNECTION streams per connection (more are refused with RST_STREAM;
# HTTP/2's SETTINGS tell a stock client, which waits; 100 is the minimum the HTTP/2
# specification recommends: at 16, a grpc.aio client keeping 16 calls in flight had
# some refused as the previous ones closed) and GRPC_CALLS_IN_FLIGHT calls in all (more
# are RESOURCE_EXHAUSTED at once, their bytes dropped): with 8 MiB messages, 256 MiB a
# worker, a connection included. 200 streams of 4 MB on one connection took a worker
# from 111 to 861 MB.
GRPC_STREAMS_PER_CONNECTION = 100
GRPC_CALLS_IN_FLIGHT = 32
# A ModelInfer request's parameters (of the request, and of its tensor) and requested outputs:
# Triton's clients send a handful; 600,000 took a second of the event loop to walk.
MAX_REQUEST_PARAMETERS = 64
# The largest number a client may write where this API reads a count (Content-Length,
# Inference-Header-Content-Length, top_k): 63 bits, as a version. Python refuses to read a
# number of more than 4,300 digits (a 500 before), and a count past this means nothing here.
MAX_COUNT = 2**63 - 1
REQUEST_PIXELS_FACTOR = 4  # a request's images may declare this many times the per-image limit in all
MAX_REQUEST_TIMEOUT = 60.0  # seconds: the engine's (granian's) header read timeout goes no higher
WORKERS_PER_CORE = 4  # --workers may not exceed this many per core: each worker holds its own copy of the models


def read_count(text: str) -> int | None:
    """`text` as a whole number of ASCII digits up to MAX_COUNT, or None (never reading a huge number)."""
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_COUNT)):
        return None
    number = int(text)
    return number if number <= MAX_COUNT else None


@dataclass(frozen=True)
class Limits:
    """Request limits; see `python -m serve http --help`."""

    max_body_bytes: int = 8 * 1024 * 1024  # 8 MiB: a batch of 256 CIFAR images as JSON numbers fits
    timeout_seconds: float = 10.0
    max_image_pixels: int | None = None  # None: sized to the model (image_pixel_limit)

    def image_pixel_limit(self, input_shape: tuple[int, int, int]) -> int:
        """The most pixels one image may declare, for a model taking `input_shape`."""
        return image_pixel_limit(input_shape, self.max_image_pixels)


@dataclass(frozen=True)
class ServerLimits:
    """How long and how many, at the engine: see `python -m serve http --help`."""

    # From the connection's start (or the end of its previous answer) to the last
    # header, and again from the last header to the body's last byte. An idle
    # keep-alive connection closes after it too: the engine has one timer for both.
    request_timeout: float = 10.0
    max_connections: int = 512  # per worker; more wait in the kernel's backlog
    shutdown_grace: float = 10.0  # seconds a worker has to finish its requests after the stop, before it is killed
    drain_seconds: float = 3.0  # after SIGTERM: not ready, every answer says Connection: close, then stop
    poll_seconds: float = 2.0  # how often the model repository is read again for new, changed or removed versions
