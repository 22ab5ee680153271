"""The artifact contract: the file names of an export, its tensors' names, and the metadata keys it carries.

One home for what `python -m export` writes and what `serve` reads. Standard
library only and importing nothing else of serve, so export reads it too without
pulling in onnxruntime (serve may import neither kerasreg nor export, so the
contract cannot live there).
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
MODEL_SUFFIXES = (".onnx", ".tflite")  # the files serve loads

# The graph's one input and one output, in every artifact.
INPUT_NAME = "images"  # uint8 [batch, H, W, C]
OUTPUT_NAME = "probabilities"  # float32 [batch, K], in the order of the class names
BATCH_AXIS = "batch"

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
