"""LiteRT (TensorFlow Lite): model.tflite from the SavedModel, and with --quantize int8 a full-integer twin.

model.tflite is the staged SavedModel converted by TensorFlow's TFLiteConverter with
built-in ops only (no "flex" TensorFlow ops: a device runtime cannot run them),
`images` uint8 [batch,H,W,C] in and the probabilities out, batch resizable.
model.int8.tflite holds int8 weights and activations, calibrated on the run's
training images (train_sample.npz; never its test images); it takes the same uint8
pixels (its input quantization is scale 1, zero point 0: the raw pixel values) and
gives float probabilities. Both carry the card's kerasreg.* entries as LiteRT
metadata, so `serve` reads them as it reads an ONNX file's.

Checked, fail closed: the float file within --atol of Keras with the same argmax;
the int8 file's accuracy within a point of Keras's; no flex op; a resizable batch.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from export.card import card_properties
from export.formats import ArtifactFormat, Checked, ExportJob, check_float, check_int8
from shared import contract
from shared.contract import INPUT_NAME, OUTPUT_NAME, SAVED_MODEL, TFLITE, TFLITE_INT8

CALIBRATION_BATCH = 32


def convert_float(saved_model_dir: Path) -> bytes:
    """The SavedModel's serving_default as a LiteRT flatbuffer, built-in ops only."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return _quietly(converter.convert)


def convert_int8(affine, input_shape: tuple[int, int, int], binary: bool, calibration: np.ndarray) -> bytes:
    """The affine map as a full-integer LiteRT flatbuffer: uint8 pixels in, float probabilities out."""
    import tensorflow as tf

    kernel, bias = affine
    features = int(kernel.shape[0])

    # Float pixels 0..255 in: calibration then sees exactly that range, so the uint8 input's
    # quantization is scale 1, zero point 0, and a client passes raw pixel values.
    @tf.function(input_signature=[tf.TensorSpec((None, *input_shape), tf.float32, name=INPUT_NAME)])
    def serve(images):
        logits = tf.matmul(tf.reshape(images, [-1, features]), kernel) + bias
        if binary:
            p = tf.sigmoid(logits)
            return {OUTPUT_NAME: tf.concat([1.0 - p, p], axis=1)}
        return {OUTPUT_NAME: tf.nn.softmax(logits, axis=1)}

    samples = calibration.astype(np.float32)
    # A black and a white image pin the input's range to 0..255 whatever the sample's brightest pixel:
    # the uint8 input then is the raw pixel value (scale 1, zero point 0), as every other artifact takes it.
    extremes = np.stack([np.zeros(input_shape, np.float32), np.full(input_shape, 255.0, np.float32)])

    def representative():
        yield [extremes]
        for start in range(0, len(samples), CALIBRATION_BATCH):
            yield [samples[start : start + CALIBRATION_BATCH]]

    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], serve)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.float32
    return _quietly(converter.convert)


def _quietly(convert):
    """Run a conversion without the warning it gives for every uint8 input ("Statistics for quantized inputs were
    expected"): the calibration above sets them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return convert()


def with_metadata(flatbuffer: bytes, properties: dict) -> bytes:
    """`flatbuffer` with `properties` added as LiteRT metadata entries (name -> UTF-8 text, JSON unless a string)."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
    model.metadata = list(model.metadata or [])
    for name, value in properties.items():
        text = value if isinstance(value, str) else json.dumps(value, allow_nan=False)
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(text.encode(), np.uint8)
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name, entry.buffer = name, len(model.buffers) - 1
        model.metadata.append(entry)
    builder = flatbuffers.Builder(len(flatbuffer) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def flex_ops(flatbuffer: bytes) -> list[str]:
    """The ops of the file that only TensorFlow's "flex" delegate can run (custom ops named Flex...)."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAs(flatbuffer, 0)
    codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    return [(c.CustomCode() or b"").decode() for c in codes if (c.CustomCode() or b"").startswith(b"Flex")]


def run_litert(path: Path, images: np.ndarray) -> tuple[np.ndarray | None, str]:
    """Probabilities of a LiteRT file on `images` (one batch), or None and why it cannot be run so."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    if int(inp["shape_signature"][0]) != -1:
        return None, f"its batch dimension is fixed at {int(inp['shape_signature'][0])}; expected a resizable one"
    if inp["dtype"] != np.uint8 or list(inp["shape_signature"][1:]) != list(images.shape[1:]):
        return None, f"it takes {inp['dtype'].__name__} {list(inp['shape_signature'])}; expected uint8 pixels"
    if inp["quantization"] not in ((0.0, 0), (1.0, 0)):  # (0, 0): not quantized
        scale, zero = inp["quantization"]
        return None, f"its input means pixel x {scale:g} - {zero}; expected the raw pixel values (scale 1, zero 0)"
    interpreter.resize_tensor_input(inp["index"], list(images.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], images)
    interpreter.invoke()
    return interpreter.get_tensor(out["index"]).copy(), ""


class LiteRTFormat(ArtifactFormat):
    """model.tflite, and model.int8.tflite with --quantize int8."""

    name = "litert"
    flag = "litert"

    def files(self, job: ExportJob) -> list[str]:
        """The float file, and the full-integer one when asked for."""
        return [TFLITE, TFLITE_INT8] if job.quantize else [TFLITE]

    def build(self, job: ExportJob) -> None:
        """Convert the staged SavedModel; calibrate and convert the int8 twin when asked."""
        (job.stage / TFLITE).write_bytes(convert_float(job.stage / SAVED_MODEL))
        if job.quantize:
            self._calibrated_on = calibration = job.calibration()
            int8 = convert_int8(job.affine, job.run.input_shape, job.binary, calibration)
            (job.stage / TFLITE_INT8).write_bytes(int8)

    def check(self, job: ExportJob) -> list[Checked]:
        """No flex ops, a resizable batch; the float file to --atol, the int8 file to a point of accuracy."""
        found = []
        for file, checker in ((TFLITE, check_float), (TFLITE_INT8, check_int8))[: 2 if job.quantize else 1]:
            flatbuffer = (job.stage / file).read_bytes()
            flex = flex_ops(flatbuffer)
            probabilities, why_not = run_litert(job.stage / file, job.images) if not flex else (None, "")
            if flex:
                why_not = f"it needs TensorFlow's flex ops {', '.join(flex)}, which a device runtime cannot run"
            checked = checker(job, file, probabilities, why_not)
            checked.entry["bytes"] = len(flatbuffer)
            found.append(checked)
        return found

    def finish(self, job: ExportJob, card: dict) -> None:
        """Write the card's kerasreg.* entries into each file as LiteRT metadata."""
        properties = card_properties(card)
        path = job.stage / TFLITE
        path.write_bytes(with_metadata(path.read_bytes(), properties))
        if job.quantize:
            quantized = {**properties, contract.key(contract.QUANTIZATION): "int8 full-integer (uint8 pixels in)"}
            path = job.stage / TFLITE_INT8
            path.write_bytes(with_metadata(path.read_bytes(), quantized))

    def describe(self, job: ExportJob) -> dict:
        """How the files were made."""
        import tensorflow as tf

        facts = {"converter": f"tf.lite.TFLiteConverter (TensorFlow {tf.__version__}), built-in ops only"}
        if job.quantize:
            facts["int8"] = {
                "calibration_images": int(len(self._calibrated_on)),
                "calibrated_on": "training images (train_sample.npz)",
                "input": "uint8 pixels, quantization scale 1, zero point 0",
                "output": "float32 probabilities",
            }
        return {"litert": facts}
