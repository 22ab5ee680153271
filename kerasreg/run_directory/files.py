"""The run directory: fixed file names, atomic writes, and reading a run back.

python -m kerasreg.train --dataset digits --out runs/digits

runs/digits/
  config.json         resolved options, library versions, strategy, dataset facts
  model.keras         the trained Keras model (takes raw uint8 pixels)
  history.csv         one row per finished epoch: loss, accuracy, val_loss, val_accuracy
  metrics.json        test metrics, flat keys (accuracy, loss, confusion_matrix, ...)
  predictions.csv     every test image: its file (a folder's) or its index, true class, predicted class, probability
  test_sample.npz     up to TEST_SAMPLE_SIZE (500) test images and labels, for export's parity check
  train_sample.npz    as many training images and labels, to calibrate int8 exports on (never test images)
  plots/learning_curves.png, plots/confusion_matrix.png, plots/weights.png
  plots/mistakes.png  the test images most confidently misclassified, with true and predicted class
  plots/reliability.png  the test probabilities' reliability diagram (metrics.json: brier, ece)
  plots/l2_search.png  with --l2 auto: validation loss and accuracy along the search (config.json, metrics.json)
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from kerasreg.errors import RESTART, RunDirError

CONFIG = "config.json"
MODEL = "model.keras"
HISTORY = "history.csv"
METRICS = "metrics.json"
PREDICTIONS = "predictions.csv"
TEST_SAMPLE = "test_sample.npz"
TRAIN_SAMPLE = "train_sample.npz"
BACKUP = "backup"
PLOTS = "plots"
LEARNING_CURVES = "plots/learning_curves.png"
CONFUSION_MATRIX = "plots/confusion_matrix.png"
WEIGHTS = "plots/weights.png"
MISTAKES = "plots/mistakes.png"
L2_SEARCH = "plots/l2_search.png"
RELIABILITY = "plots/reliability.png"
TEST_SAMPLE_SIZE = 500
EPOCH_LOGS = ("loss", "accuracy", "val_loss", "val_accuracy")  # what an epoch reports (val_ ones with a split)
HISTORY_FIELDS = ("epoch", *EPOCH_LOGS)  # history.csv's columns


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename: never half a file, even after a power cut.

    The file is fsynced before the rename and the folder after it, so once this
    returns the new content survives a lost machine, not only a killed process
    (0.4 ms here: a run fsyncs at its backups, not after every epoch).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    sync_folder(path.parent)


def sync_files(paths: list[Path]) -> None:
    """fsync files written some other way (Keras's model.save, Pillow's save) and their folders."""
    for path in paths:
        with open(path, "rb+") as f:
            os.fsync(f.fileno())
    for folder in {path.parent for path in paths}:
        sync_folder(folder)


def sync_folder(folder: Path) -> None:
    """fsync a folder, so the renames and new names in it are on disk (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # Windows: folders cannot be opened; NTFS journals the rename itself
    try:
        os.fsync(fd)
    except OSError:
        pass  # some network filesystems refuse fsync on a folder; the file itself is synced
    finally:
        os.close(fd)


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Atomically write `arrays` as an uncompressed .npz (a backup's or a checkpoint's variables)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_atomic(path, buffer.getbuffer())


def write_json(path: Path, value: dict) -> None:
    """Atomically write `value` as indented JSON."""
    write_atomic(path, (json.dumps(value, indent=2, allow_nan=False) + "\n").encode())


def read_json(path: Path) -> dict:
    """Read a JSON object, or raise RunDirError naming the file."""
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        raise RunDirError(f"{path} not found; is {path.parent} a finished kerasreg run directory?") from None
    except (OSError, ValueError) as e:
        raise RunDirError(f"{path}: unreadable or not JSON ({e}).") from None
    except RecursionError:  # nested deeper than the parser goes: no file kerasreg writes
        raise RunDirError(f"{path}: its JSON nests too deeply to be a kerasreg file.") from None
    if not isinstance(value, dict):
        raise RunDirError(f"{path}: expected a JSON object.")
    return value


def write_history(path: Path, rows: list[dict]) -> None:
    """Write all epoch rows to history.csv (rewritten whole, atomically)."""
    lines = [",".join(HISTORY_FIELDS)]
    for row in rows:
        lines.append(",".join("" if row.get(k) is None else repr(row[k]) for k in HISTORY_FIELDS))
    write_atomic(path, ("\n".join(lines) + "\n").encode())


def write_predictions(
    path: Path, labels: np.ndarray, probabilities: np.ndarray, class_names: tuple[str, ...], names=None
) -> None:
    """predictions.csv: one row per test image, in the test split's order: the image (its file, where the dataset
    has files, else its index), its class, the class predicted, that class's probability, and whether it is right."""
    predicted = probabilities.argmax(axis=1)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")  # quotes a file name holding a comma or a newline
    writer.writerow(("image", "true_class", "predicted_class", "probability", "correct"))
    for i, (truth, said) in enumerate(zip(labels, predicted, strict=True)):
        image = names[i] if names is not None else i
        writer.writerow(
            (image, class_names[truth], class_names[said], f"{probabilities[i, said]:.6f}", int(truth == said))
        )
    write_atomic(path, text.getvalue().encode())


def read_history(path: Path) -> list[dict]:
    """Read history.csv back into rows of numbers (missing values as None), or RunDirError for a damaged file."""
    if not path.is_file():
        return []
    try:
        with open(path, newline="") as f:
            return [
                {k: (int(v) if k == "epoch" else float(v)) if v not in ("", None) else None for k, v in row.items()}
                for row in csv.DictReader(f)
            ]
    except (ValueError, TypeError, csv.Error) as e:
        raise RunDirError(f"{path}: not a history kerasreg wrote ({e}); {RESTART}.") from None


def write_sample(path: Path, images: np.ndarray, labels: np.ndarray, seed: int) -> None:
    """Keep a fixed random sample of images: the test split's, so a run can be checked without its data, and the
    training split's, to calibrate int8 exports on."""
    rng = np.random.default_rng(seed)
    n = min(TEST_SAMPLE_SIZE, len(images))
    idx = np.sort(rng.choice(len(images), size=n, replace=False))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images[idx], labels=labels[idx])
    write_atomic(path, buffer.getbuffer())


# What numpy raises for a damaged .npz: a truncated zip, a garbled member, a missing key.
NPZ_ERRORS = (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


def read_sample(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A stored sample's images (uint8 [N,H,W,C]) and labels ([N]), or RunDirError."""
    try:
        with np.load(path, allow_pickle=False) as f:
            images, labels = f["images"], f["labels"]
    except NPZ_ERRORS as e:
        raise RunDirError(f"{path}: missing or unreadable ({type(e).__name__}: {str(e)[:120]}).") from None
    if images.dtype != np.uint8 or images.ndim != 4 or labels.ndim != 1 or len(labels) != len(images):
        raise RunDirError(
            f"{path}: holds {images.dtype} {list(images.shape)} and labels {list(labels.shape)}; "
            "expected uint8 [N,H,W,C] and [N]. The run directory is damaged."
        )
    return images, labels


def load_run_model(run_dir: Path):
    """Load the run's model.keras, or raise RunDirError."""
    import keras

    path = run_dir / MODEL
    if not path.is_file():
        raise RunDirError(f"{path} not found; is {run_dir} a finished kerasreg run directory?")
    try:
        return keras.saving.load_model(path)
    except Exception as e:  # keras raises ValueError, OSError, zipfile errors ... for a bad file
        raise RunDirError(f"{path}: cannot load the model ({type(e).__name__}: {str(e)[:200]}).") from None
