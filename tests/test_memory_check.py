"""A set of images that cannot fit is refused before decoding, in one line naming what it needs and what there is."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from kerasreg.datasets import memory
from kerasreg.errors import DatasetError


def test_what_fits_passes_and_what_does_not_is_one_line_with_both_figures():
    memory.check_fits(1_000, (64, 64, 3), "folder x", available=8 * 2**30)
    with pytest.raises(DatasetError) as refused:
        memory.check_fits(1_280_000, (64, 64, 3), "folder x", available=8 * 2**30)
    assert str(refused.value) == (
        "folder x: 1,280,000 images of 64x64x3 need about 37.6 GiB to train (14.6 GiB of pixels), and this machine "
        "has 8.0 GiB available. Use a smaller --image-size, a subset of the images, or a machine with more memory."
    )


def test_the_memory_available_is_read_from_the_system():
    available = memory.available_bytes()
    assert available is not None and 2**26 < available < 2**45


def test_a_folder_too_large_for_the_memory_is_refused_before_any_image_is_decoded(tmp_path, monkeypatch, capsys):
    from kerasreg.train import main

    for name in ("cat", "dog"):
        (tmp_path / "pets" / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(tmp_path / "pets" / name / f"{i}.png")
    monkeypatch.setattr(memory, "available_bytes", lambda: 2**20)  # a machine of 1 MiB
    decoded = []
    monkeypatch.setattr("kerasreg.datasets.image_folders.cached_decode", lambda *a: decoded.append(a))
    code = main(["--dataset", "folder", "--data-dir", str(tmp_path / "pets"), "--out", str(tmp_path / "run")])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and decoded == []
    assert line.startswith(f"python -m kerasreg.train: error: folder: {tmp_path / 'pets'}: 6 images of 8x8x1 need ")
    assert "and this machine has 0.0 GiB available." in line
