"""Every command fails the same way: one line, exit 2, and without its extra the pip command to run."""

import subprocess
import sys

import pytest
from conftest import env_blocking

pytestmark = pytest.mark.slow  # starts processes


def _run(env, *args):
    return subprocess.run([sys.executable, "-m", *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "blocked, command, expected",
    [
        (
            ("tensorflow",),
            ["kerasreg.train", "--dataset", "digits"],
            "python -m kerasreg.train: error: tensorflow not installed; this command needs the train extra: "
            'pip install "kerasreg[train]"',
        ),
        (
            ("sklearn", "h5py"),
            ["kerasreg.evaluate", "runs/x"],
            "python -m kerasreg.evaluate: error: sklearn, h5py not installed; this command needs the train extra: "
            'pip install "kerasreg[train]"',
        ),
        (
            ("tf2onnx",),
            ["export", "runs/x", "--out", "exports/x"],
            "python -m export: error: tf2onnx not installed; this command needs the export extra: "
            'pip install "kerasreg[export]"',
        ),
        (
            ("numpy", "onnxruntime"),
            ["serve", "info", "model.onnx"],
            "python -m serve: error: numpy, onnxruntime not installed; this command needs the serve extra: "
            'pip install "kerasreg[serve]"',
        ),
        (
            ("granian",),
            ["serve", "http", "model.onnx"],
            "python -m serve http: error: granian not installed; this command needs the http extra: "
            'pip install "kerasreg[http]"',
        ),
    ],
)
def test_a_missing_extra_is_one_line_naming_the_pip_command(tmp_path, blocked, command, expected):
    result = _run(env_blocking(tmp_path, blocked), *command)
    assert result.returncode == 2
    assert result.stderr.strip() == expected
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["kerasreg.train", "--epochs", "1", "--out", "{file}/run"],
        ["kerasreg.evaluate", "{missing}"],
        ["export", "{missing}", "--out", "{file}/x"],
        ["serve", "info", "{missing}/model.onnx"],
        ["serve", "http", "{missing}/model.onnx", "--max-batch", "0"],
    ],
)
def test_every_command_fails_the_same_way(tmp_path, command):
    # A regular file as a parent folder: unwritable even for root, who runs CI here.
    (tmp_path / "file").write_text("not a folder")
    names = {"file": tmp_path / "file", "missing": tmp_path / "missing"}
    result = _run(None, *[part.format(**names) for part in command])
    lines = result.stderr.strip().splitlines()
    prog = "python -m " + command[0]
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert lines[-1].startswith(f"{prog}: error: ") or lines[-1].startswith(f"{prog} http: error: "), lines
