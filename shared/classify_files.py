"""Classify picture files and folders of them, one line an image: `python -m serve predict` (an export) and
`python -m kerasreg.predict` (a run folder, no export) both print through this, so they read the same.

    code = classify_files([Path("photo.jpg"), Path("photos/")], load, classify, top_k=3, as_json=False,
                          prog="python -m serve", error=ServeError)

A folder is searched recursively and ends with a summary line (on stderr with --json, whose stdout stays one
object a line). A file that cannot be read prints one error line and the rest go on; the exit code is 2 then.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Collection
from pathlib import Path

import numpy as np

from shared.escaping import one_line
from shared.exit_codes import EXIT_USER_ERROR
from shared.image_files import IMAGE_SUFFIXES

# Images decoded before the model runs on them together: one call a chunk is what makes a folder fast on a
# Keras model (a call a picture costs milliseconds of overhead each), and a chunk bounds the memory held.
CHUNK = 256

Top = list[tuple[str, float]]


def image_paths(given: list[Path], suffixes: Collection[str]) -> tuple[list[Path], list[Path]]:
    """The files to classify: each file given, and every file of `suffixes` under each folder given (sorted,
    hidden ones passed over); and the folders given."""
    paths, folders = [], []
    for path in given:
        if not path.is_dir():
            paths.append(path)
            continue
        folders.append(path)
        for found in sorted(path.rglob("*")):
            hidden = any(part.startswith(".") for part in found.relative_to(path).parts)
            if not hidden and found.is_file() and found.suffix.lower() in suffixes:
                paths.append(found)
    return paths, folders


def classify_files(
    given: list[Path],
    load: Callable[[Path], np.ndarray],
    classify: Callable[[np.ndarray, int], list[Top]],
    top_k: int,
    as_json: bool,
    prog: str,
    error: type[Exception],
    suffixes: Collection[str] = IMAGE_SUFFIXES | {".npy"},
) -> int:
    """Print each image's `top_k` classes and, for folders, a summary; 0, or 2 when some file failed to load.

    `load` turns a path into the model's uint8 [H,W,C] input or raises `error`; `classify` takes a batch. A folder
    holding no file of `suffixes` raises `error`.
    """
    paths, folders = image_paths(given, suffixes)
    failed, tally = 0, {}
    for start in range(0, len(paths), CHUNK):
        loaded = []
        for path in paths[start : start + CHUNK]:
            try:
                loaded.append((path, load(path)))
            except error as e:
                print(f"{prog}: error: {one_line(str(e), backslashes=False)}", file=sys.stderr)
                failed += 1
        if not loaded:
            continue
        tops = classify(np.stack([image for _, image in loaded]), top_k)
        for (path, _), top in zip(loaded, tops, strict=True):
            tally[top[0][0]] = tally.get(top[0][0], 0) + 1
            if as_json:
                print(json.dumps({"image": str(path), "predictions": [{"class": c, "probability": p} for c, p in top]}))
            else:
                print(f"{one_line(str(path))}: " + ", ".join(f"{one_line(c)} ({p:.3f})" for c, p in top))
    if folders:
        if not paths:
            kinds = ".png, .jpg, .bmp, .gif, .webp" + (", .npy" if ".npy" in suffixes else "")
            raise error(f"{one_line(str(folders[0]))}: no image files in it ({kinds}).")
        counts = ", ".join(f"{n} as {one_line(c)}" for c, n in sorted(tally.items(), key=lambda kv: (-kv[1], kv[0])))
        done = sum(tally.values())
        summary = f"{done} image{'s' if done != 1 else ''} classified: {counts}" + (
            f"; {failed} failed" if failed else ""
        )
        print(summary, file=sys.stderr if as_json else sys.stdout)
    return EXIT_USER_ERROR if failed else 0
