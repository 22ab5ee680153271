"""`export_run`: a run directory -> a validated export directory.

EXPORT_DIR/
  saved_model/      serving_default: images (uint8 [batch,H,W,C]) -> probabilities [batch,K]
  model.onnx        the same, with kerasreg.* metadata; all a deployment needs
  model.int8.onnx   with --quantize int8
  model.json        model card: dataset, classes, input spec, metrics, parity, sizes, sha256, versions
  samples/          a few test images as PNG

Three steps, each its own function: `build_artifacts` writes the SavedModel and
ONNX files into a stage, `validate_parity` (export/parity.py) holds them to the
Keras model, `model_card` describes the result; the ONNX metadata is derived from
the card (`onnx_properties`), so the two never disagree.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np

from export import onnx_convert
from export.errors import ExportError, ValidationFailed
from export.parity import validate_parity
from export.quantize import quantize_int8
from export.saved_model import write_saved_model
from export.staging import check_target, discard, make_stage, publish
from kerasreg import __version__
from kerasreg.datasets import BINARY
from kerasreg.model import as_float32
from kerasreg.runs import FinishedRun

SAVED_MODEL = "saved_model"
ONNX = "model.onnx"
ONNX_INT8 = "model.int8.onnx"
MODEL_CARD = "model.json"
DEFAULT_ATOL = 1e-5
QUANTIZE_CHOICES = ("int8",)
SAMPLES = "samples"
N_SAMPLES = 5
# Card entries that the ONNX file carries as kerasreg.* metadata (plus kerasreg.version).
ONNX_PROPERTIES = ("classes", "task", "input", "output", "dataset", "metrics", "parity", "templates", "exported_at")


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


def check_options(opset: int, atol: float, quantize: str | None) -> None:
    """Refuse an export option out of range, naming what is allowed."""
    if not onnx_convert.MIN_OPSET <= opset <= onnx_convert.DEFAULT_OPSET:
        raise ExportError(
            f"Received opset={opset}. Expected {onnx_convert.MIN_OPSET}..{onnx_convert.DEFAULT_OPSET} "
            "(tf2onnx 1.17 converts up to 18)."
        )
    if not (np.isfinite(atol) and atol >= 0):
        raise ExportError(f"Received atol={atol}. Expected a number >= 0.")
    if quantize not in (None, *QUANTIZE_CHOICES):
        raise ExportError(f"Received quantize={quantize!r}. Expected one of: {', '.join(QUANTIZE_CHOICES)}.")


def build_artifacts(model, run: FinishedRun, stage: Path, opset: int, quantize: str | None):
    """Write saved_model/, model.onnx (no metadata yet) and, when asked, model.int8.onnx into `stage`.

    Returns the ONNX ModelProto, for `write_onnx` to annotate once it is validated.
    """
    write_saved_model(model, run.input_shape, run.task == BINARY, stage / SAVED_MODEL)
    onnx_model = onnx_convert.convert_saved_model(stage / SAVED_MODEL, opset)
    (stage / ONNX).write_bytes(onnx_model.SerializeToString())
    if quantize:
        quantize_int8(stage / ONNX, stage / ONNX_INT8)
    return onnx_model


def templates(model, run: FinishedRun) -> dict:
    """The learned weights of each class drawn as a PNG (base64), for pages and cards: what the model looks for."""
    import base64
    import io

    from PIL import Image

    from kerasreg.plots import template_images

    kernel = model.get_layer("classifier").get_weights()[0]
    names = run.class_names[1:] if run.task == BINARY else run.class_names
    encoded = []
    for image in template_images(kernel, run.input_shape):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        encoded.append(base64.b64encode(buffer.getvalue()).decode())
    return {"classes": names, "shape": list(run.input_shape), "png": encoded}


def card_metrics(metrics: dict) -> dict:
    """The run's metrics for the card, with --l2 auto's search cut to its outcome (the path stays in the run)."""
    search = metrics.get("l2_search")
    if search is None:
        return metrics
    outcome = {k: search[k] for k in ("chosen_l2", "refit_l2", "C", "n_search", "n_all")}
    return {**metrics, "l2_search": outcome}


def model_card(run: FinishedRun, report: dict, opset: int, model=None) -> dict:
    """The card for model.json: what the model is, how well it does, how faithful its artifacts are."""
    return {
        "dataset": run.dataset["name"],
        "task": run.task,
        "classes": run.class_names,
        "input": onnx_convert.input_spec(run.input_shape),
        "output": onnx_convert.output_spec(run.class_names),
        "metrics": card_metrics(run.metrics),
        "parity": report,
        "templates": templates(model, run) if model is not None else None,
        "opset": opset,
        "exported_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "run_dir": str(run.path.resolve()),
        "versions": _versions(),
        "files": {},
    }


def onnx_properties(card: dict) -> dict:
    """The ONNX file's kerasreg.* metadata: a part of the card, so the file describes itself."""
    return {
        **{f"kerasreg.{key}": card[key] for key in ONNX_PROPERTIES},
        "kerasreg.version": card["versions"]["kerasreg"],
    }


def write_onnx(model, properties: dict, path: Path) -> None:
    """Attach `properties` as metadata, check the model fully, write it."""
    import onnx

    onnx_convert.set_metadata(model, properties)
    onnx.checker.check_model(model, full_check=True)
    path.write_bytes(model.SerializeToString())


def _annotate_int8(path: Path, properties: dict) -> None:
    import onnx

    model = onnx.load(str(path))
    onnx_convert.name_batch_axis(model)
    onnx_convert.set_metadata(model, properties)
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


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
    out = Path(out)
    check_options(opset, atol, quantize)
    run = FinishedRun.open(run_dir)
    check_target(out, overwrite)
    model = as_float32(run.load_model())  # a mixed-precision run exports at float32
    images, labels, images_from = run.test_images()
    stage = make_stage(out)
    try:
        onnx_model = build_artifacts(model, run, stage, opset, quantize)
        report = validate_parity(model, stage, images=images, labels=labels, task=run.task, atol=atol)
        report["images_from"] = images_from
        if report["failures"]:
            raise ValidationFailed(report["failures"], report, out)
        card = model_card(run, report, opset, model)
        properties = onnx_properties(card)
        write_onnx(onnx_model, properties, stage / ONNX)
        if quantize:
            _annotate_int8(stage / ONNX_INT8, {**properties, "kerasreg.quantization": "int8 dynamic"})
        for name in (SAVED_MODEL, ONNX, ONNX_INT8):
            if (stage / name).exists():
                card["files"][name] = {"bytes": _size(stage / name), "sha256": _sha256(stage / name)}
        (stage / MODEL_CARD).write_text(json.dumps(card, indent=2) + "\n")
        write_samples(stage / SAMPLES, images[:N_SAMPLES], labels[:N_SAMPLES], run.class_names)
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
