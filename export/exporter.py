"""`export_run`: a run directory -> a validated export directory.

EXPORT_DIR/
  saved_model/      serving_default: images (uint8 [batch,H,W,C]) -> probabilities [batch,K]
  model.onnx        the same, with kerasreg.* metadata; all a deployment needs
  model.int8.onnx   with --quantize int8
  model.json        model card: dataset, classes, input spec, metrics, parity, sizes, sha256, versions
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np

from export import onnx_convert, parity
from export.errors import ExportError, ValidationFailed
from export.quantize import quantize_int8
from export.saved_model import load_saved_model_fn, write_saved_model
from export.staging import check_target, discard, make_stage, publish
from kerasreg import __version__
from kerasreg import run_dir as files
from kerasreg.datasets import BINARY, MULTICLASS
from kerasreg.errors import DatasetError, RunDirError
from kerasreg.model import as_float32

SAVED_MODEL = "saved_model"
ONNX = "model.onnx"
ONNX_INT8 = "model.int8.onnx"
MODEL_CARD = "model.json"
DEFAULT_ATOL = 1e-5
QUANTIZE_CHOICES = ("int8",)
SAMPLES = "samples"
N_SAMPLES = 5


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    paths = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in paths:
        if path.is_dir():
            digest.update(str(p.relative_to(path)).encode() + b"\0")
        digest.update(p.read_bytes())
    return digest.hexdigest()


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def parity_images(run_dir: Path, record: dict) -> tuple[np.ndarray, np.ndarray, str]:
    """Labelled test images for validation: the run's test split when it reloads offline, else its sample.

    A tensorflow-datasets source is not reloaded: tfds could start a download in
    the middle of an export.
    """
    from kerasreg.evaluate import reload_dataset

    try:
        data = reload_dataset(record, allow_download=False)
    except (DatasetError, TypeError, ValueError):
        data = None  # the files moved, or config.json is from another version: use the sample
    if data is not None:
        return data.test_images, data.test_labels, f"test split ({data.source})"
    images, labels = files.read_test_sample(run_dir)
    return images, labels, f"stored sample ({files.TEST_SAMPLE})"


def _onnx_probabilities(model_bytes: bytes, images: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    return session.run([onnx_convert.OUTPUT_NAME], {onnx_convert.INPUT_NAME: images})[0]


def _versions() -> dict:
    import keras
    import onnx
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    return {
        "kerasreg": __version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "tf2onnx": tf2onnx.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def _read_run(run_dir: Path) -> tuple[dict, dict]:
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir} is not a directory; pass a run directory written by python -m kerasreg.train.")
    record = files.read_json(run_dir / files.CONFIG)
    metrics = files.read_json(run_dir / files.METRICS)
    try:
        dataset = record["dataset"]
        _ = (dataset["class_names"], dataset["input_shape"], dataset["task"], dataset["name"])
    except (KeyError, TypeError):
        raise RunDirError(f"{run_dir / files.CONFIG}: missing dataset facts; the run directory is corrupt.") from None
    return record, metrics


def _validate(
    stage: Path, model, onnx_bytes: bytes, onnx_names, images, labels, binary: bool, atol: float, int8: bool
) -> tuple[dict, list[str]]:
    from kerasreg.model import predict_probabilities

    reference = predict_probabilities(model, images, BINARY if binary else MULTICLASS)
    problems = parity.check_onnx_names(ONNX, *onnx_names)
    artifacts = {}
    outputs = {SAVED_MODEL: load_saved_model_fn(stage / SAVED_MODEL)(images)}
    if not problems:  # with the names wrong there is no `probabilities` output to compare
        outputs[ONNX] = _onnx_probabilities(onnx_bytes, images)
    for label, output in outputs.items():
        artifacts[label], found = parity.compare(label, reference, output, atol)
        problems += found
    keras_accuracy = float((reference.argmax(axis=1) == labels).mean())
    if int8:
        int8_probs = _onnx_probabilities((stage / ONNX_INT8).read_bytes(), images)
        artifacts[ONNX_INT8], _ = parity.compare(ONNX_INT8, reference, int8_probs, None)
        if int8_probs.shape == reference.shape:
            artifacts[ONNX_INT8].update(parity.accuracy_entry(labels, int8_probs, keras_accuracy))
    report = {
        "n_images": int(len(images)),
        "keras_accuracy": keras_accuracy,
        "artifacts": artifacts,
        "failures": [str(p) for p in problems],
        "passed": not problems,
    }
    return report, [str(p) for p in problems]


def export_run(
    run_dir: Path | str,
    out: Path | str,
    *,
    opset: int = onnx_convert.DEFAULT_OPSET,
    atol: float = DEFAULT_ATOL,
    quantize: str | None = None,
    overwrite: bool = False,
) -> dict:
    """Export a run to SavedModel and ONNX, validate parity, and publish `out` atomically.

    Returns the model card (also written to out/model.json).

    Raises:
        ExportError, RunDirError: a bad request (nothing is written).
        ValidationFailed: an artifact differs from Keras (nothing is left at `out`).
    """
    run_dir, out = Path(run_dir), Path(out)
    if not onnx_convert.MIN_OPSET <= opset <= onnx_convert.DEFAULT_OPSET:
        raise ExportError(
            f"Received opset={opset}. Expected {onnx_convert.MIN_OPSET}..{onnx_convert.DEFAULT_OPSET} "
            "(tf2onnx 1.17 converts up to 18)."
        )
    if not (np.isfinite(atol) and atol >= 0):
        raise ExportError(f"Received atol={atol}. Expected a number >= 0.")
    if quantize not in (None, *QUANTIZE_CHOICES):
        raise ExportError(f"Received quantize={quantize!r}. Expected one of: {', '.join(QUANTIZE_CHOICES)}.")
    record, metrics = _read_run(run_dir)
    check_target(out, overwrite)
    model = as_float32(files.load_run_model(run_dir))  # a mixed-precision run exports at float32
    dataset = record["dataset"]
    class_names = list(dataset["class_names"])
    input_shape = tuple(dataset["input_shape"])
    binary = dataset["task"] == BINARY
    images, labels, images_from = parity_images(run_dir, record)

    stage = make_stage(out)
    try:
        write_saved_model(model, input_shape, binary, stage / SAVED_MODEL)
        onnx_model = onnx_convert.convert_saved_model(stage / SAVED_MODEL, opset)
        onnx_bytes = onnx_model.SerializeToString()
        if quantize:
            (stage / ONNX).write_bytes(onnx_bytes)
            quantize_int8(stage / ONNX, stage / ONNX_INT8)
        report, failures = _validate(
            stage, model, onnx_bytes, onnx_convert.io_names(onnx_model), images, labels, binary, atol, bool(quantize)
        )
        report["images_from"] = images_from
        if failures:
            raise ValidationFailed(failures, report, out)
        exported_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        properties = {
            "kerasreg.classes": class_names,
            "kerasreg.task": dataset["task"],
            "kerasreg.input": onnx_convert.input_spec(input_shape),
            "kerasreg.output": onnx_convert.output_spec(class_names),
            "kerasreg.dataset": dataset["name"],
            "kerasreg.metrics": metrics,
            "kerasreg.parity": report,
            "kerasreg.version": __version__,
            "kerasreg.exported_at": exported_at,
        }
        _write_onnx(onnx_model, properties, stage / ONNX, opset)
        if quantize:
            _write_int8_metadata(stage / ONNX_INT8, {**properties, "kerasreg.quantization": "int8 dynamic"})
        card = {
            "dataset": dataset["name"],
            "task": dataset["task"],
            "classes": class_names,
            "input": onnx_convert.input_spec(input_shape),
            "output": onnx_convert.output_spec(class_names),
            "metrics": metrics,
            "parity": report,
            "opset": opset,
            "exported_at": exported_at,
            "run_dir": str(run_dir.resolve()),
            "versions": _versions(),
            "files": {},
        }
        for name in (SAVED_MODEL, ONNX, ONNX_INT8):
            if (stage / name).exists():
                card["files"][name] = {"bytes": _size(stage / name), "sha256": _sha256(stage / name)}
        (stage / MODEL_CARD).write_text(json.dumps(card, indent=2) + "\n")
        write_samples(stage / SAMPLES, images[:N_SAMPLES], labels[:N_SAMPLES], class_names)
        publish(stage, out)
    except BaseException:
        discard(stage)
        raise
    return card


def write_samples(folder: Path, images: np.ndarray, labels: np.ndarray, class_names: list[str]) -> None:
    """Save test images as PNG files named index-label.png."""
    from PIL import Image

    folder.mkdir()
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in class_names[int(label)])
        Image.fromarray(image[..., 0] if image.shape[2] == 1 else image).save(folder / f"{i}-{safe}.png")


def _write_onnx(model, properties: dict, path: Path, opset: int) -> None:
    import onnx

    onnx_convert.set_metadata(model, properties)
    onnx.checker.check_model(model, full_check=True)
    path.write_bytes(model.SerializeToString())


def _write_int8_metadata(path: Path, properties: dict) -> None:
    import onnx

    model = onnx.load(str(path))
    onnx_convert.name_batch_axis(model)
    onnx_convert.set_metadata(model, properties)
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
