"""Every command fails the same way: one line and exit 2 (without its extra: tests/test_extras.py)."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # starts processes


def _run(env, *args):
    return subprocess.run([sys.executable, "-m", *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "command",
    [
        ["kerasreg.train", "--epochs", "1", "--out", "{file}/run"],
        ["kerasreg.evaluate", "{missing}"],
        ["kerasreg.predict", "{missing}", "{file}"],
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
