"""Class names are data: checked once when a dataset is read, escaped wherever they are written.

A name that no escaping makes safe everywhere (a newline, a bidi override, a name of
20,000 characters, an empty one, two classes with one name) is one line and exit 2
before training. A name that can be carried (quotes, `*/`, a backslash, `??/`,
letters of any script) reaches every artifact intact: the generated C compiles
under -Werror, holds no code the name smuggled in, and gives the names back byte
for byte; the sample files are named safely.
"""

from __future__ import annotations

import dataclasses
import json
import re
import string
import subprocess

import numpy as np
import pytest
from format_writers import write_catvnoncat
from trained_runs import synthetic_dataset, train_small

from export.c_model import CFLAGS, find_compiler
from export.exporter import export_run
from kerasreg.datasets import ImageDataset
from kerasreg.datasets.class_names import check_class_names
from kerasreg.errors import DatasetError
from kerasreg.train import main

# Names a folder could carry, each with something to escape somewhere.
HOSTILE = (
    "*/ static inline int f(void) { return 42; } /*",
    'say "cheese"',
    "back\\slash",
    "??/ trigraph",
    "Großkatze",
    "猫",
    "/* opens a comment",
    "#define KERASREG_CLASSES 1",
    "a%sb%nc",
    "plain",
)


@pytest.mark.parametrize(
    "name, why",
    [
        ("line\nbreak", "holds the control or format character U+000A"),
        ("right\u202eto left", "holds the control or format character U+202E"),
        ("nul\x00", "holds the control or format character U+0000"),
        ("   ", "is empty"),
        ("x" * 20_000, "has 20,000 characters, more than 100"),
    ],
)
def test_a_name_no_escaping_makes_safe_is_refused_saying_why(name, why):
    with pytest.raises(DatasetError, match=f"^folder: class 1's name .* {re.escape(why)}; rename it"):
        check_class_names("folder", ("fine", name))


def test_two_classes_with_one_name_are_refused():
    with pytest.raises(DatasetError, match="^folder: class 2's name 'a' is also the name of class 0; rename it"):
        check_class_names("folder", ("a", "b", "a"))


def test_a_dataset_with_a_bad_name_stops_training_before_it_starts(tmp_path, capsys):
    import h5py

    write_catvnoncat(tmp_path / "data")
    for split in ("train", "test"):
        with h5py.File(tmp_path / "data" / f"{split}_catvnoncat.h5", "a") as f:
            del f["list_classes"]
            f["list_classes"] = np.array([b"non-cat", b"cat\n2026-12-02 INFO forged line"])
    code = main(["--dataset", "catvnoncat", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("python -m kerasreg.train: error: catvnoncat: class 1's name 'cat\\n2026")
    assert not (tmp_path / "run" / "config.json").exists()  # refused before anything was written


@pytest.fixture(scope="module")
def hostile_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    data = dataclasses.replace(synthetic_dataset((10, 4, 1), len(HOSTILE)), class_names=HOSTILE)
    train_small(root / "run", data)
    export_run(root / "run", root / "export", formats=("c", "litert"), quantize="int8")
    return root / "export"


@pytest.mark.slow
def test_hostile_names_compile_smuggle_nothing_and_come_back_byte_for_byte(hostile_export, tmp_path):
    compiler = find_compiler()
    if compiler is None:
        pytest.skip("no C compiler on this machine ($CC, cc, gcc, clang)")
    for folder in (hostile_export / "c", hostile_export / "c" / "int8"):
        # A function f of our own beside the header: had a name smuggled one in, this would not compile.
        (tmp_path / "names.c").write_text(
            '#include <stdio.h>\n#include "model.h"\nstatic int f(void) { return 7; }\n'
            "int main(void) {\n    int i;\n    for (i = 0; i < KERASREG_CLASSES; i++) {\n"
            "        fputs(kerasreg_class_names[i], stdout);\n        putchar(0);\n    }\n    return f() - 7;\n}\n"
        )
        program = tmp_path / "names"
        command = [compiler, *CFLAGS, f"-I{folder}", str(tmp_path / "names.c"), str(folder / "model.c")]
        built = subprocess.run([*command, "-o", str(program), "-lm"], capture_output=True, text=True)
        assert built.returncode == 0, built.stderr
        ran = subprocess.run([str(program)], capture_output=True)
        assert ran.returncode == 0
        assert ran.stdout.split(b"\0")[:-1] == [name.encode() for name in HOSTILE]
        header = (folder / "model.h").read_text()
        assert header.count("*/") == header.count("/*")  # no comment closed early, none opened inside one
        assert all(ord(c) < 128 for c in header + (folder / "model.c").read_text())


@pytest.mark.slow
def test_hostile_names_reach_every_artifact_intact_and_name_no_file_badly(hostile_export):
    from serve.runtime.model import Model

    card = json.loads((hostile_export / "model.json").read_text())
    assert tuple(card["classes"]) == HOSTILE
    for file in ("model.onnx", "model.tflite"):
        assert Model.load(hostile_export / file).info.classes == HOSTILE
    samples = sorted(p.name for p in (hostile_export / "samples").iterdir())
    allowed = set(string.ascii_letters + string.digits + "-_.")
    assert samples and all(set(name) <= allowed and len(name) <= 50 for name in samples), samples


def test_an_image_dataset_checks_its_names_when_it_is_made():
    images = np.zeros((2, 2, 2, 1), np.uint8)
    with pytest.raises(DatasetError, match="class 0's name 'a\\\\tb' holds the control or format character U\\+0009"):
        ImageDataset("x", images, np.array([0, 1]), images, np.array([0, 1]), ("a\tb", "c"))
