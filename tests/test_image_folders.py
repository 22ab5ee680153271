"""`--dataset folder`: the user's own images, in real folders built from the shared MNIST and CIFAR-10 images.

Both layouts, PNG and JPEG, nested subfolders; the awkward files of a real photo
folder (truncated, empty, garbled, a GIF named .jpg, unreadable, stray files, a
symlink loop); folders that make no task; class names with quotes, `*/`, spaces
and letters of other scripts; the cache. Each case asserts its exact outcome: the
count, the line, the exit code, and the pixels against serve's.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from format_writers import write_image_folder
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from kerasreg.datasets import FolderOptions, load_dataset
from kerasreg.datasets.cifar_files import load_cifar10_files
from kerasreg.datasets.idx_files import read_idx
from kerasreg.errors import DatasetError
from kerasreg.model import pixel_rows
from kerasreg.train import main
from serve.runtime.image_input import decode_image


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERASREG_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def mnist(real_data):
    images = read_idx(real_data / "mnist" / "t10k-images-idx3-ubyte.gz")[:300, ..., None]
    labels = read_idx(real_data / "mnist" / "t10k-labels-idx1-ubyte.gz")[:300].astype(np.int64)
    return images, labels


@pytest.fixture(scope="module")
def cifar(real_data):
    data = load_cifar10_files(real_data / "cifar10-sample")
    keep = data.train_labels < 3  # airplane, automobile, bird
    return data.train_images[keep][:240], data.train_labels[keep][:240], data.class_names[:3]


def _load(root: Path, **options) -> object:
    return load_dataset("folder", "auto", root, FolderOptions(**options))


@pytest.mark.realdata
def test_a_class_folder_of_real_digits_in_png_with_nested_folders(mnist, tmp_path):
    images, labels = mnist
    paths = write_image_folder(tmp_path / "digits", images, labels, [str(d) for d in range(10)], "PNG", nested=True)
    data = _load(tmp_path / "digits")
    assert data.class_names == tuple(str(d) for d in range(10)) and data.task == "multiclass"
    assert data.input_shape == (28, 28, 1)  # smaller than 64x64 and grayscale: their own size, one channel
    assert len(data.train_labels) + len(data.test_labels) == 300 and len(data.test_labels) == 60  # 0.2, stratified
    assert data.facts["layout"] == "DIR/CLASS" and data.facts["passed_over"] == 0
    counts = data.facts["images_per_class"]
    assert sum(counts["train"].values()) == 240
    assert counts["test"]["0"] == int(np.sum(labels == 0)) - counts["train"]["0"]
    # Every image is exactly the array serve makes of the same file.
    served = {decode_image(p.read_bytes(), "x", (28, 28), 1).tobytes() for p in paths}
    assert {image.tobytes() for image in data.train_images} <= served


@pytest.mark.realdata
def test_a_train_and_test_layout_of_real_cifar_photos_in_jpeg(cifar, tmp_path, capsys):
    images, labels, names = cifar
    write_image_folder(tmp_path / "pets" / "train", images[:180], labels[:180], list(names), "JPEG")
    write_image_folder(tmp_path / "pets" / "valid", images[180:], labels[180:], list(names), "JPEG")
    (tmp_path / "pets" / "train" / "bird" / "notes.txt").write_text("one stray file")
    data = _load(tmp_path / "pets")
    said = capsys.readouterr().out
    # valid/ became the test split, and one file passed over is named without an ellipsis.
    assert f"{tmp_path / 'pets' / 'valid'}: the test split (60 images)" in said
    assert f"passed over 1 file that is no image ({tmp_path / 'pets' / 'train' / 'bird' / 'notes.txt'}): " in said
    assert data.name == "pets" and data.class_names == ("airplane", "automobile", "bird")
    assert (len(data.train_labels), len(data.test_labels)) == (180, 60)
    assert data.input_shape == (32, 32, 3)  # every photo smaller than 64x64: the smallest's size
    assert data.facts["layout"] == "DIR/train/CLASS"
    sized = _load(tmp_path / "pets", image_size=(16, 24), channels=1)
    assert sized.input_shape == (16, 24, 1)


def _folder(root: Path, classes=("cat", "dog"), n=6) -> Path:
    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            pixels = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8) // (k + 1)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_two_classes_are_a_binary_task_for_the_second_name_or_the_one_asked(tmp_path):
    root = _folder(tmp_path / "pets")
    data = _load(root)
    assert data.task == "binary" and data.class_names == ("cat", "dog")
    flipped = _load(root, positive_class="cat")
    assert flipped.class_names == ("dog", "cat")
    assert np.array_equal(flipped.train_labels, 1 - data.train_labels)
    with pytest.raises(DatasetError, match=r"^folder: --positive-class 'bird' is not one of its classes: cat, dog\.$"):
        _load(root, positive_class="bird")


def _awkward(root: Path) -> dict[str, Path]:
    """A folder of two classes with every kind of awkward file a real photo folder holds."""
    _folder(root)
    jpeg = root / "cat" / "0.png"
    good = jpeg.read_bytes()
    buffer = Path(root / "dog" / "gif-named.jpg")
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(buffer, format="GIF")  # a GIF named .jpg: read
    photo = root / "cat" / "photo.jpg"
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(photo, format="JPEG")
    bad = {
        "truncated": root / "cat" / "truncated.jpg",
        "empty": root / "dog" / "empty.png",
        "garbled": root / "dog" / "garbled.jpeg",
        "dangling": root / "cat" / "gone.jpg",
    }
    bad["truncated"].write_bytes(photo.read_bytes()[:300])
    bad["empty"].write_bytes(b"")
    bad["garbled"].write_bytes(b"\xff\xd8\xff" + b"\x17" * 400)
    bad["dangling"].symlink_to(root / "nowhere.jpg")
    for stray in ("README.txt", ".DS_Store", "Thumbs.db", "._0.png", ".hidden.png"):
        (root / "cat" / stray).write_bytes(good if stray.endswith(".png") else b"notes")
    (root / "dog" / "sub").mkdir()
    (root / "dog" / "sub" / "loop").symlink_to(root / "dog", target_is_directory=True)  # a symlink loop
    return bad


def test_bad_image_files_stop_the_run_in_one_line_naming_each(tmp_path, capsys):
    bad = _awkward(tmp_path / "pets")
    code = main(["--dataset", "folder", "--data-dir", str(tmp_path / "pets"), "--out", str(tmp_path / "run")])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert line.startswith("python -m kerasreg.train: error: folder: 4 files that should be an image did not decode: ")
    for path in bad.values():
        assert str(path) in line
    assert line.endswith("Fix or remove them, or pass --skip-bad-images to train without them.")
    assert ".." not in line.replace("...", "")  # each reason ends once, with the line's own period
    assert not (tmp_path / "run" / "config.json").exists()  # before anything was written


def test_a_file_name_cannot_forge_or_reverse_an_error_line(tmp_path, capsys):
    # Names went into the line raw (issue 32): a newline forged a second error line, an RTL override reversed it.
    root = _folder(tmp_path / "pets")
    forged = root / "cat" / "evil\npython -m kerasreg.train: error: FORGED.png"
    forged.write_bytes(b"not an image")
    reversed_name = root / "dog" / "cat\u202egnp.png"
    reversed_name.write_bytes(b"not an image either")
    code = main(["--dataset", "folder", "--data-dir", str(root), "--out", str(tmp_path / "run")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert "evil\\npython -m kerasreg.train: error: FORGED.png" in lines[0]
    assert "cat\\u202egnp.png" in lines[0] and "\u202e" not in lines[0]


def test_skipping_bad_images_trains_without_them_and_records_what_was_passed_over(tmp_path, capsys):
    bad = _awkward(tmp_path / "pets")
    argv = ["--dataset", "folder", "--data-dir", str(tmp_path / "pets"), "--skip-bad-images", "--l2", "0.01"]
    assert main([*argv, "--epochs", "2", "--out", str(tmp_path / "run")]) == 0
    said = capsys.readouterr().out
    import csv

    with (tmp_path / "run" / "predictions.csv").open() as table:
        rows = list(csv.DictReader(table))
    # Each test image by its file, from the data folder, as a user finds it: none of the bad ones.
    assert rows and all((tmp_path / "pets" / r["image"]).is_file() for r in rows)
    assert not {r["image"] for r in rows} & {str(p.relative_to(tmp_path / "pets")) for p in bad.values()}
    assert "--skip-bad-images: trained without 4 files that did not decode: " in said  # said, not silent
    assert "passed over 6 files that are no image (" in said and ", ...): listed in config.json" in said
    dataset = json.loads((tmp_path / "run" / "config.json").read_text())["dataset"]
    assert sorted(p.split(": ")[0] for p in dataset["skipped_bad_images"]) == sorted(map(str, bad.values()))
    counts = dataset["images_per_class"]
    assert sum(counts["train"].values()) + sum(counts["test"].values()) == 6 + 6 + 2  # the photo and the GIF
    passed = dataset["passed_over_files"]
    assert dataset["passed_over"] == 6 and any("symlink loop" in p for p in passed)  # 5 stray files and the loop
    assert {Path(p.split(" (")[0]).name for p in passed} >= {"README.txt", ".DS_Store", "Thumbs.db", "._0.png"}


@pytest.mark.parametrize(
    "build, line",
    [
        (lambda root: root.mkdir(), "folder: {root} holds no class folders; lay the images out as {root}/CLASS/image"),
        (lambda root: _folder(root, ("cat",)), "folder: {root} holds one class ('cat'); a classifier needs two"),
        (
            lambda root: (_folder(root), (root / "empty").mkdir()),
            "folder: class 'empty' holds no files; add images to it or remove it.",
        ),
        (
            lambda root: (_folder(root / "train"), _folder(root / "test", ("cat", "dog", "eel"))),
            "folder: {root}/test holds class 'eel', which {root}/train lacks; both need the same classes.",
        ),
        (lambda root: _folder(root / "train"), "folder: {root}/train holds the training images but no test/, val/"),
    ],
    ids=["no class folders", "one class", "an empty class", "a test class training lacks", "train without test"],
)
def test_a_folder_that_makes_no_task_is_one_line_and_exit_2(tmp_path, capsys, build, line):
    root = tmp_path / "data"
    build(root)
    code = main(["--dataset", "folder", "--data-dir", str(root), "--out", str(tmp_path / "run")])
    (said,) = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and said.startswith("python -m kerasreg.train: error: " + line.format(root=root)), said


def test_class_names_with_quotes_backslashes_spaces_and_other_scripts_are_carried(tmp_path):
    names = ('say "cheese"', "back\\slash *", "a cat", "Großkatze", "猫")  # a folder name holds no "/": */ cannot
    data = _load(_folder(tmp_path / "odd", names, n=5))
    assert data.class_names == tuple(sorted(names)) and data.task == "multiclass"


def test_the_cache_never_serves_bytes_the_files_no_longer_hold(tmp_path, capsys):
    # Two same-sized images swapped between class folders, their times kept (touch -r, rsync, many copy tools): a
    # key of path, size and mtime served the old pixels under the old labels (issue 32: "80 decoded images from the
    # cache").
    root = tmp_path / "pets"
    rng = np.random.default_rng(1)
    for k, name in enumerate(("cat", "dog")):
        (root / name).mkdir(parents=True)
        for i in range(6):  # BMP: every 20x20 image is the same size on disk
            pixels = (rng.integers(0, 256, (20, 20, 3)) // (k + 1)).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.bmp")
    first = _load(root)
    cat, dog = root / "cat" / "0.bmp", root / "dog" / "0.bmp"
    assert cat.stat().st_size == dog.stat().st_size and cat.read_bytes() != dog.read_bytes()
    times = [(f.stat().st_atime_ns, f.stat().st_mtime_ns) for f in (cat, dog)]
    cat_bytes, dog_bytes = cat.read_bytes(), dog.read_bytes()
    cat.write_bytes(dog_bytes)
    dog.write_bytes(cat_bytes)
    for f, ns in zip((cat, dog), times, strict=True):
        os.utime(f, ns=ns)
    capsys.readouterr()
    swapped = _load(root)
    assert "decoded 12 images" in capsys.readouterr().out  # not "from the cache"
    before = np.concatenate([first.train_images, first.test_images])
    after = np.concatenate([swapped.train_images, swapped.test_images])
    assert not np.array_equal(before, after)


def test_the_cache_decodes_once_and_a_changed_file_decodes_again(tmp_path, capsys):
    root = _folder(tmp_path / "pets")
    first = _load(root)
    assert "decoded 12 images" in capsys.readouterr().out
    again = _load(root)
    assert "12 decoded images from the cache" in capsys.readouterr().out
    assert np.array_equal(first.train_images, again.train_images)
    # Decoded or read back, the training images lie 64-byte aligned: training reads them without a copy.
    assert first.train_images.ctypes.data % 64 == 0 and again.train_images.ctypes.data % 64 == 0
    assert np.shares_memory(pixel_rows(again.train_images), again.train_images)  # a view, not a copy
    Image.fromarray(np.full((20, 20, 3), 255, np.uint8)).save(root / "dog" / "0.png")  # changed: its mtime and bytes
    os.utime(root / "dog" / "0.png", ns=(1, 1))
    _load(root)
    assert "decoded 12 images" in capsys.readouterr().out
    shutil.rmtree(tmp_path / "cache")  # clearing it is deleting the folder
    _load(root)
    assert "decoded 12 images" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.realdata
def test_a_folder_trained_model_served_answers_its_test_files_as_the_run_measured(cifar, tmp_path, capsys):
    import serve.cli
    from export.exporter import export_run

    images, labels, names = cifar
    write_image_folder(tmp_path / "photos" / "train", images[:180], labels[:180], list(names), "JPEG")
    test_files = write_image_folder(tmp_path / "photos" / "test", images[180:], labels[180:], list(names), "JPEG")
    argv = ["--dataset", "folder", "--data-dir", str(tmp_path / "photos"), "--l2", "0.01", "--epochs", "20"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    export_run(tmp_path / "run", tmp_path / "export", formats=("litert", "c"), quantize="int8")
    truth = {str(path): names[int(label)] for path, label in zip(test_files, labels[180:], strict=True)}
    for model in ("model.onnx", "model.tflite"):
        capsys.readouterr()
        assert serve.cli.main(["predict", str(tmp_path / "export" / model), *truth, "--json", "--top-k", "1"]) == 0
        answers = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        right = sum(a["predictions"][0]["class"] == truth[a["image"]] for a in answers)
        assert len(answers) == 60 and right / 60 == metrics["accuracy"], model  # the very pixels the run tested on


@given(st.integers(1, 40).flatmap(lambda n: st.tuples(st.just(n), st.permutations(range(n)), st.integers(0, n))))
def test_rows_move_in_place_to_any_order(case):
    from kerasreg.datasets.folder_decoding import rows_in_place

    n, permutation, k = case
    array = np.arange(n * 6, dtype=np.uint8).reshape(n, 3, 2)
    order = np.asarray(permutation[:k], np.int64)
    expected = array[order].copy()
    moved = rows_in_place(array, order)
    assert np.array_equal(moved, expected)
    assert moved.size == 0 or moved.ctypes.data == array.ctypes.data  # the same memory: no second array


@pytest.mark.slow
def test_a_folder_run_resumes_and_a_study_trains_on_a_folder(tmp_path, capsys):
    from kerasreg.study import main as study
    from kerasreg.training.compiled_epoch import CompiledEpoch

    root = _folder(tmp_path / "pets", ("cat", "dog", "eel"), n=12)
    argv = ["--dataset", "folder", "--data-dir", str(root), "--l2", "0.01", "--epochs", "6", "--backup-interval", "0"]
    assert main([*argv, "--out", str(tmp_path / "whole")]) == 0
    real = CompiledEpoch.run_epoch

    def stop(self, seed, epoch):
        if epoch == 3:
            raise KeyboardInterrupt
        return real(self, seed, epoch)

    CompiledEpoch.run_epoch = stop
    try:
        assert main([*argv, "--out", str(tmp_path / "resumed")]) == 130
    finally:
        CompiledEpoch.run_epoch = real
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "resumed")]) == 0
    out = capsys.readouterr().out
    assert "decoded images from the cache" in out and "3 epochs done, continuing at epoch 4" in out
    whole, resumed = (json.loads((tmp_path / run / "metrics.json").read_text()) for run in ("whole", "resumed"))
    assert resumed["accuracy"] == whole["accuracy"]
    assert study(["--dataset", "folder", "--data-dir", str(root), "--learning-rates", "0.01", "0.001", "--epochs", "2",
                  "--out", str(tmp_path / "study")]) == 0  # fmt: skip
    assert len(list((tmp_path / "study").glob("*/metrics.json"))) == 2
    assert (tmp_path / "study" / "loss_curves.png").is_file()
