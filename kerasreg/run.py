"""`kerasreg.Run`: a finished run directory in Python: its numbers, its pictures, and its model's answers.

run = kerasreg.Run.load("runs/digits")
run.metrics["accuracy"], run.history[-1]["loss"], run.config["options"]["l2"]
run.predict_proba(images)        # uint8 [N,H,W,C] -> [N, classes]
run.classify(images, top_k=3)    # [[(class name, probability), ...], ...]
run                              # in a notebook: its card and its pictures
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np

from kerasreg.errors import KerasregError
from kerasreg.run_directory import files
from shared.ranking import top_classes

# The pictures a run's card shows, in this order, when the run drew them.
_CARD_PICTURES = (
    ("learning curves", files.LEARNING_CURVES),
    ("reliability", files.RELIABILITY),
    ("confusion matrix", files.CONFUSION_MATRIX),
    ("most confident mistakes", files.MISTAKES),
    ("weights as images", files.WEIGHTS),
    ("L2 search", files.L2_SEARCH),
)


class Run:
    """A finished training run, read from its directory (python -m kerasreg.train's or kerasreg.train's).

    Attributes:
        path: the run directory.
        metrics: metrics.json: test accuracy, loss, train_accuracy, brier, ece, timings, ...
        config: config.json: the options, the dataset's facts, the strategy, the library versions.
        history: one dict per epoch (history.csv): epoch, loss (the training objective), accuracy,
            and val_loss and val_accuracy when the run held out a validation split.
    """

    def __init__(self, path: str | Path):
        from kerasreg.run_directory.record import RunRecord

        self._finished = RunRecord.open(path)
        self.path = Path(path)
        self.metrics: dict = self._finished.metrics
        self.config: dict = self._finished.record
        rows = files.read_history(self.path / files.HISTORY)
        self.history: list[dict] = [{k: v for k, v in row.items() if v is not None} for row in rows]
        self._model = None

    @classmethod
    def load(cls, path: str | Path) -> Run:
        """Read a finished run back; KerasregError when `path` holds none (or a damaged one)."""
        return cls(path)

    @property
    def class_names(self) -> list[str]:
        """The class names, in the order of `predict_proba`'s columns."""
        return self._finished.class_names

    def predict_proba(self, images) -> np.ndarray:
        """Each class's probability for uint8 images [N,H,W,C] (or one [H,W,C]) of the run's shape: [N, classes]."""
        from kerasreg.model import predict_probabilities

        batch = self._checked(images)
        if len(batch) == 0:
            return np.zeros((0, len(self.class_names)), np.float32)
        if self._model is None:
            self._model = self._finished.load_model()
        return predict_probabilities(self._model, batch, self._finished.task)

    def classify(self, images, top_k: int = 1) -> list[list[tuple[str, float]]]:
        """The `top_k` likeliest classes of each image, as (class name, probability), likeliest first."""
        classes = len(self.class_names)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= classes:
            raise KerasregError(f"Received top_k={top_k!r}. Expected an integer 1..{classes} (the classes).")
        probabilities = self.predict_proba(images)
        order = top_classes(probabilities, top_k)
        return [
            [(self.class_names[k], float(row[k])) for k in ks] for row, ks in zip(probabilities, order, strict=True)
        ]

    def image(self, path: str | Path) -> np.ndarray:
        """A picture file (PNG, JPEG, BMP, GIF, WebP) as this run's input, uint8 [H,W,C]: turned upright by its
        EXIF, converted to the run's channels and resized as `python -m serve` does it."""
        from shared.contract import image_pixel_limit
        from shared.image_files import NotAnImage, open_image, to_pixels

        height, width, channels = self._finished.input_shape
        if not Path(path).exists():
            raise KerasregError(f"{path}: no such file; give the path of a picture (PNG, JPEG, BMP, GIF or WebP).")
        if not Path(path).is_file():
            raise KerasregError(f"{path}: not a regular file (a folder, a FIFO or a device); give a picture file.")
        try:
            with open_image(Path(path), str(path), image_pixel_limit((height, width, channels))) as opened:
                return to_pixels(opened, (height, width), channels)
        except NotAnImage as e:
            raise KerasregError(str(e)) from None

    def _checked(self, images) -> np.ndarray:
        """`images` as a uint8 [N,H,W,C] batch of the run's shape, or KerasregError saying what is wrong."""
        batch = np.asarray(images)
        shape = tuple(self._finished.input_shape)
        if batch.ndim == 3:
            batch = batch[None]
        if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[1:] != shape:
            hint = " (pixels in 0..1? multiply by 255 and use .astype(np.uint8))" if batch.dtype.kind == "f" else ""
            one = ",".join(map(str, shape))
            raise KerasregError(
                f"Received images of {batch.dtype} {list(np.shape(images))}. Expected uint8 [N,{one}] (or one "
                f"image [{one}]), as the run was trained on{hint}."
            )
        return batch

    def __repr__(self) -> str:
        m, dataset = self.metrics, self.config["dataset"]
        return (
            f"Run({str(self.path)!r}: {dataset['name']}, test accuracy {m['accuracy']:.4f}, "
            f"{m.get('epochs_trained', len(self.history))} epochs)"
        )

    def _repr_html_(self) -> str:
        """The run's card and pictures, for Jupyter."""
        m, dataset, options = self.metrics, self.config["dataset"], self.config.get("options", {})
        rows = [
            ("dataset", f"{dataset['name']}: {dataset['n_train']} training, {dataset['n_test']} test images "
             f"{tuple(dataset['input_shape'])}, classes {', '.join(dataset['class_names'])}"),
            ("test accuracy", _number(m.get("accuracy"))),
            ("train accuracy", _number(m.get("train_accuracy"))),
            ("test loss", _number(m.get("loss"))),
            ("Brier score, ECE", f"{_number(m.get('brier'))}, {_number(m.get('ece'))}"),
            ("majority baseline", _number(m.get("majority_baseline_accuracy"))),
            ("epochs", f"{m.get('epochs_trained')} ({m.get('stop_reason', '')})"),
            ("options", ", ".join(f"{k}={v}" for k, v in options.items() if k in _CARD_OPTIONS)),
            ("directory", str(self.path)),
        ]  # fmt: skip
        table = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>{html.escape(v)}</td>"
            "</tr>"
            for k, v in rows
        )
        pictures = "".join(
            f"<figure style='display:inline-block;margin:4px'><img src='data:image/png;base64,{picture}' "
            f"style='max-width:420px'><figcaption>{html.escape(title)}</figcaption></figure>"
            for title, picture in self._pictures()
        )
        return f"<div><b>kerasreg run</b><table>{table}</table><div>{pictures}</div></div>"

    def _pictures(self) -> list[tuple[str, str]]:
        shown = []
        for title, name in _CARD_PICTURES:
            path = self.path / name
            if path.is_file():
                shown.append((title, base64.b64encode(path.read_bytes()).decode("ascii")))
        return shown


_CARD_OPTIONS = ("preset", "optimizer", "learning_rate", "batch_size", "epochs", "l2", "normalize", "balance", "seed")


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"
