"""The user's own images: a folder of class folders, as Keras's `image_dataset_from_directory` and PyTorch's
`ImageFolder` lay them out.

    DIR/CLASS/*             the test split is drawn from it, stratified, with the seed (--test-split)
    DIR/train/CLASS/*       with DIR/test/ (or val/, validation/, valid/) holding the same classes

The class names are the class folders' names, sorted; images in subfolders of a
class folder belong to that class. Every file is read by its content (a GIF named
.jpg is a GIF); a file that is no image is passed over and counted (README.txt,
.DS_Store, Thumbs.db, AppleDouble ._* files, hidden files); a file that should be
an image (an image's name or content) and does not decode stops the run before any
training, naming it, unless --skip-bad-images. Images are decoded on every core
with shared/image_files.py (the decoding `serve` uses), into one preallocated array,
and the arrays are cached (kerasreg/datasets/folder_cache.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kerasreg.datasets.container import BINARY, MULTICLASS, ImageDataset
from kerasreg.datasets.folder_cache import cached_decode
from kerasreg.datasets.folder_decoding import Decoded, resolve_shape, rows_in_place
from kerasreg.datasets.memory import check_fits
from kerasreg.datasets.views import TEST_SPLIT_REMEDY, stratified_split
from kerasreg.errors import DatasetError
from shared.escaping import one_line

TEST_FOLDERS = ("test", "val", "validation", "valid")  # beside train/, in this order of preference
JUNK_NAMES = frozenset({"thumbs.db", "desktop.ini"})
BAD_SHOWN = 10  # bad files named in the error line; the rest are counted


@dataclass(frozen=True)
class FolderOptions:
    """What shapes a folder's dataset: the target size and channels (None: from the images), the test split."""

    image_size: tuple[int, int] | None = None  # (height, width)
    channels: int | None = None  # 1 or 3
    test_split: float = 0.2
    positive_class: str | None = None
    skip_bad_images: bool = False
    seed: int = 0


@dataclass
class Listing:
    """A folder's files by split and class, what was passed over, and the layout."""

    layout: str  # "DIR/CLASS" or "DIR/train/CLASS"
    classes: tuple[str, ...]
    files: dict[str, list[tuple[Path, int]]]  # split ("all", or "train" and "test") -> [(file, class index)]
    passed_over: list[str] = field(default_factory=list)  # files that are no image, by their path
    test_folder: str | None = None  # with DIR/train/CLASS: the folder beside train/ that is the test split


def list_folder(root: Path) -> Listing:
    """The image files under `root` by split and class, or DatasetError saying why the folder makes no task."""
    if not root.is_dir():
        raise DatasetError(f"folder: --data-dir {root} is not a folder; point it at DIR/CLASS/... images.")
    train = root / "train"
    if train.is_dir():
        test = next((root / name for name in TEST_FOLDERS if (root / name).is_dir()), None)
        if test is None:
            raise DatasetError(
                f"folder: {train} holds the training images but no {'/, '.join(TEST_FOLDERS)}/ is beside it; put the "
                "test images there, class by class, or move the class folders up into "
                f"{root} to have a test split drawn."
            )
        listing = Listing("DIR/train/CLASS", _class_names(train), {}, test_folder=test.name)
        test_classes = _class_names(test)
        extra = sorted(set(test_classes) - set(listing.classes))
        if extra:
            raise DatasetError(
                f"folder: {test} holds class {extra[0]!r}, which {train} lacks; both need the same classes."
            )
        for split, folder in (("train", train), ("test", test)):
            listing.files[split] = _files(folder, listing.classes, listing.passed_over)
    else:
        listing = Listing("DIR/CLASS", _class_names(root), {})
        listing.files["all"] = _files(root, listing.classes, listing.passed_over)
    _check_task(root, listing)
    return listing


def _class_names(folder: Path) -> tuple[str, ...]:
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not _hidden(p.name))
    if not names:
        raise DatasetError(
            f"folder: {folder} holds no class folders; lay the images out as {folder}/CLASS/image.jpg, one folder "
            "per class."
        )
    return tuple(names)


def _hidden(name: str) -> bool:
    return name.startswith(".") or name.lower() in JUNK_NAMES


def _files(folder: Path, classes: tuple[str, ...], passed_over: list[str]) -> list[tuple[Path, int]]:
    """Every file under each class folder (symlinks followed, loops not), the hidden and junk ones passed over."""
    found = []
    for index, name in enumerate(classes):
        visited: set[tuple[int, int]] = set()
        for directory, subfolders, names in os.walk(folder / name, followlinks=True):
            here = Path(directory)
            identity = (here.stat().st_dev, here.stat().st_ino)
            if identity in visited:  # a symlink back up the tree: walked already
                subfolders[:] = []
                passed_over.append(f"{here} (a folder walked already: a symlink loop)")
                continue
            visited.add(identity)
            subfolders[:] = sorted(d for d in subfolders if not _hidden(d))
            for file_name in sorted(names):
                path = here / file_name
                if _hidden(file_name):
                    passed_over.append(str(path))
                else:
                    found.append((path, index))
    return found


def _check_task(root: Path, listing: Listing) -> None:
    """Two classes or more, each with a file, in every split."""
    if len(listing.classes) < 2:
        raise DatasetError(
            f"folder: {root} holds one class ({listing.classes[0]!r}); a classifier needs two or more class folders."
        )
    for split, files in listing.files.items():
        counts = np.bincount([label for _, label in files], minlength=len(listing.classes))
        empty = [listing.classes[i] for i in np.flatnonzero(counts == 0)]
        if empty and (split != "test" or len(empty) == len(listing.classes)):
            where = "" if split == "all" else f" in {split}/"
            raise DatasetError(f"folder: class {empty[0]!r}{where} holds no files; add images to it or remove it.")


def load_folder(root: Path | str, options: FolderOptions) -> ImageDataset:
    """The folder's images as an ImageDataset (see the module docstring); DatasetError for anything unusable."""
    root = Path(root).expanduser()
    listing = list_folder(root)
    every = [path for files in listing.files.values() for path, _ in files]
    size, channels = resolve_shape(every, options.image_size, options.channels)
    check_fits(len(every), (*size, channels), str(root))  # before decoding, not killed half way
    decoded = {split: cached_decode(files, size, channels, split) for split, files in listing.files.items()}
    _refuse_bad(decoded, options.skip_bad_images)
    if listing.layout == "DIR/CLASS":
        labels = decoded["all"].labels
        train, test = stratified_split(labels, options.test_split, options.seed, "the test split", TEST_SPLIT_REMEDY)
        images = rows_in_place(decoded["all"].images, np.concatenate([train, test]))  # train first, then test
        splits = {"train": (images[: len(train)], labels[train]), "test": (images[len(train) :], labels[test])}
        kept = _kept(listing.files["all"], decoded["all"])
        test_files = tuple(kept[i] for i in test)
    else:
        splits = {split: (d.images, d.labels) for split, d in decoded.items()}
        test_files = tuple(_kept(listing.files["test"], decoded["test"]))
    classes, task, splits = _task(listing.classes, splits, options.positive_class)
    facts = _facts(listing, decoded, splits, classes, size, channels)
    if listing.test_folder is not None:
        print(f"{root / listing.test_folder}: the test split ({len(splits['test'][1])} images); the run's "
              f"validation split is drawn from {root / 'train'}")  # fmt: skip
    if facts["passed_over"]:
        count, first = facts["passed_over"], one_line(facts["passed_over_files"][0])
        named = f"{first}, ..." if count > 1 else first
        print(f"passed over {count} file{'s' if count > 1 else ''} that {'are' if count > 1 else 'is'} no image "
              f"({named}): listed in config.json")  # fmt: skip
    skipped = [item for d in decoded.values() for item in d.bad]
    if skipped:  # --skip-bad-images: said, not silent
        path, why = skipped[0]
        more = f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""
        print(f"--skip-bad-images: trained without {len(skipped)} file{'s' if len(skipped) > 1 else ''} that did "
              f"not decode: {one_line(path)}: {one_line(why).rstrip('.')}{more}; listed in config.json")  # fmt: skip
    name = "".join(c for c in root.resolve().name if c.isascii() and (c.isalnum() or c in "-_.")) or "folder"
    return ImageDataset(
        name, *splits["train"], *splits["test"], classes, task, f"files:{root}", facts, _relative(test_files, root)
    )


def _kept(files: list[tuple[Path, int]], decoded: Decoded) -> list[str]:
    """The files that decoded, in the order their images are: those neither bad nor passed over."""
    dropped = {path for path, _ in decoded.bad} | set(decoded.not_images)
    return [str(path) for path, _ in files if str(path) not in dropped]


def _relative(files: tuple[str, ...], root: Path) -> tuple[str, ...]:
    """The files' paths from the data folder (where they lie beneath it), as predictions.csv names them."""
    return tuple(os.path.relpath(f, root) if f.startswith(str(root)) else f for f in files)


def _refuse_bad(decoded: dict[str, Decoded], skip: bool) -> None:
    bad = [item for d in decoded.values() for item in d.bad]
    if bad and not skip:
        named = "; ".join(f"{path}: {why.rstrip('.')}" for path, why in bad[:BAD_SHOWN])  # the line ends once
        more = f"; and {len(bad) - BAD_SHOWN} more" if len(bad) > BAD_SHOWN else ""
        files, them = (f"{len(bad)} files", "them") if len(bad) > 1 else ("1 file", "it")
        raise DatasetError(
            f"folder: {files} that should be an image did not decode: {named}{more}. Fix or remove {them}, or pass "
            f"--skip-bad-images to train without {them}."
        )


def _task(classes: tuple[str, ...], splits: dict, positive: str | None) -> tuple[tuple[str, ...], str, dict]:
    """Two classes: a binary task whose positive class is the second name or `positive`; more: multiclass."""
    if positive is not None and positive not in classes:
        raise DatasetError(f"folder: --positive-class {positive!r} is not one of its classes: {', '.join(classes)}.")
    if len(classes) != 2:
        if positive is not None:
            raise DatasetError(f"folder: --positive-class is for two classes; this folder has {len(classes)}.")
        return classes, MULTICLASS, splits
    if positive is not None and positive == classes[0]:  # the positive class is class 1: swap
        classes = (classes[1], classes[0])
        splits = {split: (images, 1 - labels) for split, (images, labels) in splits.items()}
    return classes, BINARY, splits


def _facts(listing: Listing, decoded: dict, splits: dict, classes, size, channels) -> dict:
    """What config.json records of a folder: its layout, each split's count per class, what was passed over."""
    per_split = {
        split: {name: int(n) for name, n in zip(classes, np.bincount(labels, minlength=len(classes)), strict=True)}
        for split, (_, labels) in splits.items()
    }
    return {
        "layout": listing.layout,
        "image_size": list(size),
        "channels": channels,
        "images_per_class": per_split,
        "passed_over": len(listing.passed_over) + sum(len(d.not_images) for d in decoded.values()),
        "passed_over_files": (listing.passed_over + [f for d in decoded.values() for f in d.not_images])[:100],
        "skipped_bad_images": [f"{path}: {why}" for d in decoded.values() for path, why in d.bad],
    }
