"""The model card (model.json): what the model is, how well it does, how faithful each artifact is.

Every file that can carry metadata (ONNX, LiteRT) carries a part of the card as
kerasreg.* entries (`card_properties`), so a file and its card never disagree and
a deployment needs the one file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from shared import contract
from shared.contract import INPUT_NAME, OUTPUT_NAME


def utc_now() -> dt.datetime:
    """The time an export is stamped with (one place, so a test can fix the clock)."""
    return dt.datetime.now(dt.timezone.utc)


def input_spec(input_shape: tuple[int, int, int]) -> dict:
    """The `kerasreg.input` entry: name, shape (None = batch), dtype and value range."""
    return {"name": INPUT_NAME, "shape": [None, *input_shape], "dtype": "uint8", "range": [0, 255], "layout": "NHWC"}


def output_spec(class_names: list[str]) -> dict:
    """The `kerasreg.output` entry."""
    return {
        "name": OUTPUT_NAME,
        "shape": [None, len(class_names)],
        "dtype": "float32",
        "meaning": f"probability of each class, in the order of {contract.key('classes')}",
    }


def templates(kernel, run) -> dict:
    """The learned weights of each class drawn as a PNG (base64), for pages and cards: what the model looks for."""
    import base64
    import io

    from PIL import Image

    from kerasreg.reports.figures import template_images

    names = run.class_names[1:] if run.task == "binary" else run.class_names
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


def library_versions() -> dict:
    """The versions of what built the artifacts."""
    import keras
    import onnx
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    from kerasreg import __version__

    return {
        "kerasreg": __version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "tf2onnx": tf2onnx.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def model_card(run, report: dict, model=None) -> dict:
    """The card for model.json, before the formats add their facts and the files their sizes."""
    kernel = model.get_layer("classifier").get_weights()[0] if model is not None else None
    return {
        "dataset": run.dataset["name"],
        "task": run.task,
        "classes": run.class_names,
        "input": input_spec(run.input_shape),
        "output": output_spec(run.class_names),
        "metrics": card_metrics(run.metrics),
        "parity": report,
        "templates": templates(kernel, run) if kernel is not None else None,
        "exported_at": utc_now().isoformat(timespec="seconds"),
        "run_dir": str(run.path.resolve()),
        "versions": library_versions(),
        "files": {},
    }


def card_properties(card: dict) -> dict:
    """A file's kerasreg.* metadata: a part of the card, so the file describes itself."""
    return {
        **{contract.key(name): card[name] for name in contract.CARD_PROPERTIES},
        contract.key(contract.VERSION): card["versions"]["kerasreg"],
    }


def file_facts(path: Path) -> dict:
    """Size and sha256 of a file, or of a folder's files (their relative names hashed too)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        digest.update(file.read_bytes())
    return {"bytes": sum(f.stat().st_size for f in files), "sha256": digest.hexdigest()}
