"""SavedModel -> ONNX through tf2onnx, with a named batch axis and kerasreg's metadata."""

from __future__ import annotations

import json
from pathlib import Path

from export.saved_model import INPUT_NAME, OUTPUT_NAME

# tf2onnx 1.17 converts up to opset 18, and onnxruntime 1.32 runs it: the newest both
# support. Older opsets down to 13 stay available for older runtimes.
DEFAULT_OPSET = 18
MIN_OPSET = 13
BATCH_AXIS = "batch"


def convert_saved_model(saved_model_dir: Path, opset: int = DEFAULT_OPSET):
    """Convert the SavedModel's serving_default to an ONNX ModelProto (input/output names kept)."""
    import tf2onnx
    from tf2onnx import tf_loader

    graph_def, inputs, outputs, renames = tf_loader.from_saved_model(
        str(saved_model_dir), None, None, signatures=["serving_default"], return_tensors_to_rename=True
    )
    model, _ = tf2onnx.convert.from_graph_def(
        graph_def, input_names=inputs, output_names=outputs, opset=opset, tensors_to_rename=renames
    )
    name_batch_axis(model)
    return model


def name_batch_axis(model) -> None:
    """Call the first axis of the graph's input and output `batch` (tf2onnx leaves unk__N)."""
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = BATCH_AXIS


def io_names(model) -> tuple[list[str], list[str]]:
    """Names of the graph's inputs and outputs."""
    return [i.name for i in model.graph.input], [o.name for o in model.graph.output]


def set_metadata(model, properties: dict[str, object]) -> None:
    """Store `properties` as ONNX metadata_props: strings as they are, everything else as JSON."""
    import onnx

    onnx.helper.set_model_props(
        model, {k: v if isinstance(v, str) else json.dumps(v, allow_nan=False) for k, v in properties.items()}
    )


def input_spec(input_shape: tuple[int, int, int]) -> dict:
    """The `kerasreg.input` entry: name, shape (None = batch), dtype and value range."""
    return {"name": INPUT_NAME, "shape": [None, *input_shape], "dtype": "uint8", "range": [0, 255], "layout": "NHWC"}


def output_spec(class_names: list[str]) -> dict:
    """The `kerasreg.output` entry."""
    return {
        "name": OUTPUT_NAME,
        "shape": [None, len(class_names)],
        "dtype": "float32",
        "meaning": "probability of each class, in the order of kerasreg.classes",
    }
