"""int8 export on real MNIST: it must agree with the float model on >= 99% of argmaxes."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from test_real_data import mnist_8k_2k

from export.exporter import export_run
from kerasreg.config import TrainConfig
from kerasreg.pipeline import train_and_evaluate

pytestmark = [pytest.mark.slow, pytest.mark.realdata]


def test_int8_agrees_with_float_on_real_mnist(real_data, tmp_path):
    data = mnist_8k_2k(real_data)
    train_and_evaluate(TrainConfig(dataset="mnist", epochs=5, l2=0.01), tmp_path / "run", datasets=data)
    card = export_run(tmp_path / "run", tmp_path / "out", quantize="int8")

    def run(name):
        session = ort.InferenceSession(str(tmp_path / "out" / name), providers=["CPUExecutionProvider"])
        return session.run(None, {"images": data.test_images})[0]

    float_probs, int8_probs = run("model.onnx"), run("model.int8.onnx")
    agreement = float((float_probs.argmax(1) == int8_probs.argmax(1)).mean())
    float_acc = float((float_probs.argmax(1) == data.test_labels).mean())
    int8_acc = float((int8_probs.argmax(1) == data.test_labels).mean())
    report = card["parity"]["artifacts"]
    print(
        "real MNIST export",
        json.dumps(
            {
                "onnx_max_diff": report["model.onnx"]["max_abs_diff"],
                "int8_argmax_agreement_2000": agreement,
                "float_accuracy": float_acc,
                "int8_accuracy": int8_acc,
                "bytes": {k: v["bytes"] for k, v in card["files"].items()},
            }
        ),
    )
    assert agreement >= 0.99
    assert abs(int8_acc - float_acc) <= 0.01
    assert report["model.int8.onnx"]["argmax_agreement"] >= 0.99 and "accuracy_change" in report["model.int8.onnx"]
    assert card["files"]["model.int8.onnx"]["bytes"] < card["files"]["model.onnx"]["bytes"]
    props = {p.key for p in onnx.load(str(tmp_path / "out" / "model.int8.onnx")).metadata_props}
    assert "kerasreg.classes" in props and "kerasreg.input" in props
    assert np.isfinite(int8_probs).all()


def test_every_device_artifact_on_real_mnist(real_data, tmp_path):
    """LiteRT and C, float and int8, on the whole 2,000-image real test split (reloaded from the IDX files)."""
    from export.c_model import find_compiler
    from serve import Model

    data = mnist_8k_2k(real_data)
    train_and_evaluate(TrainConfig(dataset="mnist", epochs=5, l2=0.01), tmp_path / "run", datasets=data)
    card = export_run(tmp_path / "run", tmp_path / "out", quantize="int8", formats=("litert", "c"))
    report = card["parity"]["artifacts"]
    keras = card["parity"]["keras_accuracy"]
    accuracy = {}
    for name in ("model.tflite", "model.int8.tflite"):
        probabilities = Model.load(tmp_path / "out" / name).predict(data.test_images)
        accuracy[name] = float((probabilities.argmax(1) == data.test_labels).mean())
    print("real MNIST device artifacts", json.dumps({"keras_on_checked_images": keras, "report": report, **accuracy}))
    assert report["model.tflite"]["max_abs_diff"] <= 1e-5 and report["model.tflite"]["argmax_disagreements"] == 0
    assert report["model.int8.tflite"]["argmax_agreement"] >= 0.99
    onnx_accuracy = float(
        (Model.load(tmp_path / "out" / "model.onnx").predict(data.test_images).argmax(1) == data.test_labels).mean()
    )
    assert accuracy["model.tflite"] == onnx_accuracy >= 0.90
    assert abs(accuracy["model.int8.tflite"] - onnx_accuracy) <= 0.01
    if find_compiler() is not None:
        assert report["c/model.c"]["max_abs_diff"] <= 1e-5 and report["c/model.c"]["argmax_disagreements"] == 0
        assert report["c/int8/model.c"]["argmax_agreement"] >= 0.99
        assert report["c/int8/model.c"]["accuracy_change"] >= -0.01
    assert card["c"]["flash_bytes"] == {"float": 4 * 7850, "int8": 7840 + 4 * 10 + 4 * 10}
