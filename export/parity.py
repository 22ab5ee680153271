"""Parity validation: every artifact must give the Keras model's probabilities.

Checks names, then shapes, then values, and collects every failure rather than
stopping at the first. Each artifact's report gives its max absolute difference
from Keras, the atol it is held to, and how often its argmax agrees.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from export.saved_model import INPUT_NAME, OUTPUT_NAME


class ParityProblem(Exception):
    """One way an artifact differs from the Keras model."""


class NameMismatch(ParityProblem):
    """The artifact's input or output is not named as the contract says."""


class ShapeMismatch(ParityProblem):
    """The artifact's output shape differs from the Keras model's."""


class AtolExceeded(ParityProblem):
    """Probabilities differ by more than the tolerance."""


class ArgmaxMismatch(ParityProblem):
    """The predicted class differs on some images."""


def check_onnx_names(label: str, inputs: list[str], outputs: list[str]) -> list[ParityProblem]:
    """The ONNX graph must take `images` and give `probabilities`, nothing else."""
    problems: list[ParityProblem] = []
    if inputs != [INPUT_NAME]:
        problems.append(NameMismatch(f"{label}: inputs are {inputs}, expected ['{INPUT_NAME}']"))
    if outputs != [OUTPUT_NAME]:
        problems.append(NameMismatch(f"{label}: outputs are {outputs}, expected ['{OUTPUT_NAME}']"))
    return problems


def compare(label: str, reference: np.ndarray, candidate: np.ndarray, atol: float | None) -> tuple[dict, list]:
    """Compare one artifact's probabilities with Keras's; `atol` None means report only.

    Returns the artifact's report entry and the problems found (only when held to atol).
    """
    candidate = np.asarray(candidate)
    if candidate.shape != reference.shape:
        problem = ShapeMismatch(f"{label}: output shape {candidate.shape}, Keras gives {reference.shape}")
        return {"shape": list(candidate.shape), "passed": False}, [problem] if atol is not None else []
    diff = float(np.max(np.abs(candidate.astype(np.float64) - reference))) if reference.size else 0.0
    agree = candidate.argmax(axis=1) == reference.argmax(axis=1)
    entry = {
        "max_abs_diff": diff,
        "atol": atol,
        "argmax_agreement": float(agree.mean()) if len(agree) else 1.0,
        "argmax_disagreements": int((~agree).sum()),
    }
    problems: list[ParityProblem] = []
    if atol is not None:
        if not diff <= atol:  # also catches NaN
            problems.append(AtolExceeded(f"{label}: max diff = {diff:.3g} (atol: {atol:g})"))
        if not agree.all():
            problems.append(ArgmaxMismatch(f"{label}: argmax differs on {int((~agree).sum())} of {len(agree)} images"))
    entry["passed"] = not problems
    return entry, problems


def accuracy_entry(labels: np.ndarray, probabilities: np.ndarray, reference_accuracy: float) -> dict:
    """Accuracy of an artifact on labelled images, and its change from the Keras model's."""
    accuracy = float((np.asarray(probabilities).argmax(axis=1) == labels).mean())
    return {"accuracy": accuracy, "accuracy_change": accuracy - reference_accuracy}


def _onnx_run(path: Path, images: np.ndarray) -> tuple[np.ndarray | None, list[str], list[str]]:
    """The probabilities of the ONNX file at `path` (None when it has no such output), and its I/O names."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs, outputs = [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()]
    if inputs != [INPUT_NAME] or outputs != [OUTPUT_NAME]:
        return None, inputs, outputs
    return session.run([OUTPUT_NAME], {INPUT_NAME: images})[0], inputs, outputs


def validate_parity(model, artifacts: Path, *, images: np.ndarray, labels: np.ndarray, task: str, atol: float) -> dict:
    """Hold the SavedModel and ONNX files in `artifacts` to the Keras `model` on labelled `images`.

    Checks names, then shapes, then values, collecting every failure. The
    SavedModel and model.onnx must agree with Keras within `atol` and on every
    argmax; model.int8.onnx, when present, is reported (difference, agreement,
    accuracy change) but not held to atol.

    Returns:
        The report: n_images, keras_accuracy, one entry per artifact, `failures`
        (messages) and `passed`.
    """
    from export.saved_model import load_saved_model_fn
    from kerasreg.model import predict_probabilities

    reference = predict_probabilities(model, images, task)
    outputs = {"saved_model": load_saved_model_fn(artifacts / "saved_model")(images)}
    onnx_probabilities, inputs, output_names = _onnx_run(artifacts / "model.onnx", images)
    problems = check_onnx_names("model.onnx", inputs, output_names)
    if onnx_probabilities is not None:  # with the names wrong there is no `probabilities` output to compare
        outputs["model.onnx"] = onnx_probabilities
    entries = {}
    for label, output in outputs.items():
        entries[label], found = compare(label, reference, output, atol)
        problems += found
    keras_accuracy = float((reference.argmax(axis=1) == labels).mean())
    if (artifacts / "model.int8.onnx").exists():
        int8, _, _ = _onnx_run(artifacts / "model.int8.onnx", images)
        if int8 is not None:
            entries["model.int8.onnx"], _ = compare("model.int8.onnx", reference, int8, None)
            if int8.shape == reference.shape:
                entries["model.int8.onnx"].update(accuracy_entry(labels, int8, keras_accuracy))
    failures = [str(p) for p in problems]
    return {
        "n_images": int(len(images)),
        "keras_accuracy": keras_accuracy,
        "artifacts": entries,
        "failures": failures,
        "passed": not failures,
    }
