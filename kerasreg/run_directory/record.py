"""A finished run read back: its record, metrics, model and test images.

    from kerasreg.run_directory.record import RunRecord
    run = RunRecord.open("runs/mnist")
    images, labels, where = run.test_images()
    probabilities = predict_probabilities(run.load_model(), images, run.task)

The public surface that `python -m kerasreg.evaluate` and `python -m export` use;
neither reaches into the training code or the other's command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kerasreg.datasets.class_names import check_class_names
from kerasreg.errors import DatasetError, RunDirError
from kerasreg.run_directory import files


@dataclass(frozen=True)
class RunRecord:
    """A run directory whose training finished: config.json, metrics.json, model.keras, test_sample.npz."""

    path: Path
    record: dict  # config.json
    metrics: dict  # metrics.json

    @classmethod
    def open(cls, run_dir: Path | str) -> RunRecord:
        """Read a finished run's record and metrics, or raise RunDirError saying what is missing."""
        path = Path(run_dir)
        if not path.is_dir():
            raise RunDirError(f"{path} is not a directory; pass a run directory written by python -m kerasreg.train.")
        record = files.read_json(path / files.CONFIG)
        metrics = files.read_json(path / files.METRICS)
        dataset = record.get("dataset")
        if not (
            isinstance(dataset, dict)
            and isinstance(dataset.get("name"), str)
            and dataset.get("task") in ("multiclass", "binary")
            and isinstance(dataset.get("class_names"), list)
            and len(dataset["class_names"]) >= 2
            and all(isinstance(c, str) for c in dataset["class_names"])
            and isinstance(dataset.get("input_shape"), list)
            and len(dataset["input_shape"]) == 3
            and all(isinstance(d, int) and d > 0 for d in dataset["input_shape"])
        ):
            raise RunDirError(f"{path / files.CONFIG}: missing or malformed dataset facts; the run is damaged.")
        try:
            check_class_names(dataset["name"], tuple(dataset["class_names"]))
        except DatasetError as e:
            raise RunDirError(f"{path / files.CONFIG}: {e}") from None
        return cls(path, record, metrics)

    @property
    def dataset(self) -> dict:
        """config.json's dataset facts: name, task, source, class_names, input_shape, sizes."""
        return self.record["dataset"]

    @property
    def task(self) -> str:
        """ "multiclass" or "binary"."""
        return self.dataset["task"]

    @property
    def class_names(self) -> list[str]:
        """The class names, in the order of the model's outputs."""
        return list(self.dataset["class_names"])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of one image."""
        return tuple(self.dataset["input_shape"])

    def load_model(self):
        """The trained Keras model (model.keras), which must take and give what config.json says."""
        model = files.load_run_model(self.path)
        takes = list(model.input_shape[1:])
        gives = int(model.output_shape[-1])
        expected = 1 if self.task == "binary" else len(self.class_names)
        if takes != list(self.input_shape) or gives != expected:
            raise RunDirError(
                f"{self.path}: config.json says images of {list(self.input_shape)} and {len(self.class_names)} "
                f"classes, but model.keras takes {takes} and gives {gives} outputs: the run directory is damaged."
            )
        return model

    def reload_dataset(self, allow_download: bool = True):
        """The run's dataset loaded again as config.json recorded it, or None when it cannot be.

        File sources reload from their files only (never "auto", which with the files
        gone would fall back to a tfds download); data given in Python gives None;
        tfds sources reload only when `allow_download`, since tfds may fetch them.
        """
        from kerasreg.config import TrainConfig
        from kerasreg.datasets import load_dataset

        source = self.dataset.get("source", "")
        if source.startswith("files:"):
            mode = "files"
        elif source.startswith("sklearn"):
            mode = "auto"
        elif source.startswith("tfds:") and allow_download:
            mode = "tfds"
        else:
            return None
        config = TrainConfig.from_dict(self.record.get("options", {}))
        data = load_dataset(config.dataset, mode, config.data_dir, config.dataset_options())
        return data if data.source == source else None

    def test_images(self, allow_download: bool = False) -> tuple[np.ndarray, np.ndarray, str]:
        """Labelled test images and where they came from: the test split when it reloads, else the stored sample.

        By default a tensorflow-datasets source is not reloaded: tfds could start a
        download in the middle of an export.
        """
        try:
            data = self.reload_dataset(allow_download)
        except (DatasetError, TypeError, ValueError):
            data = None  # the files moved, or config.json is from another version: use the sample
        if data is not None:
            return data.test_images, data.test_labels, f"test split ({data.source})"
        images, labels = self.checked_sample(files.TEST_SAMPLE)
        return images, labels, f"stored sample ({files.TEST_SAMPLE})"

    def checked_sample(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A stored sample of this run (test_sample.npz, train_sample.npz), held to config.json's shape and classes."""
        images, labels = files.read_sample(self.path / name)
        if list(images.shape[1:]) != list(self.input_shape):
            raise RunDirError(
                f"{self.path / name}: images of {list(images.shape[1:])}, but config.json says "
                f"{list(self.input_shape)}: the run directory is damaged."
            )
        if len(labels) and (labels.min() < 0 or labels.max() >= len(self.class_names)):
            raise RunDirError(
                f"{self.path / name}: labels {labels.min()}..{labels.max()} outside the "
                f"{len(self.class_names)} classes: the run directory is damaged."
            )
        return images, labels

    def calibration_images(self) -> np.ndarray:
        """Training images to calibrate an int8 export on: the run's stored sample, else its reloaded training split.

        Never test images: they measure the quantized model, so they may not shape it.
        """
        if (self.path / files.TRAIN_SAMPLE).is_file():
            return self.checked_sample(files.TRAIN_SAMPLE)[0]
        try:
            data = self.reload_dataset(allow_download=False)
        except (DatasetError, TypeError, ValueError):
            data = None
        if data is None:
            raise RunDirError(
                f"{self.path} has no {files.TRAIN_SAMPLE} (runs of older kerasreg versions did not keep one) and its "
                "training data cannot be reloaded: retrain it to export int8 LiteRT."
            )
        rng = np.random.default_rng(0)
        n = len(data.train_images)
        return data.train_images[rng.choice(n, min(files.TEST_SAMPLE_SIZE, n), replace=False)]
