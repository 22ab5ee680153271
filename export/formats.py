"""One small interface for every artifact format: build the files, check them against Keras, describe them.

    class LiteRT(ArtifactFormat):
        name = "litert"
        def files(self, job): ...      # what it writes, relative to the export directory
        def build(self, job): ...      # write them into job.stage
        def check(self, job): ...      # [Checked, ...]: each file held to the Keras model
        def finish(self, job, card):   # after every check passed: e.g. write the card's metadata in
        def describe(self, job): ...   # facts for the model card (beyond size and sha256)

The exporter (export/exporter.py) makes a fresh object of each format asked for, in
its FORMATS order, for every export (a format may keep what it built on `self`):
adding a format is one new module and one line there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from export.parity import NotRunnable, ParityProblem, accuracy_entry, check_accuracy_drop, collect, compare

if TYPE_CHECKING:
    import keras

    from kerasreg.run_directory.record import RunRecord


@dataclass
class ExportJob:
    """Everything a format needs: the model, where to write, the options, and the images it is checked on."""

    model: keras.Model  # the run's Keras model, at float32
    run: RunRecord
    stage: Path  # the folder being built, renamed into place once everything passed
    opset: int
    atol: float
    quantize: str | None
    images: np.ndarray  # labelled images to check on: the test split, or the run's stored sample
    labels: np.ndarray
    reference: np.ndarray  # Keras's probabilities on them, [N, K]
    calibration: Callable[[], np.ndarray]  # training images for int8 calibration (read when asked for)
    affine: tuple[np.ndarray, np.ndarray]  # the whole model as one affine map on raw pixels (folded_affine)

    @property
    def keras_accuracy(self) -> float:
        """The Keras model's accuracy on the check images."""
        return float((self.reference.argmax(axis=1) == self.labels).mean())

    @property
    def binary(self) -> bool:
        """A sigmoid model: one logit, exported as the probabilities (1-p, p)."""
        return self.run.task == "binary"


@dataclass
class Checked:
    """One file held to the Keras model: its report entry and what is wrong with it (empty when it passed)."""

    file: str
    entry: dict
    problems: list[ParityProblem] = field(default_factory=list)


def check_float(job: ExportJob, file: str, probabilities: np.ndarray | None, why_not: str = "") -> Checked:
    """A float artifact: within --atol of Keras and the same argmax on every image.

    `probabilities` None means the artifact could not be run (`why_not` says why).
    """
    if probabilities is None:
        return Checked(file, {"passed": False}, [NotRunnable(f"{file}: {why_not}")])
    entry, problems = compare(file, job.reference, probabilities, job.atol)
    if "max_abs_diff" in entry:
        entry.update(accuracy_entry(job.labels, probabilities, job.keras_accuracy))
    return Checked(file, entry, problems)


# An int8 artifact may lose at most a point of accuracy (or one image, on fewer than 100).
INT8_ACCURACY_DROP = 0.01


def check_int8(job: ExportJob, file: str, probabilities: np.ndarray | None, why_not: str = "") -> Checked:
    """A quantized artifact: its accuracy within a point of Keras's (reported: its difference and argmax agreement)."""
    if probabilities is None:
        return Checked(file, {"passed": False}, [NotRunnable(f"{file}: {why_not}")])
    entry, problems = compare(file, job.reference, probabilities, None)
    if problems:  # a shape mismatch: nothing to compare
        return Checked(file, entry, problems)
    entry.update(accuracy_entry(job.labels, probabilities, job.keras_accuracy))
    allowed = max(INT8_ACCURACY_DROP, 1.0 / max(1, len(job.labels)))
    entry["max_accuracy_drop"] = allowed
    problems = collect(lambda: check_accuracy_drop(file, entry, job.keras_accuracy, allowed))
    entry["passed"] = not problems
    return Checked(file, entry, problems)


class ArtifactFormat:
    """A format's build, check and description; see the module docstring. Subclasses set `name`."""

    name = ""
    flag: str | None = None  # the export flag that asks for it; None: always written

    def files(self, job: ExportJob) -> list[str]:
        """The files (or folders) it writes, relative to the export directory."""
        raise NotImplementedError

    def build(self, job: ExportJob) -> None:
        """Write the files into job.stage."""
        raise NotImplementedError

    def check(self, job: ExportJob) -> list[Checked]:
        """Hold each file to the Keras model on job.images."""
        raise NotImplementedError

    def finish(self, job: ExportJob, card: dict) -> None:
        """After every check passed: anything that needs the finished card (the ONNX metadata)."""

    def describe(self, job: ExportJob) -> dict:
        """Facts for the model card, beyond the files' sizes and sha256 (the exporter adds those)."""
        return {}
