"""kerasreg from Python (a notebook, a script): `kerasreg.train(...)` trains and returns a `kerasreg.Run`.

    import kerasreg
    run = kerasreg.train(dataset="digits", epochs=20)               # a bundled dataset
    run = kerasreg.train("runs/mine", images=x, labels=y, l2=0.01)  # uint8 [N,H,W,C] arrays
    run.metrics["accuracy"], run.predict_proba(x[:5]), run.classify(x[:5], top_k=2)
    run = kerasreg.Run.load("runs/mine")

The options are the command line's (`python -m kerasreg.train --help`), by their Python
names, checked by the same code with the same messages. A mistake raises a
`kerasreg.errors.KerasregError` (a ValueError); nothing here ends the process.
"""

from __future__ import annotations

import atexit
import dataclasses
import difflib
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kerasreg.errors import KerasregError
from kerasreg.run import Run

if TYPE_CHECKING:
    import numpy as np

_RESUME_OPTIONS = ("resume", "restart")  # the command line's flags for an unfinished run in `out`


def train(
    out: str | Path | None = None,
    *,
    images: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    test_images: np.ndarray | None = None,
    test_labels: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    **options: Any,
) -> Run:
    """Train a logistic-regression classifier as `python -m kerasreg.train` does; the finished run.

    Args:
        out: the run directory to write (an unfinished one there is resumed, as on the command
            line); None writes to a new temporary directory, says where, and removes it when the Python
            process ends (pass `out` to keep the run).
        images: train on these images instead of a dataset's, uint8 [N,H,W,C] (with `labels`).
            Without `test_images` and `test_labels` a stratified `test_split` (default 0.2) of them
            is held out for the test metrics.
        labels: the images' classes, integers 0..K-1.
        test_images: images to test on instead of a split of `images` (with `test_labels`).
        test_labels: their classes.
        class_names: the K class names of the labels (default "0" .. "K-1").
        **options: any command-line option by its Python name (`dataset`, `data_dir`, `preset`,
            `l2`, `epochs`, `seed`, ...), and `resume=True` or `restart=True` as the flags.

    Raises:
        KerasregError: an unknown or invalid option, unusable data, or a run directory that cannot
            be used; the message says what to do, as on the command line.
    """
    from kerasreg.config import TrainConfig
    from kerasreg.pipeline import train_and_evaluate

    resume = _resume_mode(options)
    _check_names(options)
    if isinstance(options.get("data_dir"), os.PathLike):
        options["data_dir"] = os.fspath(options["data_dir"])
    datasets = None
    if images is not None or labels is not None:
        datasets, options = _array_dataset(images, labels, test_images, test_labels, class_names, options)
    elif test_images is not None or test_labels is not None or class_names is not None:
        raise KerasregError("Received test_images, test_labels or class_names without images and labels; give both.")
    config = TrainConfig.resolve(**options)
    if out is None:
        out = tempfile.mkdtemp(prefix=f"kerasreg-{config.dataset.replace(':', '_').replace('/', '_')}-")
        # Removed when this Python process ends (a notebook's kernel, a script): a run worth keeping names its out.
        atexit.register(shutil.rmtree, out, ignore_errors=True)
        print(f"no out given: writing the run to {out}, removed when this Python process ends", flush=True)
    elif not str(out).strip():
        raise KerasregError("Received out=''. Expected a folder to write the run to, or None for a temporary one.")
    from kerasreg.tensorflow_start import start_tensorflow

    start_tensorflow()  # without its C++ start-up lines
    train_and_evaluate(config, Path(out), resume=resume, datasets=datasets)
    return Run.load(out)


def _resume_mode(options: dict) -> str:
    """The command line's --resume / --restart, taken out of `options`."""
    asked = [name for name in _RESUME_OPTIONS if options.pop(name, False)]
    if len(asked) > 1:
        raise KerasregError("Received resume=True and restart=True. Expected at most one of them.")
    return {"resume": "required", "restart": "restart"}.get(asked[0], "auto") if asked else "auto"


def _check_names(options: dict) -> None:
    from kerasreg.config import TrainConfig

    names = [f.name for f in dataclasses.fields(TrainConfig)]
    for name in options:
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise KerasregError(
                f"Received an unknown option {name}={options[name]!r}.{hint} The options are the command line's "
                "(python -m kerasreg.train --help) with _ for -."
            )


def _array_dataset(images, labels, test_images, test_labels, class_names, options: dict) -> tuple:
    """The dataset of the arrays given, and the options naming it (with no other dataset named)."""
    from kerasreg.config import TrainConfig
    from kerasreg.datasets.arrays import ARRAYS, from_arrays

    if images is None or labels is None:
        raise KerasregError("Received images without labels, or labels without images; give both.")
    for name in ("dataset", "data_dir", "source"):
        if options.get(name) not in (None, ARRAYS, "auto"):
            raise KerasregError(
                f"Received images and {name}={options[name]!r}. Expected one or the other: the arrays are the dataset."
            )
    options = {**options, "dataset": ARRAYS}
    config = TrainConfig.resolve(**options)  # checks test_split and seed before the split uses them
    data = from_arrays(
        images, labels, test_images, test_labels, class_names, test_split=config.test_split, seed=config.seed
    )
    return data, options
