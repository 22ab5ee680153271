"""Parity: the comparisons every artifact is held to against the Keras model's probabilities.

Names, then shapes, then values; every failure is collected rather than stopping
at the first. Each artifact's report gives its max absolute difference from Keras,
the atol it is held to, and how often its argmax agrees. The formats
(export/formats.py) call these; `validate_parity` runs every format's check.
"""

from __future__ import annotations

import numpy as np

from serve.contract import INPUT_NAME, OUTPUT_NAME


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


def validate_parity(job, formats) -> dict:
    """Hold every artifact of `formats` in `job.stage` to the Keras model on job.images, collecting every failure.

    Returns:
        The report: n_images, keras_accuracy, one entry per file, `failures` (messages) and `passed`.
    """
    entries, failures = {}, []
    for artifact_format in formats:
        for checked in artifact_format.check(job):
            entries[checked.file] = checked.entry
            failures += checked.problems
    return {
        "n_images": int(len(job.images)),
        "keras_accuracy": job.keras_accuracy,
        "artifacts": entries,
        "failures": failures,
        "passed": not failures,
    }
