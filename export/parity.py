"""Parity: the checks every artifact is held to against the Keras model's probabilities.

Names, then shapes, then values. Each check raises its own `ParityProblem` (as
optimum's validation raises ShapeError and AtolError); `collect` runs every check
and gathers what they raise, so an export reports every failure, not the first.
Each artifact's report gives its max absolute difference from Keras, the atol it is
held to, and how often its argmax agrees. The formats (export/formats.py) call
these; `validate_parity` runs every format's check.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from shared.contract import INPUT_NAME, OUTPUT_NAME


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


class AccuracyDropped(ParityProblem):
    """A quantized artifact lost more accuracy than it may."""


class NotRunnable(ParityProblem):
    """The artifact could not be run at all (it does not compile, load, or take the contract's input)."""


def collect(*checks: Callable[[], None]) -> list[ParityProblem]:
    """Run every check; the ParityProblems they raised, in order."""
    problems = []
    for check in checks:
        try:
            check()
        except ParityProblem as problem:
            problems.append(problem)
    return problems


def check_onnx_names(label: str, inputs: list[str], outputs: list[str]) -> list[ParityProblem]:
    """The ONNX graph must take `images` and give `probabilities`, nothing else: the problems found."""

    def names(kind: str, found: list[str], expected: str) -> Callable[[], None]:
        def check() -> None:
            if found != [expected]:
                raise NameMismatch(f"{label}: {kind} are {found}, expected ['{expected}']")

        return check

    return collect(names("inputs", inputs, INPUT_NAME), names("outputs", outputs, OUTPUT_NAME))


def check_shape(label: str, reference: np.ndarray, candidate: np.ndarray) -> None:
    """The artifact gives one row per image and one probability per class, as Keras does."""
    if candidate.shape != reference.shape:
        raise ShapeMismatch(f"{label}: output shape {candidate.shape}, Keras gives {reference.shape}")


def check_values(label: str, diff: float, atol: float) -> None:
    """The largest difference from Keras's probabilities is within `atol`."""
    if not diff <= atol:  # also catches NaN
        raise AtolExceeded(f"{label}: max diff = {diff:.3g} (atol: {atol:g})")


def check_argmax(label: str, agree: np.ndarray) -> None:
    """The artifact predicts Keras's class on every image."""
    if not agree.all():
        raise ArgmaxMismatch(f"{label}: argmax differs on {int((~agree).sum())} of {len(agree)} images")


def compare(label: str, reference: np.ndarray, candidate: np.ndarray, atol: float | None) -> tuple[dict, list]:
    """Compare one artifact's probabilities with Keras's; `atol` None means report only (an int8 artifact).

    Returns the artifact's report entry and the problems found (values only when held to atol).
    """
    candidate = np.asarray(candidate)
    problems = collect(lambda: check_shape(label, reference, candidate))
    if problems:
        return {"shape": list(candidate.shape), "passed": False}, problems
    diff = float(np.max(np.abs(candidate.astype(np.float64) - reference))) if reference.size else 0.0
    agree = candidate.argmax(axis=1) == reference.argmax(axis=1)
    entry = {
        "max_abs_diff": diff,
        "atol": atol,
        "argmax_agreement": float(agree.mean()) if len(agree) else 1.0,
        "argmax_disagreements": int((~agree).sum()),
    }
    if atol is not None:
        problems = collect(lambda: check_values(label, diff, atol), lambda: check_argmax(label, agree))
    entry["passed"] = not problems
    return entry, problems


def check_accuracy_drop(label: str, entry: dict, keras_accuracy: float, allowed: float) -> None:
    """A quantized artifact's accuracy is at most `allowed` below Keras's."""
    if entry["accuracy_change"] < -allowed - 1e-12:
        raise AccuracyDropped(
            f"{label}: accuracy {entry['accuracy']:.4f} is {-entry['accuracy_change']:.4f} below Keras's "
            f"{keras_accuracy:.4f} (at most {allowed:.4f})"
        )


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
            failures += [str(problem) for problem in checked.problems]
    return {
        "n_images": int(len(job.images)),
        "keras_accuracy": job.keras_accuracy,
        "artifacts": entries,
        "failures": failures,
        "passed": not failures,
    }
