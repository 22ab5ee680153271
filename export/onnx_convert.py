"""ONNX: the SavedModel converted by tf2onnx, a named batch axis, kerasreg's metadata; and its int8 twin.

model.onnx is the artifact a deployment needs alone: its metadata (written once
every check passed) carries the model card's classes, task, input spec, dataset,
metrics and parity report. model.int8.onnx (--quantize int8) is onnxruntime's
dynamic quantization of it (export/quantize.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from export.card import card_properties
from export.formats import ArtifactFormat, Checked, ExportJob, check_float, check_int8
from export.parity import check_onnx_names
from export.quantize import quantize_int8
from shared import contract
from shared.contract import BATCH_AXIS, INPUT_NAME, ONNX, ONNX_INT8, OUTPUT_NAME, SAVED_MODEL

# Older opsets down to 13 stay available for older runtimes.
DEFAULT_OPSET = 18
NEWEST_OPSET = "the newest tf2onnx 1.17 writes and onnxruntime 1.32 runs"  # why DEFAULT_OPSET is 18
MIN_OPSET = 13


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


def set_metadata(model, properties: dict[str, object]) -> None:
    """Store `properties` as ONNX metadata_props: strings as they are, everything else as JSON."""
    import onnx

    onnx.helper.set_model_props(
        model, {k: v if isinstance(v, str) else json.dumps(v, allow_nan=False) for k, v in properties.items()}
    )


def _run(path: Path, images):
    """The probabilities of the ONNX file at `path` (None when it has no such output), and its I/O names."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs, outputs = [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()]
    if inputs != [INPUT_NAME] or outputs != [OUTPUT_NAME]:
        return None, inputs, outputs
    return session.run([OUTPUT_NAME], {INPUT_NAME: images})[0], inputs, outputs


class OnnxFormat(ArtifactFormat):
    """model.onnx, and model.int8.onnx with --quantize int8."""

    name = "onnx"

    def files(self, job: ExportJob) -> list[str]:
        """model.onnx, and its int8 twin when asked for."""
        return [ONNX, ONNX_INT8] if job.quantize else [ONNX]

    def build(self, job: ExportJob) -> None:
        """Convert the staged SavedModel (built first), then quantize it when asked."""
        self._model = convert_saved_model(job.stage / SAVED_MODEL, job.opset)
        (job.stage / ONNX).write_bytes(self._model.SerializeToString())
        if job.quantize:
            quantize_int8(job.stage / ONNX, job.stage / ONNX_INT8)

    def check(self, job: ExportJob) -> list[Checked]:
        """model.onnx: names, then within --atol and the same argmax; the int8 file: its accuracy."""
        probabilities, inputs, outputs = _run(job.stage / ONNX, job.images)
        if probabilities is None:  # with the names wrong there is no `probabilities` output to compare
            found = [Checked(ONNX, {"passed": False}, check_onnx_names(ONNX, inputs, outputs))]
        else:
            found = [check_float(job, ONNX, probabilities)]
        if job.quantize:
            int8, inputs, outputs = _run(job.stage / ONNX_INT8, job.images)
            found.append(check_int8(job, ONNX_INT8, int8, f"inputs {inputs}, outputs {outputs}"))
        return found

    def finish(self, job: ExportJob, card: dict) -> None:
        """Write the card's metadata into both files, and check them fully."""
        import onnx

        properties = card_properties(card)
        set_metadata(self._model, properties)
        onnx.checker.check_model(self._model, full_check=True)
        (job.stage / ONNX).write_bytes(self._model.SerializeToString())
        if job.quantize:
            int8 = onnx.load(str(job.stage / ONNX_INT8))
            name_batch_axis(int8)
            set_metadata(int8, {**properties, contract.key(contract.QUANTIZATION): "int8 dynamic"})
            onnx.checker.check_model(int8)
            (job.stage / ONNX_INT8).write_bytes(int8.SerializeToString())

    def describe(self, job: ExportJob) -> dict:
        """The opset."""
        return {"opset": job.opset}
