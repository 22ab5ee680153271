"""`export_run`: a run directory -> a validated export directory.

EXPORT_DIR/
  saved_model/        serving_default: images (uint8 [batch,H,W,C]) -> probabilities [batch,K]
  model.onnx          the same, with kerasreg.* metadata; all a deployment needs
  model.int8.onnx     with --quantize int8
  model.tflite        with --litert: LiteRT (TensorFlow Lite), kerasreg.* metadata too
  model.int8.tflite   with --litert --quantize int8: full-integer, calibrated on training images
  c/model.h, model.c  with --c: plain C99 for boards with no runtime (c/int8/ with --quantize int8)
  model.json          model card: dataset, classes, input spec, metrics, parity, sizes, sha256, versions
  samples/            a few test images as PNG

Each format builds its files, checks them against the Keras model and describes
them (export/formats.py); `export_run` runs the formats asked for, in order, into
a stage that is renamed into place only once every check passed.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np

from export import onnx_convert
from export.c_model import CFormat
from export.card import file_facts, model_card
from export.errors import ExportError, ValidationFailed
from export.formats import ArtifactFormat, ExportJob
from export.litert import LiteRTFormat
from export.parity import validate_parity
from export.saved_model import SavedModelFormat
from export.staging import check_target, discard, make_stage, publish
from kerasreg.model import as_float32, folded_affine, predict_probabilities
from kerasreg.run_directory.files import MODEL
from kerasreg.run_directory.record import RunRecord
from shared.contract import MODEL_CARD, SAMPLES

DEFAULT_ATOL = 1e-5
QUANTIZE_CHOICES = ("int8",)
N_SAMPLES = 5
# Every format, in the order they are built (ONNX and LiteRT convert the SavedModel): one line per format.
# Classes, not objects: each export makes its own (`formats_for`), so no state passes from one export to the next.
FORMATS: tuple[type[ArtifactFormat], ...] = (SavedModelFormat, onnx_convert.OnnxFormat, LiteRTFormat, CFormat)
FORMAT_FLAGS = tuple(f.flag for f in FORMATS if f.flag)


def check_options(opset: int, atol: float, quantize: str | None, formats: tuple[str, ...] = ()) -> None:
    """Refuse an export option out of range, naming what is allowed."""
    if not onnx_convert.MIN_OPSET <= opset <= onnx_convert.DEFAULT_OPSET:
        raise ExportError(
            f"Received opset={opset}. Expected {onnx_convert.MIN_OPSET}..{onnx_convert.DEFAULT_OPSET} "
            f"({onnx_convert.DEFAULT_OPSET}: {onnx_convert.NEWEST_OPSET})."
        )
    if not (np.isfinite(atol) and atol >= 0):
        raise ExportError(f"Received atol={atol}. Expected a number >= 0.")
    if quantize not in (None, *QUANTIZE_CHOICES):
        raise ExportError(f"Received quantize={quantize!r}. Expected one of: {', '.join(QUANTIZE_CHOICES)}.")
    unknown = [f for f in formats if f not in FORMAT_FLAGS]
    if unknown:
        raise ExportError(f"Received formats={unknown}. Expected some of: {', '.join(FORMAT_FLAGS)}.")


def formats_for(flags: tuple[str, ...]) -> list[ArtifactFormat]:
    """A fresh object of every format an export writes: those always written, and those `flags` ask for."""
    return [f() for f in FORMATS if f.flag is None or f.flag in flags]


def export_run(
    run_dir: Path | str,
    out: Path | str,
    *,
    opset: int = onnx_convert.DEFAULT_OPSET,
    atol: float = DEFAULT_ATOL,
    quantize: str | None = None,
    formats: tuple[str, ...] = (),
    overwrite: bool = False,
) -> dict:
    """Export a run to SavedModel and ONNX (and the `formats` asked for: "litert", "c"), validate, publish `out`.

    Returns the model card (also written to out/model.json).

    Raises:
        ExportError, RunDirError: a bad request, or a model whose weights are not finite (nothing is written).
        ValidationFailed: an artifact differs from Keras (nothing is left at `out`).
    """
    out = Path(out)
    check_options(opset, atol, quantize, formats)
    run = RunRecord.open(run_dir)
    check_target(out, overwrite)
    model = as_float32(run.load_model())  # a mixed-precision run exports at float32
    affine = folded_affine(model)
    check_finite(affine, run)
    images, labels, images_from = run.test_images()
    stage = make_stage(out)
    try:
        job = ExportJob(
            model=model,
            run=run,
            stage=stage,
            opset=opset,
            atol=atol,
            quantize=quantize,
            images=images,
            labels=labels,
            reference=predict_probabilities(model, images, run.task),
            calibration=run.calibration_images,
            affine=affine,
        )
        card = _build(job, formats_for(formats), images_from, out)
        publish(stage, out)
    except BaseException as e:
        discard(stage)
        if _out_of_space(e):
            raise ExportError(
                f"no space left on the device of {out.parent} while writing the export; free some and rerun "
                "(nothing was written)."
            ) from None
        raise
    return card


def _build(job: ExportJob, chosen: list[ArtifactFormat], images_from: str, out: Path) -> dict:
    """Build every format into the stage, hold each to Keras, then write the card and the samples; the card."""
    for artifact_format in chosen:
        artifact_format.build(job)
    report = validate_parity(job, chosen)
    report["images_from"] = images_from
    if report["failures"]:
        raise ValidationFailed(report["failures"], report, out)
    card = model_card(job.run, report, job.model)
    for artifact_format in chosen:
        card.update(artifact_format.describe(job))
        artifact_format.finish(job, card)
    for artifact_format in chosen:
        for name in artifact_format.files(job):
            card["files"][name] = file_facts(job.stage / name)
    (job.stage / MODEL_CARD).write_text(json.dumps(card, indent=2) + "\n")
    picked = across_classes(job.labels, N_SAMPLES)
    write_samples(job.stage / SAMPLES, job.images[picked], job.labels[picked], job.run.class_names)
    return card


def check_finite(affine: tuple[np.ndarray, np.ndarray], run: RunRecord) -> None:
    """Refuse a model whose weights are not finite: no artifact could hold it, and parity would only say "nan"."""
    for name, values in zip(("kernel", "bias"), affine, strict=True):
        bad = np.argwhere(~np.isfinite(values))
        if len(bad):
            where = ", ".join(str(int(i)) for i in bad[0])
            raise ExportError(
                f"{run.path / MODEL}: the classifier's weights are not finite ({name}[{where}] = "
                f"{values[tuple(bad[0])]}, {len(bad)} such values); retrain the run (it diverged, or the file was "
                "altered)."
            )


def _out_of_space(error: BaseException) -> bool:
    """Whether `error` is a full disk: an OSError ENOSPC, or TensorFlow's ResourceExhaustedError saying so."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return True
    return "No space left on device" in str(error)


def across_classes(labels: np.ndarray, count: int) -> np.ndarray:
    """The indices of `count` samples taken a class at a time, in turn (the first image of each class, then the
    second, ...), so a folder sorted by class gives a picture of each rather than five of its first class."""
    labels = np.asarray(labels)
    queues = [list(np.flatnonzero(labels == k)) for k in np.unique(labels)]
    picked: list[int] = []
    while len(picked) < min(count, len(labels)):
        for queue in queues:
            if queue and len(picked) < count:
                picked.append(int(queue.pop(0)))
    return np.array(sorted(picked), dtype=np.int64)


def write_samples(folder: Path, images: np.ndarray, labels: np.ndarray, class_names: list[str]) -> None:
    """Save test images as PNG files named index-label.png."""
    from PIL import Image

    folder.mkdir()
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        picture = Image.fromarray(image[..., 0] if image.shape[2] == 1 else image)
        picture.save(folder / sample_name(i, class_names, label))


def sample_name(index: int, class_names: list[str], label) -> str:
    """A sample's file name from its class: ASCII letters, digits, - and _ only, at most 40 of them; the class's
    number where its name has none (a file name carries no quote, slash, control character or great length)."""
    name = class_names[int(label)]
    safe = "".join(ch if ch in _FILE_NAME_CHARACTERS else "_" for ch in name)[:40].strip("_")
    return f"{index}-{safe or f'class{int(label)}'}.png"


_FILE_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
