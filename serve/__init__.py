"""serve: run an exported kerasreg model (ONNX on onnxruntime, or LiteRT), without TensorFlow.

    from serve import Model
    Model.load("exports/digits/model.onnx").classify(images, top_k=3)

    python -m serve predict exports/digits/model.onnx digit.png --top-k 3
    python -m serve http exports/digits/model.onnx --port 8501

Imports numpy, onnxruntime (or ai-edge-litert for .tflite files), Pillow and the shared
`shared` package only (granian, orjson, prometheus-client, python-multipart, grpcio and
protobuf for `http`); never
TensorFlow, Keras, tf2onnx, kerasreg or export (tests/test_serve_model.py proves it).
"""

from serve.errors import BadInput, ModelLoadError, ModelNotFound, ServeError
from shared.extras import version

__version__ = version()  # setup.py's, from the installed metadata

__all__ = ["__version__", "BadInput", "Model", "ModelLoadError", "ModelNotFound", "ServeError"]


def __getattr__(name: str):
    # `Model` on first use: `python -m serve` imports this package before it can check
    # that numpy and onnxruntime are installed (shared/extras.py).
    if name == "Model":
        from serve.runtime.model import Model

        return Model
    raise AttributeError(f"module 'serve' has no attribute {name!r}")
