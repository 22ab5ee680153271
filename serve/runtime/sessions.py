"""The runtimes behind `serve.Model`, one per file format, each imported only when its file is loaded.

    .onnx    onnxruntime   (pip install "kerasreg[serve]")
    .tflite  ai-edge-litert, LiteRT's runtime with no TensorFlow   (pip install "kerasreg[litert]")

Each session reads its file's kerasreg.* metadata and the facts of its graph (input
dtype and shape, output shape) for `serve.runtime.model` to check against each other, and
runs a uint8 batch to probabilities.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from serve.errors import ModelLoadError
from shared import contract

RUNTIMES = {".onnx": ("onnxruntime", "serve"), ".tflite": ("ai-edge-litert", "litert")}  # runtime, extra


@dataclass(frozen=True)
class Graph:
    """What the file's graph takes and gives: the first input's name, dtype and shape, the output's shape."""

    input_name: str
    input_type: str  # numpy's name, e.g. "uint8"
    input_shape: list  # [batch, H, W, C]; a free batch axis is named "batch"
    output_shape: list  # [batch, K]


def open_session(path: Path, data: bytes):
    """The session for `path`'s format, from the file's bytes; ModelLoadError for a file it cannot run."""
    suffix = path.suffix.lower()
    if suffix not in RUNTIMES:
        raise ModelLoadError(f"{path}: expected a .onnx or .tflite file written by python -m export.")
    runtime, extra = RUNTIMES[suffix]
    try:
        return (OnnxSession if suffix == ".onnx" else LiteRTSession)(data)
    except ImportError:
        raise ModelLoadError(
            f'{path}: a {suffix} file runs on {runtime}, which is not installed: pip install "kerasreg[{extra}]"'
        ) from None
    except Exception as e:  # noqa: BLE001 - each runtime raises its own types for a file it cannot read
        reason = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise ModelLoadError(f"{path}: not a loadable {suffix[1:].upper()} model ({reason}).") from None


def onnx_options():
    """Options for one image at a time and for large batches alike.

    A thread per core (onnxruntime's default): a batch of 1,024 MNIST images runs
    1.8x faster on 2 cores than on one, while a single image is too small to be
    split and runs on the calling thread either way (22 us both). No spinning:
    idle pool threads would otherwise busy-wait between requests and take the
    CPU from the server. Full graph optimisation folds the rescale/standardise
    arithmetic once at load.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 0
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class OnnxSession:
    """An ONNX file under onnxruntime."""

    kind = "ONNX"
    platform = "onnxruntime_onnx"  # as the Open Inference Protocol's metadata names it

    def __init__(self, data: bytes):
        import onnxruntime as ort

        self.session = ort.InferenceSession(data, onnx_options(), providers=["CPUExecutionProvider"])
        inp, out = self.session.get_inputs()[0], self.session.get_outputs()[0]
        dtype = inp.type.removeprefix("tensor(").removesuffix(")")
        self.graph = Graph(inp.name, dtype, list(inp.shape), list(out.shape))
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self._names = ([out.name], inp.name)

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities [N, K] of a uint8 batch."""
        outputs, input_name = self._names
        return self.session.run(outputs, {input_name: batch})[0]

    def stoppable(self) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[], None]]:
        """A run another thread can stop (onnxruntime's RunOptions.terminate), and what stops it."""
        import onnxruntime as ort

        options = ort.RunOptions()
        outputs, input_name = self._names

        def stop() -> None:
            options.terminate = True

        return (lambda batch: self.session.run(outputs, {input_name: batch}, options)[0]), stop


class LiteRTSession:
    """A LiteRT (.tflite) file under ai-edge-litert's interpreter, which needs no TensorFlow.

    One interpreter is one set of buffers: runs take turns (a lock), and the input
    is resized only when the batch size changes.
    """

    kind = "LiteRT"
    platform = "litert_tflite"

    def __init__(self, data: bytes):
        from ai_edge_litert import schema_py_generated as schema
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_content=data)
        (inp,), (out,) = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        signatures = self.interpreter.get_signature_list()
        name = next(iter(signatures.values()))["inputs"][0] if signatures else inp["name"]

        def dims(signature) -> list:  # a free batch axis as ONNX names it, for one way of reporting shapes
            return [contract.BATCH_AXIS if i == 0 and d == -1 else int(d) for i, d in enumerate(signature)]

        input_type = np.dtype(inp["dtype"]).name
        self.graph = Graph(name, input_type, dims(inp["shape_signature"]), dims(out["shape_signature"]))
        self._input, self._output = inp["index"], out["index"]
        self._batch = None
        self._lock = threading.Lock()
        model = schema.Model.GetRootAs(data, 0)
        self.metadata = {}
        for i in range(model.MetadataLength()):  # the converter's own entries are binary: read only kerasreg's
            entry = model.Metadata(i)
            name = entry.Name().decode("utf-8", "replace")
            if name.startswith(contract.PREFIX):
                self.metadata[name] = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes().decode("utf-8", "replace")

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities [N, K] of a uint8 batch."""
        with self._lock:
            if self._batch != len(batch):
                self.interpreter.resize_tensor_input(self._input, list(batch.shape))
                self.interpreter.allocate_tensors()
                self._batch = len(batch)
            self.interpreter.set_tensor(self._input, batch)
            self.interpreter.invoke()
            return self.interpreter.get_tensor(self._output).copy()

    def stoppable(self) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[], None]]:
        """LiteRT's interpreter cannot be stopped from outside: a timed-out run finishes on its own (the 503 stands)."""
        return self.run, lambda: None
