"""serve: run an exported kerasreg model with onnxruntime, without TensorFlow.

    from serve import Model
    Model.load("exports/digits/model.onnx").classify(images, top_k=3)

    python -m serve predict exports/digits/model.onnx digit.png --top-k 3
    python -m serve http exports/digits/model.onnx --port 8501

Imports numpy, onnxruntime and Pillow only (Starlette and uvicorn for `http`);
never TensorFlow, Keras, tf2onnx, kerasreg or export.
"""

__version__ = "0.1.0"

from serve.errors import BadInput, ModelLoadError, ModelNotFound, ServeError
from serve.model import Model

__all__ = ["__version__", "BadInput", "Model", "ModelLoadError", "ModelNotFound", "ServeError"]
