"""What kerasreg, export and serve agree on, in the one package all three may import.

This module is the artifact contract: the file names of an export, its tensors'
names, and the metadata keys it carries: what `python -m export` writes and what
`serve` reads. Beside it, `shared.extras` reads which extra each command needs
(and the version) from the installed metadata, and `shared.image_files` turns an image
file into the pixels a model takes, the same way for training and for serving;
`shared.processes` ties a child process's life to its parent's.

Why a package of its own: serve may import neither kerasreg nor export, and kerasreg
may not import serve, so what they share cannot live in any of them. It imports
nothing of the three; this module and `shared.extras` only the standard library.
"""

from __future__ import annotations

# Files of an export directory.
SAVED_MODEL = "saved_model"
ONNX = "model.onnx"
ONNX_INT8 = "model.int8.onnx"
TFLITE = "model.tflite"  # LiteRT (TensorFlow Lite)
TFLITE_INT8 = "model.int8.tflite"
C_DIR = "c"  # model.h and model.c: plain C99 for boards with no runtime
C_INT8_DIR = "c/int8"
MODEL_CARD = "model.json"
SAMPLES = "samples"

# The graph's one input and one output, in every artifact.
INPUT_NAME = "images"  # uint8 [batch, H, W, C]
OUTPUT_NAME = "probabilities"  # float32 [batch, K], in the order of the class names
BATCH_AXIS = "batch"  # the name of the free first axis, in every artifact and in serve's reports

# Metadata: every key is "kerasreg." + one of these; values are JSON unless noted.
PREFIX = "kerasreg."
# The model card's entries that the file carries too.
CARD_PROPERTIES = ("classes", "task", "input", "output", "dataset", "metrics", "parity", "templates", "exported_at")
VERSION = "version"  # the kerasreg version that exported it (a plain string)
QUANTIZATION = "quantization"  # on quantized files: how (a plain string)
REQUIRED = ("classes", "task", "input")  # what serve cannot run a model without


def key(name: str) -> str:
    """The metadata key of a contract entry: key("classes") == "kerasreg.classes"."""
    return PREFIX + name


# The largest image a model reads, from a folder in training or in a request to serve: sized to
# the model, since nobody needs a 50 Mpx picture for a 28x28 classifier. PIXELS_PER_INPUT times
# the model's input, within MIN_IMAGE_PIXELS (2000x2000) and MAX_IMAGE_PIXELS (well before a
# decompression bomb runs memory out); a 64x64 model takes any phone photo up to 50 Mpx.
PIXELS_PER_INPUT = 12_288
MIN_IMAGE_PIXELS = 4_000_000
MAX_IMAGE_PIXELS = 50_000_000


def image_pixel_limit(input_shape: tuple[int, int, int], override: int | None = None) -> int:
    """The most pixels one image may declare for a model taking `input_shape` (the override when given)."""
    height, width = input_shape[:2]
    return override or int(min(MAX_IMAGE_PIXELS, max(MIN_IMAGE_PIXELS, PIXELS_PER_INPUT * height * width)))
