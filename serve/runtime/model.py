"""`Model`: an exported kerasreg model (ONNX or LiteRT), with no TensorFlow.

from serve import Model
model = Model.load("exports/digits/model.onnx")      # or model.tflite
model.classify(images, top_k=3)   # images: uint8 [N,H,W,C] or one [H,W,C]
"""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from serve.errors import BadInput, ModelLoadError
from serve.limits import DEFAULT_MAX_MODEL_BYTES
from shared import contract
from shared.ranking import DEFAULT_TOP_K, top_classes

REQUIRED_KEYS = tuple(contract.key(name) for name in contract.REQUIRED)
INPUT_KEY = contract.key("input")
SUM_TOLERANCE = 0.05  # a test inference's probabilities must sum to 1 within this


@dataclass(frozen=True)
class ModelInfo:
    """What the model file's kerasreg metadata says about the model (ONNX metadata_props, or LiteRT metadata)."""

    classes: tuple[str, ...]
    task: str
    input_name: str
    input_shape: tuple[int, int, int]  # H, W, C
    output_name: str
    dataset: str
    properties: dict  # every kerasreg.* entry, JSON decoded where it is JSON

    def meta(self, name: str, default=None):
        """A contract entry of the metadata by its short name: info.meta("metrics")."""
        return self.properties.get(contract.key(name), default)

    @property
    def channels(self) -> int:
        """1 for grayscale models, 3 for RGB."""
        return self.input_shape[2]


def _decode(value: str):
    try:
        return json.loads(value)
    except ValueError:
        return value


def read_info(session) -> ModelInfo:
    """Parse kerasreg's metadata from a session (serve/runtime/sessions.py) and check it against the graph."""
    props = {k: _decode(v) for k, v in session.metadata.items() if k.startswith(contract.PREFIX)}
    missing = [k for k in REQUIRED_KEYS if k not in props]
    if missing:
        raise ModelLoadError(f"the {session.kind} file lacks {', '.join(missing)}; export it with python -m export.")
    spec = props[INPUT_KEY]
    try:
        shape = tuple(int(d) for d in spec["shape"][1:])
        classes = tuple(str(c) for c in props[contract.key("classes")])
        name = str(spec["name"])
    except (KeyError, TypeError, ValueError):
        raise ModelLoadError(f"{INPUT_KEY} metadata is malformed; export the model again.") from None
    if len(shape) != 3 or shape[2] not in (1, 3):
        raise ModelLoadError(f"{INPUT_KEY} shape {spec['shape']} is not [batch,H,W,1|3].")
    _check_graph(session.graph, name, shape, classes)
    return ModelInfo(
        classes,
        str(props[contract.key("task")]),
        name,
        shape,
        contract.OUTPUT_NAME,
        str(props.get(contract.key("dataset"), "")),
        props,
    )


def _check_graph(graph, input_name: str, shape: tuple[int, int, int], classes: tuple[str, ...]) -> None:
    """The metadata must describe the graph it sits in: input name, dtype and size, and one output per class."""
    if graph.input_name != input_name:
        raise ModelLoadError(f"{INPUT_KEY} names {input_name!r} but the graph's input is {graph.input_name!r}.")
    if graph.input_type != "uint8":
        raise ModelLoadError(f"the graph's input is {graph.input_type}; {INPUT_KEY} says uint8 pixels.")
    if list(graph.input_shape[1:]) != list(shape):
        raise ModelLoadError(f"{INPUT_KEY} says images of {list(shape)} but the graph takes {graph.input_shape[1:]}.")
    if len(graph.output_shape) != 2 or graph.output_shape[1] != len(classes):
        raise ModelLoadError(
            f"{contract.key('classes')} names {len(classes)} classes but the graph's output is {graph.output_shape}."
        )


def read_model_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of a model file, refusing what is not a regular file or holds more than `max_bytes`."""
    wanted = "pass the model.onnx (or .tflite) written by python -m export."
    try:
        info = path.stat()
    except OSError:
        raise ModelLoadError(f"{path} not found; {wanted}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ModelLoadError(f"{path} is not a regular file; {wanted}")
    if info.st_size > max_bytes:
        raise ModelLoadError(
            f"{path}: {info.st_size:,} bytes is over the limit of {max_bytes:,} (--max-model-bytes); a kerasreg "
            "export is far smaller: check the file, or raise the limit."
        )
    with open(path, "rb") as f:
        data = f.read(max_bytes + 1)  # it may grow after the check: read no more than the limit allows
    if len(data) > max_bytes:
        raise ModelLoadError(f"{path} grew past the limit of {max_bytes:,} bytes while it was read.")
    return data


class Model:
    """An exported classifier: validated uint8 images in, class probabilities out."""

    def __init__(self, session, info: ModelInfo, path: Path | None = None, data: bytes = b""):
        self.session = session
        self.info = info
        self.path = path
        self.data = data  # the file's bytes, as loaded: what the session runs, even if the file changes or goes

    @classmethod
    def load(cls, path: Path | str, max_bytes: int = DEFAULT_MAX_MODEL_BYTES) -> Model:
        """Load `path`: a model.onnx (onnxruntime) or a model.tflite (LiteRT) written by python -m export.

        The file must be a regular file of at most `max_bytes`, checked before a byte is read.

        Raises:
            ModelLoadError: missing, not a regular file, too large, a format or runtime it cannot run, or no
                kerasreg metadata.
        """
        from serve.runtime.sessions import open_session

        path = Path(path)
        data = read_model_file(path, max_bytes)
        session = open_session(path, data)
        try:
            info = read_info(session)
        except ModelLoadError as e:
            raise ModelLoadError(f"{path}: {e}") from None
        return cls(session, info, path, data)

    def self_check(self) -> None:
        """Run one blank image through the model: it must give one probability per class, summing to 1.

        Raises:
            ModelLoadError: the graph runs but answers something else (a file whose metadata lies).
        """
        where = f"{self.path}: " if self.path else ""
        try:
            probabilities = self.run(np.zeros((1, *self.info.input_shape), np.uint8))
        except Exception as e:  # noqa: BLE001 - each runtime's own error types
            raise ModelLoadError(f"{where}the test inference failed ({str(e).splitlines()[0][:160]}).") from None
        expected = (1, len(self.info.classes))
        if probabilities.shape != expected or not np.isfinite(probabilities).all():
            raise ModelLoadError(f"{where}the test inference gave {probabilities.shape}, expected {expected}.")
        # Loose enough for an int8 file's softmax, each value quantized to 1/256; tight enough to tell logits.
        if abs(float(probabilities.sum()) - 1.0) > SUM_TOLERANCE:
            raise ModelLoadError(f"{where}the test inference's probabilities sum to {probabilities.sum():.4f}, not 1.")

    def validate(self, images) -> np.ndarray:
        """Check and convert `images` to uint8 [N,H,W,C]; a single image gets a batch axis.

        Other integer and float types are accepted when finite and within 0..255
        (pixel values, not [0, 1]); floats are rounded.

        Raises:
            BadInput: wrong shape, non-numeric, NaN/inf, or values outside 0..255.
        """
        h, w, c = self.info.input_shape
        if isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.shape[-3:] == (h, w, c):
            # The common case, as the request parsers give it: nothing to check but the axes.
            if images.ndim == 3:
                return np.ascontiguousarray(images[np.newaxis])
            if images.ndim == 4:
                return np.ascontiguousarray(images)
        try:
            array = np.asarray(images)
        except ValueError:
            raise BadInput("images are ragged: every image must have the same shape.") from None
        if array.ndim == 0:
            raise BadInput(f"images must be an array [N,{h},{w},{c}], got a single value.")
        if array.dtype == object:
            raise BadInput(f"images are ragged or not numbers; expected uint8 [N,{h},{w},{c}].")
        if array.dtype == bool or not (
            np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
        ):
            raise BadInput(f"images have dtype {array.dtype}; expected integers 0..255 (uint8).")
        received = list(array.shape)
        if c == 1 and array.ndim in (2, 3) and array.shape[-2:] == (h, w):
            array = array[..., np.newaxis]  # grayscale without its channel axis
        if array.ndim == 3:
            array = array[np.newaxis]
        if array.ndim != 4 or array.shape[1:] != (h, w, c):
            raise BadInput(f"images have shape {received}; expected [N,{h},{w},{c}] or [{h},{w},{c}].")
        if array.dtype != np.uint8:
            if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
                raise BadInput("images contain NaN or infinity; expected pixel values 0..255.")
            if array.size and (array.min() < 0 or array.max() > 255):
                raise BadInput(f"pixel values range {array.min()}..{array.max()}; expected 0..255.")
            array = np.rint(array).astype(np.uint8)
        return np.ascontiguousarray(array)

    def predict(self, images) -> np.ndarray:
        """Probabilities [N, K] for uint8 images [N,H,W,C] (or one image [H,W,C])."""
        return self.run(self.validate(images))

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities [N, K] for a batch that `validate` returned (no second check)."""
        return self.session.run(batch)

    def classify(self, images, top_k: int = DEFAULT_TOP_K) -> list[list[tuple[str, float]]]:
        """The `top_k` most probable (class name, probability) pairs per image, highest first."""
        if top_k < 1:
            raise BadInput(f"Received top_k={top_k}. Expected a positive integer.")
        probabilities = self.predict(images)
        order = top_classes(probabilities, top_k)
        return [
            [(self.info.classes[j], float(row[j])) for j in idx] for row, idx in zip(probabilities, order, strict=True)
        ]
